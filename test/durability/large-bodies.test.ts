import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnBroker } from './child-broker.js';
import type { ChildBroker } from './child-broker.js';

let child: ChildBroker | null = null;
let dataDir = '';

afterEach(async () => {
  await child?.kill();
  child = null;
  if (dataDir !== '') rmSync(dataDir, { recursive: true, force: true });
});

/** Peak resident memory of a process so far (VmHWM), in bytes. */
function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

const MiB = 1024 * 1024;

function body(seed: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i += 4) b.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
  return b;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('large message bodies', () => {
  it('are written to disk as they arrive and streamed out, never held whole in memory', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'warren-large-'));
    const options = { dataDir, largeMessageThreshold: MiB, memoryBudget: 8 * MiB };
    child = await spawnBroker(options);
    const pid = child.process.pid!;
    const idle = peakRss(pid);
    const SIZE = 48 * MiB;
    const COUNT = 6;
    const digests: string[] = [];
    const conn = await amqplib.connect(child.url);
    const ch = await conn.createConfirmChannel();
    await ch.assertExchange('big-fanout', 'fanout', { durable: true });
    await ch.assertQueue('big-durable', { durable: true });
    await ch.assertQueue('big-transient', { durable: false });
    await ch.bindQueue('big-durable', 'big-fanout', '');
    await ch.bindQueue('big-transient', 'big-fanout', '');
    for (let i = 0; i < COUNT; i++) {
      const b = body(i, SIZE);
      digests.push(sha(b));
      ch.publish('big-fanout', '', b, { persistent: true, headers: { i } });
      await ch.waitForConfirms();
    }
    const afterPublish = peakRss(pid);
    // Two queues hold 6 bodies of 48 MiB each (576 MiB of messages); the broker holds a frame.
    expect(readdirSync(join(dataDir, 'blobs'))).toHaveLength(COUNT);
    expect(afterPublish - idle).toBeLessThan(96 * MiB);

    const got: string[] = [];
    await ch.prefetch(2);
    await new Promise<void>((resolve, reject) => {
      void ch.consume('big-transient', (m) => {
        if (m === null) return reject(new Error('cancelled'));
        got.push(sha(m.content));
        expect(m.properties.headers).toEqual({ i: got.length - 1 });
        ch.ack(m);
        if (got.length === COUNT) resolve();
      });
    });
    expect(got).toEqual(digests);
    expect(peakRss(pid) - idle).toBeLessThan(96 * MiB);
    // The durable queue still references every body.
    expect(readdirSync(join(dataDir, 'blobs'))).toHaveLength(COUNT);
    await conn.close();

    // After a crash the durable copies come back, bodies intact, and the files go once acked.
    await child.kill();
    child = await spawnBroker(options);
    const again = await amqplib.connect(child.url);
    const ch2 = await again.createChannel();
    expect((await ch2.checkQueue('big-durable')).messageCount).toBe(COUNT);
    const back: string[] = [];
    for (let i = 0; i < COUNT; i++) {
      const m = await ch2.get('big-durable');
      if (m === false) throw new Error('missing message');
      back.push(sha(m.content));
      ch2.ack(m);
    }
    expect(back).toEqual(digests);
    await ch2.checkQueue('big-durable');
    expect(readdirSync(join(dataDir, 'blobs'))).toHaveLength(0);
    await again.close();
  });

  it('drops the partial body of a publish cut short, and keeps serving', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'warren-large-'));
    child = await spawnBroker({ dataDir, largeMessageThreshold: MiB });
    const conn = await amqplib.connect(child.url);
    const ch = await conn.createChannel();
    await ch.assertQueue('q', { durable: true });
    // Publish to a missing exchange: the channel errors after the body has streamed in.
    ch.on('error', () => undefined);
    conn.on('error', () => undefined);
    ch.publish('no-such-exchange', '', body(1, 4 * MiB), { persistent: true });
    await new Promise<void>((resolve) => ch.once('close', () => resolve()));
    const ch2 = await conn.createChannel();
    expect((await ch2.checkQueue('q')).messageCount).toBe(0);
    const blobDir = join(dataDir, 'blobs');
    expect(existsSync(blobDir) ? readdirSync(blobDir) : []).toEqual([]);
    await conn.close();
  });
});
