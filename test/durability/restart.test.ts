import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestBroker } from '../helpers/broker.js';
import type { TestBroker } from '../helpers/broker.js';

let dataDir: string;
let running: TestBroker | null = null;

async function boot(): Promise<TestBroker> {
  running = await startTestBroker({ dataDir });
  return running;
}

async function shutdown(): Promise<void> {
  await running?.stop();
  running = null;
}

afterEach(async () => {
  await shutdown();
  rmSync(dataDir, { recursive: true, force: true });
});

function fresh(): void {
  dataDir = mkdtempSync(join(tmpdir(), 'warren-restart-'));
}

async function channel(b: TestBroker) {
  const conn = await amqplib.connect(b.url);
  conn.on('error', () => undefined);
  const ch = await conn.createConfirmChannel();
  ch.on('error', () => undefined);
  return { conn, ch };
}

async function drain(ch: amqplib.Channel, queue: string) {
  const out: amqplib.GetMessage[] = [];
  for (;;) {
    const m = await ch.get(queue, { noAck: true });
    if (m === false) return out;
    out.push(m);
  }
}

describe('restart', () => {
  it('keeps durable entities and persistent messages; drops transient ones', async () => {
    fresh();
    let b = await boot();
    let { conn, ch } = await channel(b);
    await ch.assertExchange('orders', 'topic', { durable: true });
    await ch.assertExchange('scratch', 'fanout', { durable: false });
    await ch.assertQueue('durable-q', { durable: true, arguments: { 'x-message-ttl': 3_600_000 } });
    await ch.assertQueue('transient-q', { durable: false });
    await ch.bindQueue('durable-q', 'orders', 'eu.#');
    await ch.bindQueue('transient-q', 'orders', 'eu.#');
    for (let i = 0; i < 500; i++) {
      ch.publish('orders', 'eu.fr', Buffer.from(`m${i}`), {
        persistent: i % 2 === 0,
        headers: { i },
        contentType: 'text/plain',
      });
    }
    await ch.waitForConfirms();
    await conn.close();
    await shutdown();

    b = await boot();
    ({ conn, ch } = await channel(b));
    await ch.checkExchange('orders');
    await expect(ch.checkExchange('scratch')).rejects.toThrow(/NOT_FOUND/);
    ch = await conn.createConfirmChannel();
    ch.on('error', () => undefined);
    await expect(ch.checkQueue('transient-q')).rejects.toThrow(/NOT_FOUND/);
    ch = await conn.createConfirmChannel();
    ch.on('error', () => undefined);
    const q = await ch.checkQueue('durable-q');
    expect(q.messageCount).toBe(250);
    const msgs = await drain(ch, 'durable-q');
    expect(msgs.map((m) => m.content.toString())).toEqual(
      Array.from({ length: 250 }, (_, k) => `m${k * 2}`),
    );
    expect(msgs[0]!.properties.headers).toEqual({ i: 0 });
    expect(msgs[0]!.properties.contentType).toBe('text/plain');
    expect(msgs[0]!.fields.redelivered).toBe(false);
    // The binding survived: a new publish still reaches the queue.
    ch.publish('orders', 'eu.de', Buffer.from('after'), { persistent: true });
    await ch.waitForConfirms();
    expect((await ch.checkQueue('durable-q')).messageCount).toBe(1);
    // The queue keeps its arguments (an inequivalent redeclare is refused).
    await expect(ch.assertQueue('durable-q', { durable: true })).rejects.toThrow(
      /inequivalent arg 'x-message-ttl'/,
    );
    await conn.close();
  });

  it('does not bring back acked messages, and flags ones delivered before the restart', async () => {
    fresh();
    let b = await boot();
    let { conn, ch } = await channel(b);
    await ch.assertQueue('work', { durable: true });
    for (let i = 0; i < 100; i++)
      ch.sendToQueue('work', Buffer.from(String(i)), { persistent: true });
    await ch.waitForConfirms();
    await ch.prefetch(30);
    const seen: amqplib.ConsumeMessage[] = [];
    let tag = '';
    await new Promise<void>((resolve) => {
      void ch
        .consume('work', (m) => {
          if (m === null) return;
          seen.push(m);
          if (seen.length === 30) resolve();
        })
        .then((ok) => (tag = ok.consumerTag));
    });
    // No more deliveries; ack the first 20: 10 stay delivered and unacked at shutdown.
    await ch.cancel(tag);
    ch.ack(seen[19]!, true);
    await ch.checkQueue('work'); // a round trip: the ack has been processed
    await conn.close();
    await shutdown();

    b = await boot();
    ({ conn, ch } = await channel(b));
    const msgs = await drain(ch, 'work');
    expect(msgs.map((m) => Number(m.content.toString()))).toEqual(
      Array.from({ length: 80 }, (_, k) => k + 20),
    );
    expect(
      msgs.filter((m) => m.fields.redelivered).map((m) => Number(m.content.toString())),
    ).toEqual(Array.from({ length: 10 }, (_, k) => k + 20));
    await conn.close();
  });

  it('keeps users, vhosts and permissions', async () => {
    fresh();
    let b = await boot();
    b.broker.addVhost('tenant');
    b.broker.users.addUser('alice', 's3cret', ['management']);
    b.broker.users.setPermission('tenant', 'alice', { configure: '^a-', write: '.*', read: '.*' });
    await shutdown();
    b = await boot();
    expect(b.broker.vhosts.has('tenant')).toBe(true);
    expect(b.broker.users.authenticate('alice', 's3cret')?.tags).toEqual(['management']);
    expect(b.broker.users.authenticate('alice', 'wrong')).toBeUndefined();
    expect(b.broker.users.getPermission('tenant', 'alice')).toEqual({
      configure: '^a-',
      write: '.*',
      read: '.*',
    });
    const conn = await amqplib.connect(`amqp://alice:s3cret@127.0.0.1:${b.port}/tenant`);
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    await ch.assertQueue('a-mine', { durable: true });
    await expect(ch.assertQueue('b-other')).rejects.toThrow(/ACCESS_REFUSED/);
    await conn.close().catch(() => undefined);
  });

  it('recovers priority queues in priority order', async () => {
    fresh();
    let b = await boot();
    let { conn, ch } = await channel(b);
    await ch.assertQueue('prio', { durable: true, arguments: { 'x-max-priority': 9 } });
    for (let i = 0; i < 60; i++) {
      ch.sendToQueue('prio', Buffer.from(String(i)), { persistent: true, priority: i % 10 });
    }
    await ch.waitForConfirms();
    await conn.close();
    await shutdown();
    b = await boot();
    ({ conn, ch } = await channel(b));
    const msgs = await drain(ch, 'prio');
    const prios = msgs.map((m) => m.properties.priority as number);
    expect(prios).toEqual([...prios].sort((x, y) => y - x));
    expect(msgs).toHaveLength(60);
    // Within a priority, publish order is kept.
    const nines = msgs
      .filter((m) => m.properties.priority === 9)
      .map((m) => Number(m.content.toString()));
    expect(nines).toEqual([9, 19, 29, 39, 49, 59]);
    await conn.close();
  });

  it("returns a drained queue to near-zero disk and deletes a deleted queue's files", async () => {
    fresh();
    const b = await boot();
    const { conn, ch } = await channel(b);
    await ch.assertQueue('big', { durable: true });
    const body = Buffer.alloc(64 * 1024, 7);
    for (let i = 0; i < 400; i++) ch.sendToQueue('big', body, { persistent: true });
    await ch.waitForConfirms();
    const queueDirs = readdirSync(join(dataDir, 'queues'));
    expect(queueDirs).toHaveLength(1);
    const dir = join(dataDir, 'queues', queueDirs[0]!);
    expect(readdirSync(dir).filter((f) => f.endsWith('.dat')).length).toBeGreaterThan(2);
    await drain(ch, 'big');
    await ch.checkQueue('big');
    expect(readdirSync(dir).filter((f) => f.endsWith('.dat')).length).toBeLessThanOrEqual(1);
    await ch.deleteQueue('big');
    expect(readdirSync(join(dataDir, 'queues'))).toHaveLength(0);
    await conn.close();
  });
});
