/**
 * The key-value service as real processes: a load balancer, several workers, and clients that
 * speak the binary protocol through an independent codec (wire-client.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inspector, killAll, startLb, startWorker, until } from './cluster.js';
import type { Lb, WorkerProc } from './cluster.js';
import { NOT_FOUND, OK, WireClient, getFrame, parseReply, putFrame } from './wire-client.js';

afterAll(killAll);

describe('three workers behind the load balancer', () => {
  let lb: Lb;
  let workers: WorkerProc[];
  let inspector: Inspector;

  beforeAll(async () => {
    lb = await startLb();
    workers = [];
    // One at a time, so each later one takes an export (of nothing yet).
    for (let i = 0; i < 3; i++) workers.push(await startWorker(lb, ['--name', `w${i}`]));
    inspector = await Inspector.open(lb.brokerUrl);
    await until('three workers in the ring', async () =>
      (await inspector.stats()).ring.length === 3 ? true : undefined,
    );
  });
  afterAll(async () => {
    await inspector?.close();
  });

  const served = async (): Promise<number[]> =>
    Promise.all(
      workers.map(async (w) => {
        const s = (await inspector.status(w.id)).served;
        return s.put + s.get + s.del;
      }),
    );

  it('hands requests to the workers in turn, and every worker holds every write', async () => {
    const c = await WireClient.connect(lb.port);
    const before = await served();
    for (let i = 0; i < 150; i++) {
      expect(await c.put(`rr-${i}`, `value-${i}`)).toBe(OK);
      const g = await c.get(`rr-${i}`);
      expect(g.result).toBe(OK);
      expect(g.value.toString()).toBe(`value-${i}`);
    }
    const after = await served();
    const delta = after.map((n, i) => n - before[i]!);
    expect(delta.reduce((a, b) => a + b, 0)).toBe(300);
    // Round robin: 100 each, give or take the odd retry.
    for (const d of delta) expect(d).toBeGreaterThanOrEqual(90);
    // Replication: each worker holds all 150 keys with the same values.
    const keys = Array.from({ length: 150 }, (_, i) => Buffer.from(`rr-${i}`));
    for (const w of workers) {
      const s = await until(`worker ${w.id} to hold every key`, async () => {
        const st = await inspector.status(w.id, keys);
        return st.lookups.every((l) => l !== null) ? st : undefined;
      });
      s.lookups.forEach((l, i) => expect(Buffer.from(l!.value!).toString()).toBe(`value-${i}`));
    }
    c.close();
  });

  it('answers pipelined requests in order, from many clients at once', async () => {
    const clients = await Promise.all(Array.from({ length: 8 }, () => WireClient.connect(lb.port)));
    await Promise.all(
      clients.map(async (c, ci) => {
        const frames: Buffer[] = [];
        for (let i = 0; i < 50; i++) {
          frames.push(putFrame(`p-${ci}-${i}`, `v-${ci}-${i}`));
          frames.push(getFrame(`p-${ci}-${i}`));
        }
        // One write of 100 frames: the load balancer sees them pipelined.
        c.write(Buffer.concat(frames));
        for (let i = 0; i < 50; i++) {
          const put = parseReply(await c.next());
          expect(put.type).toBe(2);
          expect(put.result).toBe(OK);
          expect(put.key.toString()).toBe(`p-${ci}-${i}`);
          const get = parseReply(await c.next());
          expect(get.type).toBe(4);
          expect(get.key.toString()).toBe(`p-${ci}-${i}`);
          // Same connection, same key: the get sees the put before it.
          expect(get.result).toBe(OK);
          expect(get.value.toString()).toBe(`v-${ci}-${i}`);
        }
        c.close();
      }),
    );
  });

  it('makes concurrent writers to one key converge to one value on every replica', async () => {
    const writers = await Promise.all(Array.from({ length: 6 }, () => WireClient.connect(lb.port)));
    const written = new Set<string>();
    await Promise.all(
      writers.map(async (c, wi) => {
        for (let i = 0; i < 40; i++) {
          const v = `writer-${wi}-round-${i}`;
          written.add(v);
          // Several in flight per writer, all on the hot key.
          c.write(Buffer.concat([putFrame('hot', v), putFrame(`hot-${i % 3}`, v)]));
          expect(parseReply(await c.next()).result).toBe(OK);
          expect(parseReply(await c.next()).result).toBe(OK);
        }
        c.close();
      }),
    );
    const keys = ['hot', 'hot-0', 'hot-1', 'hot-2'].map((k) => Buffer.from(k));
    const agreed = await until('every replica to hold the same versions', async () => {
      const all = await Promise.all(workers.map((w) => inspector.status(w.id, keys)));
      const first = JSON.stringify(all[0]!.lookups);
      return all.every((s) => JSON.stringify(s.lookups) === first) ? all[0]! : undefined;
    });
    for (const l of agreed.lookups) {
      expect(l).not.toBeNull();
      expect(written.has(Buffer.from(l!.value!).toString())).toBe(true);
    }
    // Reads through the load balancer, from any worker, agree with the replicas.
    const r = await WireClient.connect(lb.port);
    for (let i = 0; i < 6; i++) {
      const g = await r.get('hot');
      expect(g.value.toString()).toBe(Buffer.from(agreed.lookups[0]!.value!).toString());
    }
    r.close();
  });

  it('deletes: NOT_FOUND afterwards from every worker, and NOT_FOUND for a second delete', async () => {
    const c = await WireClient.connect(lb.port);
    expect(await c.put('gone', 'soon')).toBe(OK);
    expect(await c.del('gone')).toBe(OK);
    for (let i = 0; i < 6; i++) expect((await c.get('gone')).result).toBe(NOT_FOUND);
    expect(await c.del('gone')).toBe(NOT_FOUND);
    expect(await c.del('never-there')).toBe(NOT_FOUND);
    // The delete is a death certificate on every replica, not an absence.
    for (const w of workers) {
      const s = await until('the death certificate everywhere', async () => {
        const st = await inspector.status(w.id, [Buffer.from('gone')]);
        return st.lookups[0] !== null ? st : undefined;
      });
      expect(s.lookups[0]!.value).toBeNull();
    }
    c.close();
  });
});

describe('read-your-writes', () => {
  it('a client reads its own writes even from a replica that applies them late', async () => {
    const lb = await startLb();
    const inspector = await Inspector.open(lb.brokerUrl);
    try {
      const fast = await startWorker(lb, ['--name', 'fast']);
      // This replica applies other workers' writes 1.5 s late.
      const slow = await startWorker(lb, ['--name', 'slow', '--replication-delay', '1500']);
      await until('two workers in the ring', async () =>
        (await inspector.stats()).ring.length === 2 ? true : undefined,
      );
      const c = await WireClient.connect(lb.port);
      const before = (await inspector.status(slow.id)).served.behind;
      for (let i = 0; i < 8; i++) {
        expect(await c.put(`ryw-${i}`, `first-${i}`)).toBe(OK);
        expect(await c.put(`ryw-${i}`, `second-${i}`)).toBe(OK);
        // Round robin sends every other request to the slow replica.
        const g = await c.get(`ryw-${i}`);
        expect(g.result).toBe(OK);
        expect(g.value.toString()).toBe(`second-${i}`);
        expect(await c.del(`ryw-${i}`)).toBe(OK);
        expect((await c.get(`ryw-${i}`)).result).toBe(NOT_FOUND);
      }
      // The slow replica did have to hold reads back (so the test exercised the barrier).
      const after = await inspector.status(slow.id);
      expect(after.served.behind + after.served.get).toBeGreaterThan(before);
      expect(after.served.behind).toBeGreaterThan(0);
      c.close();
      expect(fast.id).not.toBe(slow.id);
    } finally {
      await inspector.close();
    }
  });
});
