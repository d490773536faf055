/**
 * A worker paused with SIGSTOP while writes and deletes go on converges once it resumes, and no
 * deleted key comes back: through its replica queue, or, when those messages are lost (the queue
 * purged while it was stopped), through anti-entropy with its peers.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/client/index.js';
import { Inspector, killAll, startLb, startWorker, until } from './cluster.js';
import type { Status, WorkerProc } from './cluster.js';
import { NOT_FOUND, OK, WireClient, parseReply, putFrame, delFrame } from './wire-client.js';

afterAll(killAll);

const N = 300;
const key = (i: number): string => `pause-${i}`;

describe.each([
  { purge: false, path: 'its replica queue' },
  { purge: true, path: 'anti-entropy (its queue was purged)' },
])('a worker paused with SIGSTOP catches up through $path', ({ purge }) => {
  it('converges after it resumes, with no deleted key resurrected', async () => {
    const lb = await startLb(['--attempt-timeout', '1000']);
    const inspector = await Inspector.open(lb.brokerUrl);
    try {
      const workers: WorkerProc[] = [];
      for (let i = 0; i < 3; i++) {
        workers.push(await startWorker(lb, ['--name', `p${i}`, '--anti-entropy-interval', '1000']));
      }
      await until('three workers in the ring', async () =>
        (await inspector.stats()).ring.length === 3 ? true : undefined,
      );
      const [a, b, paused] = workers as [WorkerProc, WorkerProc, WorkerProc];
      const c = await WireClient.connect(lb.port);
      const pipelined = async (frames: Buffer[]): Promise<number[]> => {
        c.write(Buffer.concat(frames));
        const results: number[] = [];
        for (let i = 0; i < frames.length; i++)
          results.push(parseReply(await c.next(30_000)).result);
        return results;
      };
      for (let i = 0; i < N; i += 50) {
        const r = await pipelined(
          Array.from({ length: 50 }, (_, j) => putFrame(key(i + j), `old-${i + j}`)),
        );
        expect(r.every((x) => x === OK)).toBe(true);
      }
      const all = Array.from({ length: N + 300 }, (_, i) => Buffer.from(key(i)));
      await until('the paused-to-be worker to hold everything', async () =>
        (await inspector.status(paused.id)).live === N ? true : undefined,
      );

      paused.proc.kill('SIGSTOP');
      // While it is stopped: overwrite a third, delete a third, add 300 new keys.
      const frames: Buffer[] = [];
      for (let i = 0; i < N; i++) {
        if (i % 3 === 0) frames.push(putFrame(key(i), `new-${i}`));
        else if (i % 3 === 1) frames.push(delFrame(key(i)));
      }
      for (let i = N; i < N + 300; i++) frames.push(putFrame(key(i), `new-${i}`));
      for (let i = 0; i < frames.length; i += 50) {
        expect((await pipelined(frames.slice(i, i + 50))).every((x) => x === OK)).toBe(true);
      }
      // Stopped long enough for the load balancer to take it for failed.
      await lb.proc.waitFor(new RegExp(`^worker ${paused.id} failed`), 30_000);
      if (purge) {
        // The messages it would have caught up from are lost.
        const conn = await connect(lb.brokerUrl, { reconnect: false });
        const ch = await conn.channel();
        const purged = await ch.queuePurge(`warren.kv.replica.${paused.id}`);
        await conn.close();
        expect(purged).toBeGreaterThan(0);
      }
      const mark = paused.proc.lines.length;
      paused.proc.kill('SIGCONT');
      await paused.proc.waitFor(/^not ready: stalled/, 30_000, mark);
      await paused.proc.waitFor(/^ready \(caught up\)/, 60_000, mark);

      const expected = (i: number): string | null =>
        i >= N || i % 3 === 0 ? `new-${i}` : i % 3 === 1 ? null : `old-${i}`;
      const check = (s: Status): boolean =>
        s.lookups.every((l, i) => {
          const want = expected(i);
          if (want === null) return l !== null && l.value === null;
          return l !== null && l.value !== null && Buffer.from(l.value).toString() === want;
        });
      const final = await until(
        'every replica to converge',
        async () => {
          const s = await Promise.all(workers.map((w) => inspector.status(w.id, all)));
          return s.every((x) => x.digest === s[0]!.digest) && s.every(check) ? s : undefined;
        },
        60_000,
      );
      expect(final.map((s) => s.live)).toEqual([0, 1, 2].map(() => N + 300 - N / 3));
      if (purge) {
        const p = final[2]!;
        expect(p.repaired).toBeGreaterThan(0);
        await paused.proc.waitFor(/^anti-entropy.*\b[1-9]\d* entries repaired/, 10_000, mark);
      }
      // Reads through the load balancer (the resumed worker included) agree.
      expect((await inspector.stats()).ring).toContain(paused.id);
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 30; i++) {
          const g = await c.get(key(i));
          const want = expected(i);
          if (want === null) expect(g.result, key(i)).toBe(NOT_FOUND);
          else expect(g.value.toString(), key(i)).toBe(want);
        }
      }
      c.close();
      expect([a.id, b.id]).not.toContain(paused.id);
    } finally {
      await inspector.close();
    }
  }, 120_000);
});
