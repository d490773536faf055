/**
 * Warren driven by @cloudamqp/amqp-client (amqp-client.js), a second independent Node.js
 * client with its own codec: the everyday operations, end to end over TCP.
 */
import { randomBytes } from 'node:crypto';
import { AMQPClient } from '@cloudamqp/amqp-client';
import type { AMQPChannel, AMQPMessage } from '@cloudamqp/amqp-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, waitFor } from '../helpers/broker.js';
import type { TestBroker } from '../helpers/broker.js';

let broker: TestBroker;
const open: AMQPClient[] = [];

beforeAll(async () => {
  broker = await startTestBroker();
});

afterEach(async () => {
  for (const c of open.splice(0)) {
    if (!c.closed) await c.close().catch(() => undefined);
  }
});

afterAll(async () => {
  await broker.stop();
});

async function connection(query = ''): Promise<AMQPClient> {
  const c = new AMQPClient(`${broker.url}${query}`, undefined, null);
  c.onerror = () => undefined;
  await c.connect();
  open.push(c);
  return c;
}

function text(m: AMQPMessage): string {
  return m.bodyToString() ?? '';
}

/** A queue of this test's own, removed with its connection. */
async function exclusiveQueue(ch: AMQPChannel): Promise<string> {
  const { name } = await ch.queueDeclare('', { exclusive: true });
  return name;
}

