/**
 * The seed's memory test, automated: the load balancer's heap, after every client and worker
 * has disconnected, is back where it was. The load balancer runs with --expose-gc and reports
 * process.memoryUsage() after a collection (LbService.stats).
 *
 * It also runs with V8's optimizing and baseline compilers off: machine code compiled as more
 * functions get hot lives on the heap too and grows for many cycles (a heap snapshot diff shows
 * only code, deopt data and feedback vectors), which would hide a real leak of a few objects per
 * cycle or fake one. Bytecode still counts, so the first cycle raises the level once.
 */
import { afterAll, expect, it } from 'vitest';
import { Inspector, killAll, startLb, startWorker, until } from './cluster.js';
import { OK, WireClient, putFrame } from './wire-client.js';

afterAll(killAll);

const KB = 1024;

it('the load balancer returns to its starting heap after clients and workers come and go', async () => {
  const lb = await startLb(
    ['--cleanup-timeout', '1000'],
    ['--expose-gc', '--no-opt', '--no-maglev', '--no-sparkplug'],
  );
  const inspector = await Inspector.open(lb.brokerUrl);
  try {
    const quiet = async () =>
      until(
        'the load balancer to forget every client and worker',
        async () => {
          const s = await inspector.stats();
          return s.connections === 0 &&
            s.inflight === 0 &&
            s.parked === 0 &&
            s.members === 0 &&
            s.removedMembers === 0 &&
            s.ring.length === 0 &&
            s.timers === 0
            ? s
            : undefined;
        },
        30_000,
        200,
      );
    const heap = async (): Promise<number> => {
      await quiet();
      const s = await inspector.stats(true);
      expect(s.gcRan).toBe(true);
      return s.heapUsed;
    };

    let cycleNo = 0;
    const cycle = async (clients: number): Promise<void> => {
      cycleNo++;
      const workers = [
        await startWorker(lb, ['--name', `m${cycleNo}a`]),
        await startWorker(lb, ['--name', `m${cycleNo}b`]),
      ];
      await until('both workers in the ring', async () =>
        (await inspector.stats()).ring.length === 2 ? true : undefined,
      );
      for (let i = 0; i < clients; i += 10) {
        await Promise.all(
          Array.from({ length: 10 }, async (_, j) => {
            const c = await WireClient.connect(lb.port);
            const k = `mem-${cycleNo}-${i + j}`;
            expect(await c.put(k, 'x'.repeat(100))).toBe(OK);
            expect((await c.get(k)).result).toBe(OK);
            expect(await c.del(k)).toBe(OK);
            c.close();
          }),
        );
        // A client that vanishes with requests in flight and half a frame sent.
        const v = await WireClient.connect(lb.port);
        v.write(Buffer.concat([putFrame('vanish-1', 'y'), putFrame('vanish-2', 'z')]));
        v.write(putFrame('vanish-3', 'w').subarray(0, 5));
        v.destroy();
      }
      for (const w of workers) w.proc.kill('SIGTERM');
      for (const w of workers) expect((await w.proc.exited).code).toBe(0);
    };

    const start = await heap();
    await cycle(50);
    const warm = await heap();
    for (let i = 0; i < 3; i++) await cycle(200);
    const final = await heap();
    const stats = await inspector.stats();
    console.log(
      `kv lb heap: start ${Math.round(start / KB)} KB, after 1 cycle ${Math.round(warm / KB)} KB, ` +
        `after 3 more cycles (${stats.requests} requests, 650 clients + 65 vanished, 8 workers) ` +
        `${Math.round(final / KB)} KB`,
    );
    // Bytecode compiled and caches sized on first use stay; after that, nothing accumulates:
    // a leak of one 100-byte object per request would be 200 KB here.
    expect(final - warm).toBeLessThan(128 * KB);
    expect(final - start).toBeLessThan(1024 * KB);
  } finally {
    await inspector.close();
  }
}, 240_000);
