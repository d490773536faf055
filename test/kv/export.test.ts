/**
 * A worker that joins takes a full export through warren/transfer (the data set is far larger
 * than one message), serves only once it holds it, and then answers reads correctly on its own.
 */
import { createHash } from 'node:crypto';
import { afterAll, expect, it } from 'vitest';
import { Inspector, killAll, startLb, startWorker, until } from './cluster.js';
import { OK, WireClient, getFrame, parseReply, putFrame } from './wire-client.js';

afterAll(killAll);

const KEYS = 1700;
const VALUE = 62_000;

/** A value of VALUE bytes that only this key has: its SHA-256 repeated. */
function valueOf(key: string): Buffer {
  const seed = createHash('sha256').update(key).digest();
  const v = Buffer.allocUnsafe(VALUE);
  for (let i = 0; i < VALUE; i += seed.length) seed.copy(v, i, 0, Math.min(seed.length, VALUE - i));
  return v;
}

it('a new worker receives a full export of over 100 MB and then serves it alone', async () => {
  const lb = await startLb(['--attempt-timeout', '5000']);
  const inspector = await Inspector.open(lb.brokerUrl);
  try {
    const first = await startWorker(lb, ['--name', 'old']);
    const keys = Array.from({ length: KEYS }, (_, i) => `big-${i}`);
    const clients = await Promise.all(Array.from({ length: 4 }, () => WireClient.connect(lb.port)));
    let next = 0;
    await Promise.all(
      clients.map(async (c) => {
        // Four puts in flight per connection.
        for (;;) {
          const batch = keys.slice(next, next + 4);
          next += 4;
          if (batch.length === 0) break;
          c.write(Buffer.concat(batch.map((k) => putFrame(k, valueOf(k)))));
          for (const k of batch) {
            const r = parseReply(await c.next(60_000));
            expect(r.result, k).toBe(OK);
          }
        }
      }),
    );
    const loaded = await inspector.status(first.id);
    expect(loaded.live).toBe(KEYS);
    expect(loaded.bytes).toBe(KEYS * VALUE);
    expect(loaded.bytes).toBeGreaterThan(100 * 1024 * 1024);

    // Writes go on while the new worker joins: they reach it through its queue, not the export.
    const during = clients[0]!;
    const joining = startWorker(lb, ['--name', 'new'], true, 240_000);
    for (let i = 0; i < 20; i++) expect(await during.put(`during-${i}`, `d-${i}`)).toBe(OK);
    const second = await joining;
    const exported = await second.proc.waitFor(
      /^export from \S+ complete: (\d+) entries, ([\d.]+) MB/,
    );
    expect(Number(exported[1])).toBeGreaterThanOrEqual(KEYS);
    expect(Number(exported[2])).toBeGreaterThan(100);
    const joined = await inspector.status(second.id);
    expect(joined.state).toBe('ready');
    expect(joined.live).toBe(loaded.live + 20);
    expect(joined.imported).toBeGreaterThanOrEqual(KEYS);

    // The old worker leaves; the new one now answers every read by itself.
    first.proc.kill('SIGTERM');
    await first.proc.exited;
    await until('only the new worker in the ring', async () => {
      const ring = (await inspector.stats()).ring;
      return ring.length === 1 && ring[0] === second.id ? true : undefined;
    });
    const before = (await inspector.status(second.id)).served.get;
    const reader = clients[1]!;
    for (let i = 0; i < KEYS; i += 10) {
      const batch = keys.slice(i, i + 10);
      reader.write(Buffer.concat(batch.map((k) => getFrame(k))));
      for (const k of batch) {
        const r = parseReply(await reader.next(60_000));
        expect(r.result, k).toBe(OK);
        expect(r.value.equals(valueOf(k)), k).toBe(true);
      }
    }
    for (let i = 0; i < 20; i++)
      expect((await reader.get(`during-${i}`)).value.toString()).toBe(`d-${i}`);
    expect((await inspector.status(second.id)).served.get - before).toBe(KEYS + 20);
    for (const c of clients) c.close();
  } finally {
    await inspector.close();
  }
}, 280_000);
