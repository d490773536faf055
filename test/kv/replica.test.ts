/**
 * The replica's parts in isolation: versions and convergence, death certificates and their
 * retention, bucket digests, the hybrid clock, stream watermarks, the internal codecs.
 */
import { describe, expect, it } from 'vitest';
import { HybridClock, TICKS_PER_MS } from '../../src/kv/hlc.js';
import {
  EntryStreamDecoder,
  MAX_BARRIER,
  WireType,
  WorkerResult,
  decodeHello,
  decodePeerNotify,
  decodeWorkerRequest,
  decodeWorkerResponse,
  encodeHello,
  encodePeerNotify,
  encodeWorkerRequest,
  encodeWorkerResponse,
  entryStream,
  peekWorkerRequest,
} from '../../src/kv/messages.js';
import type { Stamp, Update } from '../../src/kv/messages.js';
import { KvStore, bucketOf, keyBytes } from '../../src/kv/store.js';
import { Watermarks } from '../../src/kv/watermarks.js';

const st = (hlc: number, origin = 'w1', seq = 1): Stamp => ({ hlc, origin, seq });
const v = (s: string): Buffer => Buffer.from(s);

function shuffle<T>(a: T[], seed: number): T[] {
  const out = [...a];
  let x = seed;
  for (let i = out.length - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const j = x % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('KvStore', () => {
  it('stops interning the id of a worker that left; its entries keep their versions', () => {
    const s = new KvStore();
    s.merge('a', v('1'), st(10, 'gone', 1));
    s.merge('b', v('2'), st(11, 'here', 1));
    expect(s.originCount).toBe(2);
    s.forgetOrigin('gone');
    expect(s.originCount).toBe(1);
    expect(s.get('a')).toMatchObject({ origin: 'gone', seq: 1 });
  });

  it('keeps the later version whatever the order, ties broken by worker id', () => {
    const s = new KvStore();
    expect(s.merge('k', v('a'), st(10, 'w1'))).toBe(true);
    expect(s.merge('k', v('old'), st(5, 'w9'))).toBe(false);
    expect(s.merge('k', v('tie-low'), st(10, 'w0'))).toBe(false);
    expect(s.merge('k', v('tie-high'), st(10, 'w2'))).toBe(true);
    expect(s.get('k')!.value!.toString()).toBe('tie-high');
    expect(s.merge('k', v('tie-high'), st(10, 'w2'))).toBe(false);
  });

  it('replicas that apply the same writes in different orders converge, digests included', () => {
    const writes: { key: string; value: Buffer | null; s: Stamp }[] = [];
    for (let i = 0; i < 500; i++) {
      writes.push({
        key: `k${i % 37}`,
        value: i % 7 === 0 ? null : v(`v${i}`),
        s: st(1000 + (i % 50), `w${i % 4}`, i),
      });
    }
    const replicas = [1, 2, 3].map((seed) => {
      const r = new KvStore();
      for (const w of shuffle(writes, seed)) r.merge(w.key, w.value, w.s);
      // Duplicates change nothing.
      for (const w of shuffle(writes, seed + 10).slice(0, 100)) r.merge(w.key, w.value, w.s);
      return r;
    });
    const dump = (r: KvStore): string =>
      JSON.stringify([...r.updates()].sort((a, b) => a.key.compare(b.key)));
    expect(dump(replicas[1]!)).toBe(dump(replicas[0]!));
    expect(dump(replicas[2]!)).toBe(dump(replicas[0]!));
    expect(replicas[1]!.digest().equals(replicas[0]!.digest())).toBe(true);
    expect(replicas[0]!.differingBuckets(replicas[2]!.digest())).toEqual([]);
  });

  it('a death certificate beats older writes arriving late, and loses to newer ones', () => {
    const s = new KvStore();
    s.merge('k', v('a'), st(10));
    s.merge('k', null, st(20));
    expect(s.get('k')!.value).toBeNull();
    expect(s.size).toBe(0);
    expect(s.deadCount).toBe(1);
    expect(s.merge('k', v('stale'), st(15))).toBe(false);
    expect(s.merge('k', v('reborn'), st(30))).toBe(true);
    expect(s.size).toBe(1);
    expect(s.deadCount).toBe(0);
  });

  it('collects death certificates past their retention, and then refuses writes older than it', () => {
    const s = new KvStore();
    s.merge('a', null, st(100));
    s.merge('b', null, st(200));
    s.merge('c', v('live'), st(50));
    s.merge('d', null, st(150));
    s.merge('d', v('back'), st(160));
    expect(s.collect(180)).toBe(1);
    expect(s.get('a')).toBeUndefined();
    expect(s.get('b')!.value).toBeNull();
    expect(s.get('c')!.value!.toString()).toBe('live');
    expect(s.get('d')!.value!.toString()).toBe('back');
    // An old write of a collected key (an out-of-date replica's) must not bring it back...
    expect(s.merge('a', v('resurrected'), st(90), 180)).toBe(false);
    expect(s.get('a')).toBeUndefined();
    // ...while a held key still takes later versions, and new writes are fine.
    expect(s.merge('c', v('newer'), st(60), 180)).toBe(true);
    expect(s.merge('e', v('new'), st(190), 180)).toBe(true);
  });

  it('bucket digests find exactly the buckets that differ, and compare finds the keys', () => {
    const a = new KvStore();
    const b = new KvStore();
    for (let i = 0; i < 2000; i++) {
      a.merge(`key-${i}`, v(`${i}`), st(100 + i));
      b.merge(`key-${i}`, v(`${i}`), st(100 + i));
    }
    b.merge('key-7', v('newer'), st(10_000, 'w2'));
    a.merge('key-8', null, st(10_000, 'w1'));
    a.merge('only-a', v('x'), st(10_000));
    b.merge('only-b', v('y'), st(10_000));
    const differ = a.differingBuckets(b.digest());
    const expected = new Set(['key-7', 'key-8', 'only-a', 'only-b'].map(bucketOf));
    expect(new Set(differ)).toEqual(expected);
    const set = new Set(differ);
    const r = b.compare(set, a.summary(set), 0);
    expect(r.give.sort()).toEqual(['key-7', 'only-b']);
    expect(r.take.sort()).toEqual(['key-8', 'only-a']);
    // Versions older than the horizon are left alone.
    const old = b.compare(set, a.summary(set), 20_000);
    expect(old).toEqual({ give: [], take: [] });
  });
});

describe('HybridClock', () => {
  it('never goes back, stays at or ahead of the wall clock, and passes what it observes', () => {
    let wall = 1_000;
    const c = new HybridClock(() => wall, 60_000);
    const a = c.now();
    expect(a).toBe(1_000 * TICKS_PER_MS);
    const b = c.now();
    expect(b).toBeGreaterThan(a);
    wall = 900; // the wall clock steps back
    expect(c.now()).toBeGreaterThan(b);
    expect(c.observe(5_000 * TICKS_PER_MS)).toBe(true);
    expect(c.now()).toBeGreaterThan(5_000 * TICKS_PER_MS);
    // A timestamp far in the future is not adopted.
    expect(c.observe(10_000_000 * TICKS_PER_MS)).toBe(false);
    expect(c.now()).toBeLessThan(10_000_000 * TICKS_PER_MS);
  });
});

describe('Watermarks', () => {
  it('tracks the contiguous prefix of each stream, gaps and all', () => {
    const advanced: string[] = [];
    const w = new Watermarks((o) => advanced.push(o));
    expect(w.record('a', 1)).toBe(false);
    expect(w.record('a', 2)).toBe(false);
    expect(w.record('a', 5)).toBe(true);
    expect(w.covers('a', 2)).toBe(true);
    expect(w.covers('a', 5)).toBe(false);
    expect(w.gaps()).toEqual(['a']);
    expect(w.record('a', 3)).toBe(true);
    expect(w.record('a', 4)).toBe(false);
    expect(w.get('a')).toBe(5);
    expect(w.gaps()).toEqual([]);
    // A stream first seen in the middle (a replica that joined late) waits for an export.
    expect(w.record('b', 40)).toBe(true);
    w.absorb('b', 39);
    expect(w.get('b')).toBe(40);
    expect(w.record('b', 40)).toBe(false);
    expect(advanced).toContain('b');
    expect(w.snapshot()).toEqual([
      ['a', 5],
      ['b', 40],
    ]);
  });

  it('retires a departed stream to one number, brings it back if it writes, forgets it later', () => {
    const w = new Watermarks();
    w.record('gone', 1);
    w.record('gone', 2);
    w.record('gap', 1);
    w.record('gap', 3);
    expect(w.retire('gone', 1000)).toBe(true);
    // A stream with a gap keeps its mark: anti-entropy may still close the gap.
    expect(w.retire('gap', 1000)).toBe(false);
    expect(w.active()).toEqual(['gap']);
    // Still answers for a session that saw its writes, and shows in the snapshot for peers.
    expect(w.covers('gone', 2)).toBe(true);
    expect(w.covers('gone', 3)).toBe(false);
    expect(w.snapshot()).toContainEqual(['gone', 2]);
    // A peer's news moves the retired number on without bringing the mark back...
    w.absorb('gone', 4);
    expect(w.get('gone')).toBe(4);
    expect(w.active()).toEqual(['gap']);
    // ...its own next write does, carrying on where it was.
    expect(w.record('gone', 5)).toBe(false);
    expect(w.active()).toEqual(['gap', 'gone']);
    expect(w.retire('gone', 1000)).toBe(true);
    expect(w.size).toBe(2);
    w.expire(999);
    expect(w.tracks('gone')).toBe(true);
    w.expire(1000);
    expect(w.tracks('gone')).toBe(false);
    expect(w.size).toBe(1);
  });

  it("takes over a peer's mark of a worker that left before this one joined, for a while", () => {
    const advanced: string[] = [];
    const w = new Watermarks((o) => advanced.push(o));
    // From an export: 'early' wrote up to 7 and left before this replica existed.
    w.absorbDeparted('early', 7, 500);
    expect(w.covers('early', 7)).toBe(true);
    expect(w.active()).toEqual([]);
    expect(advanced).toEqual(['early']);
    // Later news of it moves the retired number on and wakes reads held back on it.
    w.absorb('early', 9);
    expect(w.get('early')).toBe(9);
    expect(advanced).toEqual(['early', 'early']);
    // A tracked origin is absorbed as usual, never shortened.
    w.record('live', 3);
    w.absorbDeparted('live', 2, 500);
    expect(w.get('live')).toBe(3);
    // Forgotten once the retention ends.
    w.expire(500);
    expect(w.tracks('early')).toBe(false);
  });
});

describe('internal messages', () => {
  it('requests, responses and replication messages round-trip', () => {
    const req = {
      type: WireType.StoreRequest,
      id: 0xfffffffe,
      key: v('k'),
      value: v('value'),
      deadline: 1_700_000_000_123,
      clock: 1_700_000_000_123_456,
      after: [
        ['w-1', 3],
        ['w-2', 2 ** 40],
      ] as [string, number][],
    } as const;
    expect(decodeWorkerRequest(encodeWorkerRequest(req))).toEqual(req);
    const get = { ...req, type: WireType.RetrieveRequest, value: Buffer.alloc(0), after: [] };
    expect(decodeWorkerRequest(encodeWorkerRequest(get))).toEqual(get);
    const resp = {
      type: WireType.RetrieveResponse,
      result: WorkerResult.Ok,
      id: 7,
      key: v('k'),
      value: v('v'),
      stamp: st(123, 'w-1', 9),
    } as const;
    expect(decodeWorkerResponse(encodeWorkerResponse(resp))).toEqual(resp);
    const none = { ...resp, type: WireType.StoreResponse, value: Buffer.alloc(0), stamp: null };
    expect(decodeWorkerResponse(encodeWorkerResponse(none))).toEqual(none);
    const u: Update = { key: v('k'), value: null, stamp: st(5, 'w', 1) };
    expect(decodePeerNotify(encodePeerNotify(u))).toEqual(u);
    expect(() => decodeWorkerRequest(encodeWorkerRequest(req).subarray(0, 20))).toThrow(
      /truncated/,
    );
    // What is left of a truncated request still says which one to answer.
    expect(peekWorkerRequest(encodeWorkerRequest(req).subarray(0, 20))).toEqual({
      type: WireType.StoreRequest,
      id: 0xfffffffe,
      key: v('k'),
    });
    expect(peekWorkerRequest(Buffer.from([WireType.StoreRequest, 0, 0]))).toBeNull();
    expect(peekWorkerRequest(Buffer.from([WireType.Gossip, 0, 0, 0, 1]))).toBeNull();
    expect(decodeHello(encodeHello('ns.lb', 1_700_000_000_000))).toEqual({
      inbox: 'ns.lb',
      hb: 1_700_000_000_000,
    });
  });

  it('a barrier has at most 255 entries: encoding refuses more instead of wrapping the count', () => {
    const after = (n: number): [string, number][] =>
      Array.from({ length: n }, (_, i) => [`worker-${i}`, i + 1]);
    const req = {
      type: WireType.RetrieveRequest,
      id: 1,
      key: v('k'),
      value: Buffer.alloc(0),
      deadline: 1,
      clock: 2,
    } as const;
    const full = { ...req, after: after(MAX_BARRIER) };
    expect(decodeWorkerRequest(encodeWorkerRequest(full)).after).toHaveLength(255);
    expect(() => encodeWorkerRequest({ ...req, after: after(MAX_BARRIER + 1) })).toThrow(
      /at most 255/,
    );
  });

  it('an entry stream decodes from chunks cut anywhere and checks its count', async () => {
    const entries: Update[] = Array.from({ length: 300 }, (_, i) => ({
      key: keyBytes(`key-${i}`),
      value: i % 10 === 0 ? null : Buffer.alloc(i * 7, i),
      stamp: st(1000 + i, `w${i % 3}`, i + 1),
    }));
    const chunks: Buffer[] = [];
    for await (const c of entryStream(entries.length, entries, 1000)) chunks.push(c);
    const whole = Buffer.concat(chunks);
    for (const size of [1, 7, 333, whole.length]) {
      const d = new EntryStreamDecoder();
      const got: Update[] = [];
      for (let i = 0; i < whole.length; i += size)
        d.push(whole.subarray(i, i + size), (u) => got.push(u));
      d.finish();
      expect(d.total).toBe(300);
      const sig = (u: Update): string =>
        `${u.key.toString('hex')}|${u.value === null ? '-' : u.value.toString('hex')}|${u.stamp.hlc}|${u.stamp.origin}|${u.stamp.seq}`;
      expect(got.map(sig)).toEqual(entries.map(sig));
    }
    const cut = new EntryStreamDecoder();
    cut.push(whole.subarray(0, whole.length - 3), () => undefined);
    expect(() => cut.finish()).toThrow(/cut short/);
  });
});
