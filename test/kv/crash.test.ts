/**
 * A worker killed with SIGKILL under load loses no acknowledged write: a put is acknowledged only
 * once the broker holds its replication message for every replica, whichever worker accepted it.
 */
import { afterAll, expect, it } from 'vitest';
import { Inspector, killAll, startLb, startWorker, until } from './cluster.js';
import { OK, WireClient, parseReply, putFrame } from './wire-client.js';

afterAll(killAll);

it('loses no acknowledged write when a worker is killed with SIGKILL under load', async () => {
  const lb = await startLb(['--attempt-timeout', '1000']);
  const inspector = await Inspector.open(lb.brokerUrl);
  try {
    const workers = [];
    for (let i = 0; i < 3; i++) workers.push(await startWorker(lb, ['--name', `k${i}`]));
    await until('three workers in the ring', async () =>
      (await inspector.stats()).ring.length === 3 ? true : undefined,
    );
    const victim = workers[1]!;
    // Per key, the values it may hold: the last acknowledged one, plus any sent after it that
    // failed (a failed put is not acknowledged, but it may still have been applied).
    const acked = new Map<string, string>();
    const possible = new Map<string, Set<string>>();
    let errors = 0;
    let killed = false;
    const PER_WRITER = 600;
    const writers = await Promise.all(Array.from({ length: 4 }, () => WireClient.connect(lb.port)));
    let sent = 0;
    await Promise.all(
      writers.map(async (c, wi) => {
        // Eight puts in flight per connection, each key written twice (the later value must win).
        for (let i = 0; i < PER_WRITER; i += 8) {
          const batch: [string, string][] = [];
          for (let j = i; j < i + 8; j++) {
            const key = `crash-${wi}-${j % (PER_WRITER / 2)}`;
            batch.push([key, `v-${wi}-${j}`]);
          }
          c.write(Buffer.concat(batch.map(([k, v]) => putFrame(k, v))));
          for (const [k, v] of batch) {
            const r = parseReply(await c.next(30_000));
            expect(r.key.toString()).toBe(k);
            if (r.result === OK) {
              acked.set(k, v);
              possible.set(k, new Set([v]));
            } else {
              errors++;
              const set = possible.get(k) ?? new Set(['(absent)']);
              set.add(v);
              possible.set(k, set);
            }
          }
          sent += 8;
          // Kill one worker a third of the way through, while every writer has puts in flight.
          if (!killed && sent >= (PER_WRITER * writers.length) / 3) {
            killed = true;
            victim.proc.kill('SIGKILL');
          }
        }
        c.close();
      }),
    );
    expect(killed).toBe(true);
    expect((await victim.proc.exited).signal).toBe('SIGKILL');
    // Most puts succeed; a put that got ERROR was not acknowledged and promises nothing.
    expect(acked.size).toBeGreaterThan(4 * (PER_WRITER / 2) - 50);
    expect(errors).toBeLessThan(50);

    // Every acknowledged value, read back through the load balancer...
    const r = await WireClient.connect(lb.port);
    for (const [k, v] of acked) {
      const g = await r.get(k);
      expect(g.result, k).toBe(OK);
      expect(
        possible.get(k)!.has(g.value.toString()),
        `${k}: ${g.value.toString()} after ${v}`,
      ).toBe(true);
    }
    r.close();
    // ...and held by each surviving replica.
    const keys = [...acked.keys()].map((k) => Buffer.from(k));
    for (const w of [workers[0]!, workers[2]!]) {
      const s = await until(`replica ${w.id} to hold every acknowledged write`, async () => {
        const st = await inspector.status(w.id, keys);
        const ok = st.lookups.every(
          (l, i) =>
            l !== null &&
            l.value !== null &&
            possible.get(keys[i]!.toString())!.has(Buffer.from(l.value).toString()),
        );
        return ok ? st : undefined;
      });
      expect(s.live).toBeGreaterThanOrEqual(acked.size);
    }
    // The load balancer noticed: the dead worker is out of the ring.
    await until('the killed worker out of the ring', async () =>
      (await inspector.stats()).ring.includes(victim.id) ? undefined : true,
    );
  } finally {
    await inspector.close();
  }
});
