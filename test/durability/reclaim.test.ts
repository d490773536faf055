import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestBroker, waitFor } from '../helpers/broker.js';
import type { TestBroker } from '../helpers/broker.js';

/*
 * Disk is given back as messages are acked, in whatever order: a segment goes as soon as nothing
 * in it is live, and a drained queue returns to next to nothing on disk (also after a restart).
 */

const dataDir = mkdtempSync(join(tmpdir(), 'warren-reclaim-'));
let running: TestBroker | null = null;

afterAll(async () => {
  await running?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const COUNT = 20_000;
const SIZE = 1024;
const SEGMENT = 256 * 1024;

async function boot(): Promise<TestBroker> {
  // A small memory budget too, so most of the queue is read back from disk as it is consumed.
  running = await startTestBroker({ dataDir, segmentSize: SEGMENT, memoryBudget: 1024 * 1024 });
  return running;
}

function queueFiles(): { dat: number; bytes: number } {
  let dat = 0;
  let bytes = 0;
  const root = join(dataDir, 'queues');
  for (const e of readdirSync(root, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    if (e.name.endsWith('.dat')) dat++;
    bytes += statSync(join(e.parentPath, e.name)).size;
  }
  return { dat, bytes };
}

/** Deterministic shuffle (xorshift), so a failure can be replayed. */
function shuffle<T>(items: T[], seed: number): T[] {
  let x = seed || 1;
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const j = (x >>> 0) % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('disk reclaimed', () => {
  it('frees segments as acks arrive out of order, down to near zero when drained', async () => {
    let b = await boot();
    let conn = await amqplib.connect(b.url);
    const pch = await conn.createConfirmChannel();
    await pch.assertQueue('reclaim', { durable: true });
    for (let i = 0; i < COUNT; i++) {
      const body = Buffer.alloc(SIZE, 0x78);
      body.writeUInt32BE(i, 0);
      pch.sendToQueue('reclaim', body, { persistent: true });
    }
    await pch.waitForConfirms();
    const full = queueFiles();
    expect(full.bytes).toBeGreaterThan(COUNT * SIZE);
    expect(full.dat).toBeGreaterThan(40);

    // Take everything (unacked, so nothing is freed yet), then ack: first every odd message in
    // random order (no segment is empty yet), then the even ones from the newest back.
    const ch = await conn.createChannel();
    await ch.prefetch(0);
    const tags: number[] = [];
    let outOfOrder = 0;
    await new Promise<void>((resolve) => {
      void ch.consume('reclaim', (m) => {
        if (m === null) return;
        if (m.content.readUInt32BE(0) !== tags.length) outOfOrder++;
        tags.push(m.fields.deliveryTag);
        if (tags.length === COUNT) resolve();
      });
    });
    expect(outOfOrder).toBe(0);
    const ackTag = (tag: number): void => {
      ch.ack({ fields: { deliveryTag: tag } } as amqplib.Message);
    };
    const odd = shuffle(
      tags.filter((_, i) => i % 2 === 1),
      7,
    );
    for (const t of odd) ackTag(t);
    await ch.checkQueue('reclaim');
    const halfAcked = queueFiles();
    // Every segment still holds live (even) messages.
    expect(halfAcked.dat).toBe(full.dat);

    const even = tags.filter((_, i) => i % 2 === 0).reverse();
    let lastDat = halfAcked.dat;
    let shrinking = 0;
    for (let k = 0; k < even.length; k++) {
      ackTag(even[k]!);
      if (k % 2000 === 1999) {
        await ch.checkQueue('reclaim');
        const now = queueFiles().dat;
        if (now < lastDat) shrinking++;
        lastDat = now;
      }
    }
    await ch.checkQueue('reclaim');
    // Segments went while the acks were still coming, not only at the end.
    expect(shrinking).toBeGreaterThan(3);
    // Drained: the last segment goes too once the queue stays empty for a moment.
    await waitFor(() => queueFiles().dat === 0, 'the drained queue to give back its last segment');
    const drained = queueFiles();
    console.log(
      `reclaim: ${COUNT} x ${SIZE} B in ${full.dat} segments (${full.bytes} bytes); after acking ` +
        `odd ones out of order: ${halfAcked.dat} segments; drained: ${drained.dat} segments, ` +
        `${drained.bytes} bytes`,
    );
    expect(drained.bytes).toBeLessThan(1024);

    // The queue takes new messages after that, and a restart brings back only those.
    await ch.close();
    pch.sendToQueue('reclaim', Buffer.from('after'), { persistent: true });
    await pch.waitForConfirms();
    await conn.close();
    await running!.stop();
    b = await boot();
    conn = await amqplib.connect(b.url);
    const rch = await conn.createChannel();
    expect((await rch.checkQueue('reclaim')).messageCount).toBe(1);
    const m = await rch.get('reclaim', { noAck: true });
    expect(m !== false && m.content.toString()).toBe('after');
    await waitFor(() => queueFiles().dat === 0, 'the drained queue to give back its disk');
    expect(queueFiles().bytes).toBeLessThan(1024);
    await conn.close();
  });
});
