import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnBroker } from './child-broker.js';
import type { ChildBroker, ChildStats } from './child-broker.js';

/*
 * Memory is bounded whatever the queue depth: with a 16 MiB memory budget, a durable queue of
 * 200,000 persistent 1 KiB messages (and a transient flood into a non-durable queue) lives on
 * disk, the broker's memory stays far below the bytes queued, and every message comes back in
 * order. Measured in a child process (run with --expose-gc) so the test's own clients do not count.
 */

const BUDGET = 16 * 1024 * 1024;
const DURABLE_COUNT = 200_000;
const TRANSIENT_COUNT = 100_000;
const SIZE = 1024;
const MiB = 1024 * 1024;

const dataDir = mkdtempSync(join(tmpdir(), 'warren-memory-'));
let child: ChildBroker | null = null;

afterAll(async () => {
  await child?.kill();
  rmSync(dataDir, { recursive: true, force: true });
});

function body(i: number): Buffer {
  const b = Buffer.alloc(SIZE, 0x61 + (i % 26));
  b.writeUInt32BE(i, 0);
  return b;
}

function mib(n: number): string {
  return `${(n / MiB).toFixed(1)} MiB`;
}

/** Bytes the broker holds for messages: JS heap plus buffers outside it. */
function held(s: ChildStats): number {
  return s.heapUsed + s.arrayBuffers;
}

/** Publish `count` messages with confirms, sampling the broker's memory as the queue grows. */
async function publish(
  ch: amqplib.ConfirmChannel,
  queue: string,
  count: number,
  persistent: boolean,
  broker: ChildBroker,
): Promise<ChildStats[]> {
  const samples: ChildStats[] = [];
  const batch = 5000;
  for (let start = 0; start < count; start += batch) {
    for (let i = start; i < Math.min(count, start + batch); i++) {
      if (!ch.sendToQueue(queue, body(i), { persistent })) {
        await new Promise((r) => ch.once('drain', r));
      }
    }
    await ch.waitForConfirms();
    if ((start / batch) % 8 === 7) samples.push(await broker.stats());
  }
  return samples;
}

/** Consume everything, checking that it arrives in publish order. */
async function consumeInOrder(ch: amqplib.Channel, queue: string, count: number): Promise<number> {
  await ch.prefetch(2000);
  let next = 0;
  let outOfOrder = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`consuming ${queue}: ${next} of ${count} after 120 s`)),
      120_000,
    );
    void ch.consume(queue, (m) => {
      if (m === null) return;
      if (m.content.readUInt32BE(0) !== next || m.content.length !== SIZE) outOfOrder++;
      next++;
      if (next % 500 === 0 || next === count) ch.ack(m, true);
      if (next === count) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return outOfOrder;
}

describe('memory bounded whatever the depth', () => {
  it('keeps a deep durable queue and a transient flood on disk, in order', async () => {
    child = await spawnBroker({ dataDir, memoryBudget: BUDGET }, { exposeGc: true });
    const idle = await child.stats();
    const conn = await amqplib.connect(child.url);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('deep', { durable: true });
    await ch.assertQueue('flood', { durable: false });

    // A deep durable queue of persistent messages.
    const samples = await publish(ch, 'deep', DURABLE_COUNT, true, child);
    const full = await child.stats();
    const durableBytes = DURABLE_COUNT * SIZE;
    const peak = Math.max(...samples.map(held), held(full));
    const peakRss = Math.max(...samples.map((s) => s.rss), full.rss);
    console.log(
      `durable: ${DURABLE_COUNT} x ${SIZE} B = ${mib(durableBytes)} queued with a ${mib(BUDGET)} ` +
        `budget; broker heap ${mib(full.heapUsed)} + buffers ${mib(full.arrayBuffers)} ` +
        `(idle ${mib(held(idle))}, peak ${mib(peak)}), RSS ${mib(full.rss)} (peak ${mib(peakRss)}); ` +
        `${full.queues.deep!.tail} of ${full.queues.deep!.messages} messages only on disk`,
    );
    expect(full.queues.deep!.messages).toBe(DURABLE_COUNT);
    expect(full.queues.deep!.tail).toBeGreaterThan(DURABLE_COUNT * 0.8);
    expect(full.budgetUsed).toBeLessThan(BUDGET + 2 * MiB);
    // Far below the bytes queued: the budget plus the broker's own working set.
    expect(peak).toBeLessThan(BUDGET + 48 * MiB);
    expect(peak).toBeLessThan(durableBytes / 3);
    // RSS (which also holds the allocator's and V8's reserves) does not follow the depth either:
    // from the first sample (40,000 messages) to 200,000 it grows by far less than the 156 MiB added.
    const rssGrowth = full.rss - samples[0]!.rss;
    console.log(
      `RSS by depth (per 40,000 messages): ${samples.map((s) => mib(s.rss)).join(', ')}; ` +
        `idle ${mib(idle.rss)}`,
    );
    expect(rssGrowth).toBeLessThan((durableBytes * 0.8) / 2);

    // A transient flood into a non-durable queue pages to disk under the same budget.
    const floodSamples = await publish(ch, 'flood', TRANSIENT_COUNT, false, child);
    const flooded = await child.stats();
    const floodPeak = Math.max(...floodSamples.map(held), held(flooded));
    console.log(
      `transient: ${TRANSIENT_COUNT} x ${SIZE} B more into a non-durable queue; broker heap ` +
        `${mib(flooded.heapUsed)} + buffers ${mib(flooded.arrayBuffers)} (peak ${mib(floodPeak)}), ` +
        `RSS ${mib(flooded.rss)}; ${flooded.queues.flood!.tail} of ` +
        `${flooded.queues.flood!.messages} only on disk`,
    );
    expect(flooded.queues.flood!.messages).toBe(TRANSIENT_COUNT);
    expect(flooded.queues.flood!.tail).toBeGreaterThan(TRANSIENT_COUNT * 0.8);
    expect(floodPeak).toBeLessThan(BUDGET + 48 * MiB);

    // Everything comes back, in order.
    const cconn = await amqplib.connect(child.url);
    const cch = await cconn.createChannel();
    expect(await consumeInOrder(cch, 'deep', DURABLE_COUNT)).toBe(0);
    expect(await consumeInOrder(cch, 'flood', TRANSIENT_COUNT)).toBe(0);
    expect((await cch.checkQueue('deep')).messageCount).toBe(0);
    expect((await cch.checkQueue('flood')).messageCount).toBe(0);
    const drained = await child.stats();
    console.log(
      `drained: heap ${mib(drained.heapUsed)} + buffers ${mib(drained.arrayBuffers)}, ` +
        `RSS ${mib(drained.rss)}, budget in use ${drained.budgetUsed} B`,
    );
    expect(drained.budgetUsed).toBe(0);
    await cconn.close();
    await conn.close();
    await child.stop();
    child = null;
  }, 170_000);
});