describe('interop: @cloudamqp/amqp-client', () => {
  it('connects with the negotiated limits', async () => {
    const c = await connection('?frameMax=65536&heartbeat=30');
    expect(c.frameMax).toBe(65536);
    expect(c.heartbeat).toBe(30);
    expect(c.channelMax).toBe(2047);
    const ch = await c.channel();
    expect(ch.id).toBe(1);
  });

  it('declares, binds, publishes and consumes with acks, in order', async () => {
    const c = await connection();
    const ch = await c.channel();
    await ch.exchangeDeclare('interop.acjs.events', 'direct', { durable: false });
    const q = await exclusiveQueue(ch);
    await ch.queueBind(q, 'interop.acjs.events', 'created');
    for (let i = 0; i < 10; i++) {
      await ch.basicPublish('interop.acjs.events', 'created', `event-${i}`, {
        contentType: 'text/plain',
        headers: { seq: i },
        deliveryMode: 2,
      });
    }
    await ch.basicPublish('interop.acjs.events', 'deleted', 'not for us');
    await ch.basicQos(4);
    const got: AMQPMessage[] = [];
    await ch.basicConsume(q, { noAck: false }, async (m) => {
      got.push(m);
      await m.ack();
    });
    await waitFor(() => got.length === 10, '10 deliveries');
    expect(got.map(text)).toEqual(Array.from({ length: 10 }, (_, i) => `event-${i}`));
    expect(got[4]).toMatchObject({
      exchange: 'interop.acjs.events',
      routingKey: 'created',
      redelivered: false,
    });
    expect(got[4]!.properties).toMatchObject({
      contentType: 'text/plain',
      deliveryMode: 2,
      headers: { seq: 4 },
    });
    await waitFor(
      async () => (await ch.queueDeclare(q, { passive: true })).messageCount === 0,
      'queue drained',
    );
  });

  it('confirms publishes in confirm mode', async () => {
    const c = await connection();
    const ch = await c.channel();
    await ch.confirmSelect();
    const q = await exclusiveQueue(ch);
    const confirms = [];
    for (let i = 0; i < 1000; i++) confirms.push(ch.basicPublish('', q, `m${i}`));
    const tags = await Promise.all(confirms);
    expect(tags).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect((await ch.queueDeclare(q, { passive: true })).messageCount).toBe(1000);
  });

  it('gets messages with basic.get, and null when empty', async () => {
    const c = await connection();
    const ch = await c.channel();
    await ch.confirmSelect();
    const q = await exclusiveQueue(ch);
    await ch.basicPublish('', q, 'first');
    await ch.basicPublish('', q, 'second');
    const m = await ch.basicGet(q, { noAck: false });
    expect(m && [text(m), m.messageCount, m.redelivered]).toEqual(['first', 1, false]);
    await m!.reject(true);
    const again = await ch.basicGet(q, { noAck: true });
    expect(again && [text(again), again.redelivered]).toEqual(['first', true]);
    await ch.basicGet(q, { noAck: true });
    expect(await ch.basicGet(q, { noAck: false })).toBeNull();
  });

  it('commits and rolls back transactions', async () => {
    const c = await connection();
    const ch = await c.channel();
    const q = await exclusiveQueue(ch);
    await ch.txSelect();
    await ch.basicPublish('', q, 'committed');
    await ch.txCommit();
    await ch.basicPublish('', q, 'rolled back');
    await ch.txRollback();
    const check = await c.channel();
    expect((await check.queueDeclare(q, { passive: true })).messageCount).toBe(1);
  });

  it('reports a channel error with its reply text and keeps the connection', async () => {
    const c = await connection();
    const ch = await c.channel();
    const err = await ch.queueDeclare('interop.acjs.missing', { passive: true }).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toContain(
      "NOT_FOUND - no queue 'interop.acjs.missing' in vhost '/' (404)",
    );
    expect(ch.closed).toBe(true);
    const ch2 = await c.channel();
    await expect(ch2.exchangeDeclare('amq.fanout', 'fanout', { passive: true })).resolves.toBe(
      undefined,
    );
  });

  it('rejects publishing to a missing exchange (404 closes the channel)', async () => {
    const c = await connection();
    const ch = await c.channel();
    await ch.confirmSelect();
    const err = await ch.basicPublish('interop.acjs.no-such-exchange', 'k', 'x').then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toContain("NOT_FOUND - no exchange 'interop.acjs.no-such-exchange'");
    expect(c.closed).toBe(false);
  });

  it('ends a consumer whose queue is deleted', async () => {
    const c = await connection();
    const ch = await c.channel();
    const q = await exclusiveQueue(ch);
    const consumer = await ch.basicConsume(q, { noAck: true }, () => undefined);
    const done = consumer.wait(10_000).then(
      () => 'ended',
      (e: unknown) => String(e),
    );
    await (await c.channel()).queueDelete(q);
    expect(await done).toContain('Consumer cancelled by the server');
  });

  it('round-trips a 1 MiB message exactly', async () => {
    const c = await connection();
    const ch = await c.channel();
    const q = await exclusiveQueue(ch);
    const body = randomBytes(1024 * 1024);
    await ch.basicPublish('', q, body);
    const received: Uint8Array[] = [];
    await ch.basicConsume(q, { noAck: true }, (m) => {
      if (m.body !== null) received.push(m.body);
    });
    await waitFor(() => received.length === 1, 'the 1 MiB message');
    expect(Buffer.from(received[0]!).equals(body)).toBe(true);
  });

  it('moves 5000 messages through confirms and acks with no loss', async () => {
    const c = await connection();
    const pub = await c.channel();
    await pub.confirmSelect();
    const sub = await c.channel();
    const q = await exclusiveQueue(pub);
    await sub.basicQos(250);
    const received: number[] = [];
    await sub.basicConsume(q, { noAck: false }, async (m) => {
      received.push(Number(text(m)));
      await m.ack();
    });
    const total = 5000;
    const confirms: Promise<number>[] = [];
    for (let i = 0; i < total; i++) confirms.push(pub.basicPublish('', q, String(i)));
    await Promise.all(confirms);
    await waitFor(() => received.length === total, `${total} deliveries`, 30_000);
    expect(received).toEqual(Array.from({ length: total }, (_, i) => i));
    expect((await pub.queueDeclare(q, { passive: true })).messageCount).toBe(0);
  });

  it('redelivers unacked messages after basic.recover', async () => {
    const c = await connection();
    const ch = await c.channel();
    const q = await exclusiveQueue(ch);
    await ch.basicPublish('', q, 'again');
    const seen: string[] = [];
    await ch.basicConsume(q, { noAck: false }, async (m) => {
      seen.push(`${text(m)}${m.redelivered ? '*' : ''}`);
      if (m.redelivered) await m.ack();
    });
    await waitFor(() => seen.length === 1, 'first delivery');
    await ch.basicRecover(true);
    await waitFor(() => seen.length === 2, 'redelivery');
    expect(seen).toEqual(['again', 'again*']);
  });
});
