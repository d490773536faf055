/**
 * Warren driven by amqplib, the most used Node.js AMQP client: the everyday operations an
 * application performs, end to end over TCP.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'amqplib';
import type { Channel, ChannelModel, ConsumeMessage, Message } from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, waitFor } from '../helpers/broker.js';
import type { TestBroker } from '../helpers/broker.js';

let broker: TestBroker;
const open: ChannelModel[] = [];

beforeAll(async () => {
  broker = await startTestBroker();
});

afterEach(async () => {
  for (const c of open.splice(0)) await c.close().catch(() => undefined);
});

afterAll(async () => {
  await broker.stop();
});

async function connection(): Promise<ChannelModel> {
  const c = await connect(broker.url);
  c.on('error', () => undefined);
  open.push(c);
  return c;
}

async function channel(c: ChannelModel): Promise<Channel> {
  const ch = await c.createChannel();
  ch.on('error', () => undefined);
  return ch;
}

/** Wait for an emitter's next event, with the error a test can report when it never comes. */
function nextEvent<T>(emitter: NodeJS.EventEmitter, event: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' event within 10 s`)), 10_000);
    emitter.once(event, (v: T) => {
      clearTimeout(timer);
      resolve(v);
    });
  });
}

describe('interop: amqplib', () => {
  it('connects and sees Warren and its capabilities', async () => {
    const c = await connection();
    const props = c.connection.serverProperties as unknown as Record<string, unknown>;
    expect(props.product).toBe('Warren');
    expect(props.capabilities).toMatchObject({
      publisher_confirms: true,
      consumer_cancel_notify: true,
      'basic.nack': true,
      exchange_exchange_bindings: true,
      per_consumer_qos: true,
      direct_reply_to: true,
    });
  });

  it('declares, binds, publishes and consumes with acks, in order', async () => {
    const c = await connection();
    const ch = await channel(c);
    await ch.assertExchange('interop.amqplib.orders', 'topic', { durable: false });
    const { queue } = await ch.assertQueue('', { exclusive: true });
    expect(queue).toMatch(/^amq\.gen-/);
    await ch.bindQueue(queue, 'interop.amqplib.orders', 'order.*.created');
    for (let i = 0; i < 10; i++) {
      ch.publish('interop.amqplib.orders', `order.${i}.created`, Buffer.from(`order-${i}`), {
        contentType: 'text/plain',
        headers: { n: i },
      });
    }
    ch.publish('interop.amqplib.orders', 'order.1.shipped', Buffer.from('not for us'));
    await ch.prefetch(3);
    const got: ConsumeMessage[] = [];
    await ch.consume(queue, (m) => {
      if (m === null) return;
      got.push(m);
      ch.ack(m);
    });
    await waitFor(() => got.length === 10, '10 deliveries');
    expect(got.map((m) => m.content.toString())).toEqual(
      Array.from({ length: 10 }, (_, i) => `order-${i}`),
    );
    expect(got[3]!.fields).toMatchObject({
      exchange: 'interop.amqplib.orders',
      routingKey: 'order.3.created',
      redelivered: false,
    });
    expect(got[3]!.properties.headers).toEqual({ n: 3 });
    expect(got[3]!.properties.contentType).toBe('text/plain');
    const check = await ch.checkQueue(queue);
    expect(check).toMatchObject({ messageCount: 0, consumerCount: 1 });
  });

  it('confirms every publish on a confirm channel', async () => {
    const c = await connection();
    const ch = await c.createConfirmChannel();
    const { queue } = await ch.assertQueue('', { exclusive: true });
    let acked = 0;
    for (let i = 0; i < 1000; i++) {
      ch.sendToQueue(queue, Buffer.from(`m${i}`), {}, (err: unknown) => {
        if (err === null || err === undefined) acked++;
      });
    }
    await ch.waitForConfirms();
    expect(acked).toBe(1000);
    expect((await ch.checkQueue(queue)).messageCount).toBe(1000);
  });

  it('returns unroutable mandatory messages before confirming them', async () => {
    const c = await connection();
    const ch = await c.createConfirmChannel();
    const events: string[] = [];
    ch.on('return', (m: Message) => events.push(`return ${m.content.toString()}`));
    await new Promise<void>((resolve) => {
      ch.publish('amq.direct', 'no-such-binding', Buffer.from('lost'), { mandatory: true }, () => {
        events.push('ack');
        resolve();
      });
    });
    expect(events).toEqual(['return lost', 'ack']);
  });

  it('gets messages one at a time, with the remaining count, then get-empty', async () => {
    const c = await connection();
    const ch = await channel(c);
    const { queue } = await ch.assertQueue('', { exclusive: true });
    for (const b of ['a', 'b', 'c']) ch.sendToQueue(queue, Buffer.from(b));
    await waitFor(async () => (await ch.checkQueue(queue)).messageCount === 3, '3 messages');
    const first = await ch.get(queue);
    expect(first).not.toBe(false);
    if (first === false) return;
    expect(first.content.toString()).toBe('a');
    expect(first.fields.messageCount).toBe(2);
    ch.reject(first, true);
    const again = await ch.get(queue, { noAck: true });
    expect(again !== false && [again.content.toString(), again.fields.redelivered]).toEqual([
      'a',
      true,
    ]);
    await ch.get(queue, { noAck: true });
    await ch.get(queue, { noAck: true });
    expect(await ch.get(queue)).toBe(false);
  });

  it('nack with requeue redelivers; nack without requeue drops', async () => {
    const c = await connection();
    const ch = await channel(c);
    const { queue } = await ch.assertQueue('', { exclusive: true });
    ch.sendToQueue(queue, Buffer.from('keep'));
    ch.sendToQueue(queue, Buffer.from('drop'));
    const seen: string[] = [];
    await ch.consume(queue, (m) => {
      if (m === null) return;
      seen.push(`${m.content.toString()}${m.fields.redelivered ? '*' : ''}`);
      if (m.content.toString() === 'drop') ch.nack(m, false, false);
      else if (!m.fields.redelivered) ch.nack(m, false, true);
      else ch.ack(m);
    });
    await waitFor(() => seen.length === 3, '3 deliveries');
    expect(seen).toEqual(['keep', 'drop', 'keep*']);
    expect((await ch.checkQueue(queue)).messageCount).toBe(0);
  });

  it('reports channel errors with RabbitMQ codes and keeps the connection', async () => {
    const c = await connection();
    const ch = await channel(c);
    const err = await ch.checkQueue('interop.amqplib.missing').then(
      () => null,
      (e: unknown) => e as { code: number; message: string },
    );
    expect(err?.code).toBe(404);
    expect(err?.message).toContain("NOT_FOUND - no queue 'interop.amqplib.missing' in vhost '/'");
    const ch2 = await channel(c);
    await expect(ch2.checkExchange('amq.topic')).resolves.toBeDefined();
  });

  it('closes the connection on a hard error (consumer tag reuse, 530)', async () => {
    const c = await connection();
    const closed = nextEvent<Error>(c, 'close');
    const ch = await channel(c);
    const { queue } = await ch.assertQueue('', { exclusive: true });
    await ch.consume(queue, () => undefined, { consumerTag: 'dup' });
    await ch.consume(queue, () => undefined, { consumerTag: 'dup' }).catch(() => undefined);
    const err = await closed;
    expect(String(err)).toContain('NOT_ALLOWED - attempt to reuse consumer tag');
  });

  it('cancels a consumer when its queue is deleted', async () => {
    const c = await connection();
    const ch = await channel(c);
    const { queue } = await ch.assertQueue('', { exclusive: true });
    let cancelled = false;
    await ch.consume(queue, (m) => {
      if (m === null) cancelled = true;
    });
    const other = await channel(c);
    await other.deleteQueue(queue);
    await waitFor(() => cancelled, 'server-sent basic.cancel');
  });

  it('round-trips a 1 MiB message exactly', async () => {
    const c = await connection();
    const ch = await channel(c);
    const { queue } = await ch.assertQueue('', { exclusive: true });
    const body = randomBytes(1024 * 1024);
    ch.sendToQueue(queue, body, { messageId: 'big' });
    const received: Buffer[] = [];
    await ch.consume(queue, (m) => {
      if (m !== null) received.push(m.content);
    });
    await waitFor(() => received.length === 1, 'the 1 MiB message');
    expect(received[0]!.length).toBe(body.length);
    expect(received[0]!.equals(body)).toBe(true);
  });

  it('moves 5000 messages through publisher confirms and acks with no loss', async () => {
    const c = await connection();
    const pub = await c.createConfirmChannel();
    const sub = await channel(c);
    const { queue } = await pub.assertQueue('', { exclusive: true });
    await sub.prefetch(200);
    const received: number[] = [];
    await sub.consume(queue, (m) => {
      if (m === null) return;
      received.push(Number(m.content.toString()));
      sub.ack(m);
    });
    const total = 5000;
    for (let i = 0; i < total; i++) {
      if (!pub.sendToQueue(queue, Buffer.from(String(i)))) await nextEvent(pub, 'drain');
    }
    await pub.waitForConfirms();
    await waitFor(() => received.length === total, `${total} deliveries`, 30_000);
    expect(received).toEqual(Array.from({ length: total }, (_, i) => i));
    expect((await pub.checkQueue(queue)).messageCount).toBe(0);
  });

  it('does request/reply over direct reply-to', async () => {
    const c = await connection();
    const server = await channel(c);
    const client = await channel(c);
    const { queue } = await server.assertQueue('', { exclusive: true });
    await server.consume(queue, (m) => {
      if (m === null) return;
      server.sendToQueue(
        m.properties.replyTo as string,
        Buffer.from(m.content.toString().toUpperCase()),
        {
          correlationId: m.properties.correlationId as string,
        },
      );
      server.ack(m);
    });
    const replies: ConsumeMessage[] = [];
    await client.consume(
      'amq.rabbitmq.reply-to',
      (m) => {
        if (m !== null) replies.push(m);
      },
      { noAck: true },
    );
    for (const word of ['one', 'two']) {
      client.sendToQueue(queue, Buffer.from(word), {
        replyTo: 'amq.rabbitmq.reply-to',
        correlationId: word,
      });
    }
    await waitFor(() => replies.length === 2, '2 replies');
    expect(
      replies.map((m): unknown[] => [m.properties.correlationId, m.content.toString()]),
    ).toEqual([
      ['one', 'ONE'],
      ['two', 'TWO'],
    ]);
  });

  it('requeues unacked messages when the consuming connection closes', async () => {
    const c1 = await connection();
    const ch1 = await channel(c1);
    await ch1.assertQueue('interop.amqplib.requeue', { durable: false, autoDelete: false });
    await ch1.purgeQueue('interop.amqplib.requeue');
    for (const b of ['x', 'y']) ch1.sendToQueue('interop.amqplib.requeue', Buffer.from(b));
    const got: ConsumeMessage[] = [];
    await ch1.consume('interop.amqplib.requeue', (m) => {
      if (m !== null) got.push(m);
    });
    await waitFor(() => got.length === 2, '2 deliveries');
    await c1.close();
    const c2 = await connection();
    const ch2 = await channel(c2);
    const m = await ch2.get('interop.amqplib.requeue', { noAck: true });
    expect(m !== false && [m.content.toString(), m.fields.redelivered]).toEqual(['x', true]);
    await ch2.deleteQueue('interop.amqplib.requeue');
  });
});
