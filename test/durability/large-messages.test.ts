import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestBroker, waitFor } from '../helpers/broker.js';
import type { TestBroker } from '../helpers/broker.js';

/*
 * Messages larger than one read from disk (several MiB, read back record by record) obey the same
 * rules after a restart as small ones: the acked ones stay gone, the others come back once, in
 * order, and the queue's counts stay right.
 */

const dataDir = mkdtempSync(join(tmpdir(), 'warren-large-'));
let running: TestBroker | null = null;

afterAll(async () => {
  await running?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const SIZES = [5 * 1024 * 1024, 100 * 1024, 1024];
const COUNT = 18;

function body(i: number): Buffer {
  const b = Buffer.alloc(SIZES[i % SIZES.length]!, i);
  b.writeUInt32BE(i, 0);
  return b;
}

describe('large messages across a restart', () => {
  it('keeps acked large messages gone and the others, in order', async () => {
    running = await startTestBroker({ dataDir });
    let conn = await amqplib.connect(running.url);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('large', { durable: true });
    for (let i = 0; i < COUNT; i++) ch.sendToQueue('large', body(i), { persistent: true });
    await ch.waitForConfirms();
    // Ack every other one (so each size is acked and kept).
    await ch.prefetch(COUNT);
    const got: amqplib.ConsumeMessage[] = [];
    const { consumerTag } = await ch.consume('large', (m) => {
      if (m !== null) got.push(m);
    });
    await waitFor(() => got.length === COUNT, 'every delivery');
    await ch.cancel(consumerTag);
    for (const m of got) if (m.content.readUInt32BE(0) % 2 === 1) ch.ack(m);
    await ch.checkQueue('large');
    await conn.close();
    await running.stop();

    running = await startTestBroker({ dataDir });
    conn = await amqplib.connect(running.url);
    const rch = await conn.createChannel();
    const kept = Array.from({ length: COUNT }, (_, i) => i).filter((i) => i % 2 === 0);
    expect((await rch.checkQueue('large')).messageCount).toBe(kept.length);
    const back: number[] = [];
    for (let n = 0; n < COUNT; n++) {
      const m = await rch.get('large', { noAck: true });
      if (m === false) break;
      const i = m.content.readUInt32BE(0);
      back.push(i);
      expect(m.content.equals(body(i))).toBe(true);
      expect(m.fields.redelivered).toBe(true);
    }
    expect(back).toEqual(kept);
    expect((await rch.checkQueue('large')).messageCount).toBe(0);
    await conn.close();
  });
});
