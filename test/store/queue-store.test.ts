import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CommitScheduler } from '../../src/store/commit-scheduler.js';
import { QueueStore } from '../../src/store/queue-store.js';
import type { StoredRef } from '../../src/store/queue-store.js';
import { RecordFlag } from '../../src/store/record.js';

let dir: string;
let warnings: string[];
const logger = { info: () => undefined, warn: (m: string) => warnings.push(m) };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'warren-qs-'));
  warnings = [];
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function open(segmentSize = 64 * 1024): { store: QueueStore; commit: CommitScheduler } {
  const commit = new CommitScheduler(10);
  return { store: new QueueStore(join(dir, 'q'), { segmentSize, commit, logger }), commit };
}

function rec(seq: number, persistent = true, bodySize = 100) {
  return {
    seq,
    expiresAt: seq * 1000,
    flags: persistent ? RecordFlag.Persistent : 0,
    exchange: 'ex',
    routingKey: `rk.${seq}`,
    header: Buffer.from([0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, bodySize, 0, 0]),
    body: Buffer.alloc(bodySize, seq % 251),
  };
}

function drainTail(store: QueueStore) {
  const out = [];
  for (;;) {
    const batch = store.readTail(1000, 1 << 20);
    if (batch.length === 0) return out;
    out.push(...batch);
  }
}

describe('QueueStore', () => {
  it('recovers unacked persistent records in order, without acked or transient ones', () => {
    const { store } = open();
    const refs = new Map<number, StoredRef>();
    for (let seq = 1; seq <= 2000; seq++)
      refs.set(seq, store.append(rec(seq, seq % 10 !== 0), false));
    for (let seq = 1; seq <= 2000; seq += 3)
      if (seq % 10 !== 0) store.release(refs.get(seq)!, true);
    store.close();

    const { store: again } = open();
    const r = again.recover();
    const expected = [];
    for (let seq = 1; seq <= 2000; seq++)
      if (seq % 10 !== 0 && (seq - 1) % 3 !== 0) expected.push(seq);
    expect(r.liveCount).toBe(expected.length);
    expect(r.maxSeq).toBe(2000);
    const got = drainTail(again);
    expect(got.map((x) => x.seq)).toEqual(expected);
    for (const x of got) {
      expect(x.routingKey).toBe(`rk.${x.seq}`);
      expect(x.expiresAt).toBe(x.seq * 1000);
      expect(x.body.equals(Buffer.alloc(100, x.seq % 251))).toBe(true);
      expect(x.redelivered).toBe(false);
    }
    again.close();
  });

  it('frees segments once every record in them is released and returns to near-zero disk', () => {
    const { store } = open(16 * 1024);
    const refs: StoredRef[] = [];
    for (let seq = 1; seq <= 1000; seq++) refs.push(store.append(rec(seq, true, 500), false));
    store.flush();
    expect(store.segmentCount).toBeGreaterThan(20);
    for (const ref of refs) store.release(ref, true);
    store.flush();
    expect(store.segmentCount).toBe(1);
    const files = readdirSync(join(dir, 'q')).filter((f) => f.endsWith('.dat'));
    expect(files).toHaveLength(1);
    expect(store.diskBytes).toBeLessThan(16 * 1024 + 1024);
    store.close();
  });

  it('keeps tail records on disk only and reads them back in order', () => {
    const { store } = open(32 * 1024);
    for (let seq = 1; seq <= 10; seq++) store.append(rec(seq), false);
    for (let seq = 11; seq <= 5000; seq++) store.append(rec(seq, seq % 2 === 0), true);
    expect(store.tailCount).toBe(4990);
    const got = drainTail(store);
    expect(got.map((x) => x.seq)).toEqual(Array.from({ length: 4990 }, (_, i) => i + 11));
    expect(got.every((x) => x.persistent === (x.seq % 2 === 0))).toBe(true);
    expect(store.tailCount).toBe(0);
    store.close();
  });

  it('cuts a torn tail (crash mid-write) and keeps the intact prefix', () => {
    const { store } = open(1 << 20);
    for (let seq = 1; seq <= 50; seq++) store.append(rec(seq), false);
    store.close();
    const file = join(dir, 'q', '0000000001.dat');
    const size = statSync(file).size;
    truncateSync(file, size - 37);
    const { store: again } = open(1 << 20);
    const r = again.recover();
    expect(r.liveCount).toBe(49);
    expect(warnings.some((w) => w.includes('incomplete record'))).toBe(true);
    expect(drainTail(again).map((x) => x.seq)).toEqual(Array.from({ length: 49 }, (_, i) => i + 1));
    // Appends after recovery go after the cut.
    again.append(rec(51), false);
    again.close();
    const { store: third } = open(1 << 20);
    expect(third.recover().liveCount).toBe(50);
    third.close();
  });

  it('reports a corrupt record in the middle, skips it and recovers the rest', () => {
    const { store } = open(1 << 20);
    for (let seq = 1; seq <= 30; seq++) store.append(rec(seq), false);
    store.close();
    const file = join(dir, 'q', '0000000001.dat');
    const bytes = readFileSync(file);
    const recordSize = (bytes.length - 8) / 30;
    const at = 8 + recordSize * 10 + 40; // a body byte of record 11
    bytes[at] = bytes[at]! ^ 0xff;
    writeFileSync(file, bytes);
    const { store: again } = open(1 << 20);
    const r = again.recover();
    expect(r.liveCount).toBe(29);
    expect(warnings.some((w) => w.includes('damaged data at offset'))).toBe(true);
    const seqs = drainTail(again).map((x) => x.seq);
    expect(seqs).not.toContain(11);
    expect(seqs).toHaveLength(29);
    again.close();
  });

  it('marks records delivered before a restart as redelivered', () => {
    const { store } = open();
    for (let seq = 1; seq <= 20; seq++) store.append(rec(seq), false);
    store.noteDelivered(12);
    store.close();
    const { store: again } = open();
    again.recover();
    const got = drainTail(again);
    expect(got.filter((x) => x.redelivered).map((x) => x.seq)).toEqual(
      Array.from({ length: 12 }, (_, i) => i + 1),
    );
    again.close();
  });

  it('purges the tail, acking persistent records so they do not come back', () => {
    const { store } = open();
    for (let seq = 1; seq <= 300; seq++) store.append(rec(seq), true);
    expect(store.purgeTail()).toBe(300);
    store.close();
    const { store: again } = open();
    expect(again.recover().liveCount).toBe(0);
    again.close();
  });
});

describe('CommitScheduler', () => {
  it('calls waiters after the data is synced, many waiters sharing one commit', async () => {
    const { store, commit } = open();
    const done: number[] = [];
    const waits = [];
    for (let i = 0; i < 100; i++) {
      store.append(rec(i + 1), false);
      waits.push(
        new Promise<void>((resolve, reject) =>
          commit.afterNextCommit((err) => (err === null ? (done.push(i), resolve()) : reject(err))),
        ),
      );
    }
    await Promise.all(waits);
    expect(done).toHaveLength(100);
    expect(commit.stats.commits).toBeLessThanOrEqual(2);
    expect(commit.stats.syncs).toBeGreaterThanOrEqual(1);
    store.close();
  });
});
