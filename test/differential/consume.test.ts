import type { Channel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { MethodId, describeMessage, differentialSuite } from './harness.js';
import type { Inbox, ScenarioContext } from './harness.js';

/** Publish `bodies` to a queue through the default exchange and wait for the confirms. */
async function fill(ch: ConfirmChannel, queue: string, bodies: string[]): Promise<void> {
  for (const b of bodies) ch.sendToQueue(queue, Buffer.from(b));
  await ch.waitForConfirms();
}

function range(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);
}

/** Each delivery's body, redelivered flag and delivery tag. */
function summary(messages: ConsumeMessage[]): string[] {
  return messages.map(
    (m) =>
      `${m.content.toString()}${m.fields.redelivered ? ' (redelivered)' : ''} #${m.fields.deliveryTag}`,
  );
}

async function seeReady(ctx: ScenarioContext, ch: Channel, queue: string, label: string) {
  const ok = await ch.checkQueue(queue);
  ctx.see(label, { ready: ok.messageCount, consumers: ok.consumerCount });
}

/** Record an inbox's deliveries once it holds `n` of them. */
async function seeInbox(ctx: ScenarioContext, inbox: Inbox, n: number, label: string) {
  await inbox.waitFor(n);
  ctx.see(label, summary(inbox.messages));
}

differentialSuite('differential: consuming', (scenario) => {
  scenario('round-robin across consumers on one channel and on two', async (ctx) => {
    const conn = await ctx.connect();
    const pub = await ctx.confirmChannel(conn, 'pub');
    const q = ctx.q('rr');
    await pub.assertQueue(q, { durable: false });
    const ch = await ctx.channel(conn, 'ch');
    const a = await ctx.consume(ch, q, 'a');
    const b = await ctx.consume(ch, q, 'b');
    await fill(pub, q, range('m', 6));
    await seeInbox(ctx, a, 3, 'a');
    await seeInbox(ctx, b, 3, 'b');
    ch.ackAll();
    await ch.cancel(a.tag);
    await ch.cancel(b.tag);

    const ch2 = await ctx.channel(conn, 'ch2');
    const ch3 = await ctx.channel(conn, 'ch3');
    const c = await ctx.consume(ch2, q, 'c', { noAck: true });
    const d = await ctx.consume(ch3, q, 'd', { noAck: true });
    await fill(pub, q, range('n', 6));
    await seeInbox(ctx, c, 3, 'c');
    await seeInbox(ctx, d, 3, 'd');
  });

  scenario('basic.qos prefetch per consumer', async (ctx) => {
    const conn = await ctx.connect();
    const pub = await ctx.confirmChannel(conn, 'pub');
    const q = ctx.q('prefetch');
    await pub.assertQueue(q, { durable: false });
    const ch = await ctx.channel(conn, 'ch');
    await ch.prefetch(2);
    const a = await ctx.consume(ch, q, 'a');
    await ch.prefetch(1);
    const b = await ctx.consume(ch, q, 'b');
    await fill(pub, q, range('m', 8));
    await a.waitFor(2);
    await b.waitFor(1);
    await ctx.quiet();
    ctx.see('a', summary(a.messages));
    ctx.see('b', summary(b.messages));
    await seeReady(ctx, pub, q, 'queue');
    ch.ack(a.messages[0]!);
    await seeInbox(ctx, a, 3, 'a after one ack');
    ch.ack(b.messages[0]!);
    await seeInbox(ctx, b, 2, 'b after one ack');
    await ctx.quiet();
    await seeReady(ctx, pub, q, 'queue after acks');
  });

  scenario('basic.qos global (per channel), and global plus per consumer', async (ctx) => {
    const conn = await ctx.connect();
    const pub = await ctx.confirmChannel(conn, 'pub');
    const q = ctx.q('global');
    await pub.assertQueue(q, { durable: false });
    const ch = await ctx.channel(conn, 'ch');
    await ch.prefetch(3, true);
    const a = await ctx.consume(ch, q, 'a');
    const b = await ctx.consume(ch, q, 'b');
    await fill(pub, q, range('m', 10));
    await ctx.until(() => a.messages.length + b.messages.length >= 3, '3 deliveries');
    await ctx.quiet();
    ctx.see('delivered with global 3', a.messages.length + b.messages.length);
    await seeReady(ctx, pub, q, 'queue');
    ch.ack(a.messages[0] ?? b.messages[0]!);
    await ctx.until(() => a.messages.length + b.messages.length >= 4, '4 deliveries');
    await ctx.quiet();
    ctx.see('delivered after one ack', a.messages.length + b.messages.length);

    const q2 = ctx.q('both');
    await pub.assertQueue(q2, { durable: false });
    const ch2 = await ctx.channel(conn, 'ch2');
    await ch2.prefetch(1, false);
    await ch2.prefetch(5, true);
    const c = await ctx.consume(ch2, q2, 'c');
    const d = await ctx.consume(ch2, q2, 'd');
    await fill(pub, q2, range('n', 10));
    await c.waitFor(1);
    await d.waitFor(1);
    await ctx.quiet();
    ctx.see('per-consumer 1 under global 5', {
      c: summary(c.messages),
      d: summary(d.messages),
    });
    await seeReady(ctx, pub, q2, 'queue 2');
  });

  scenario('ack multiple, and acking everything', async (ctx) => {
    const conn = await ctx.connect();
    const pub = await ctx.confirmChannel(conn, 'pub');
    const q = ctx.q('ackmulti');
    await pub.assertQueue(q, { durable: false });
    await fill(pub, q, range('m', 6));
    const ch = await ctx.channel(conn, 'ch');
    const a = await ctx.consume(ch, q, 'a');
    await a.waitFor(6);
    ch.ack(a.messages[2]!, true);
    await ch.recover();
    await seeInbox(ctx, a, 9, 'after ack multiple of #3 and recover');
    ch.ackAll();
    await ch.recover();
    await ctx.quiet();
    ctx.see('after ack all and recover', a.messages.length);
    await seeReady(ctx, pub, q, 'queue');
  });

  scenario('nack and reject, with and without requeue, keep order', async (ctx) => {
    const conn = await ctx.connect();
    const pub = await ctx.confirmChannel(conn, 'pub');
    const q = ctx.q('nack');
    await pub.assertQueue(q, { durable: false });
    await fill(pub, q, range('m', 6));
    const ch = await ctx.channel(conn, 'ch');
    const got: string[] = [];
    const held = [];
    for (let i = 0; i < 4; i++) {
      const m = await ch.get(q);
      if (m !== false) held.push(m);
    }
    ch.reject(held[1]!, true);
    ch.nack(held[2]!, false, false);
    const next = await ch.get(q);
    if (next !== false) got.push(describeGet(next));
    ch.nack(held[3]!, true, true);
    for (;;) {
      const m = await ch.get(q, { noAck: true });
      if (m === false) break;
      got.push(describeGet(m));
    }
    ctx.see('gets', got);

    const q2 = ctx.q('nack-consumer');
    await pub.assertQueue(q2, { durable: false });
    await fill(pub, q2, range('n', 4));
    const ch2 = await ctx.channel(conn, 'ch2');
    const c = await ctx.consume(ch2, q2, 'c');
    await c.waitFor(4);
    ch2.reject(c.messages[0]!, false);
    ch2.nack(c.messages[3]!, true, true);
    await seeInbox(ctx, c, 7, 'consumer after nack-all-requeue');
    ch2.ackAll();
  });

  scenario('unacked messages are requeued in order when the channel closes', async (ctx) => {
    const conn = await ctx.connect();
    const pub = await ctx.confirmChannel(conn, 'pub');
    const q = ctx.q('requeue');
    await pub.assertQueue(q, { durable: false });
    await fill(pub, q, range('m', 5));
    const ch = await ctx.channel(conn, 'ch');
    const a = await ctx.consume(ch, q, 'a');
    await a.waitFor(5);
    ch.ack(a.messages[1]!);
    await ch.close();
    await ctx.until(async () => (await pub.checkQueue(q)).messageCount === 4, 'requeue');
    const ch2 = await ctx.channel(conn, 'ch2');
    const b = await ctx.consume(ch2, q, 'b', { noAck: true });
    await seeInbox(ctx, b, 4, 'b');
  });

  scenario('basic.recover redelivers unacked messages to the same consumer', async (ctx) => {
    const conn = await ctx.connect();
    const pub = await ctx.confirmChannel(conn, 'pub');
    const q = ctx.q('recover');
    await pub.assertQueue(q, { durable: false });
    await fill(pub, q, range('m', 3));
    const ch = await ctx.channel(conn, 'ch');
    const a = await ctx.consume(ch, q, 'a');
    await a.waitFor(3);
    ch.ack(a.messages[0]!);
    await ctx.attempt('recover', () => ch.recover());
    await seeInbox(ctx, a, 5, 'a');
  });

  scenario('basic.get: message count, fields, get-empty', async (ctx) => {
    const conn = await ctx.connect();
    const pub = await ctx.confirmChannel(conn, 'pub');
    const q = ctx.q('get');
    const x = ctx.x('get');
    await pub.assertQueue(q, { durable: false });
    await pub.assertExchange(x, 'topic', { durable: false });
    await pub.bindQueue(q, x, 'a.*');
    pub.publish(x, 'a.one', Buffer.from('first'), { messageId: 'id-1' });
    pub.publish(x, 'a.two', Buffer.from('second'));
    pub.sendToQueue(q, Buffer.from('third'));
    await pub.waitForConfirms();
    const ch = await ctx.channel(conn, 'ch');
    for (let i = 0; i < 4; i++) {
      await ctx.attempt(`get ${i + 1}`, async () => {
        const m = await ch.get(q);
        return m === false ? 'empty' : describeMessage(m);
      });
    }
    await ch.recover();
    await ctx.attempt('get after recover', async () => {
      const m = await ch.get(q, { noAck: true });
      return m === false ? 'empty' : describeMessage(m);
    });
    await ctx.attempt('get missing queue', () => ch.get(ctx.q('missing')));
  });

  scenario('exclusive consumer: a second consumer is refused (403)', async (ctx) => {
    const conn = await ctx.connect();
    const q = ctx.q('excl');
    const ch1 = await ctx.channel(conn, 'ch1');
    await ch1.assertQueue(q, { durable: false });
    await ctx.consume(ch1, q, 'exclusive', { exclusive: true });
    let ch = await ctx.channel(conn, 'ch2');
    await ctx.attempt('second consumer', () => ch.consume(q, () => undefined));
    ch = await ctx.channel(conn, 'ch3');
    await ctx.attempt('second exclusive consumer', () =>
      ch.consume(q, () => undefined, { exclusive: true }),
    );
    const q2 = ctx.q('excl2');
    await ch1.assertQueue(q2, { durable: false });
    await ctx.consume(ch1, q2, 'plain');
    ch = await ctx.channel(conn, 'ch4');
    await ctx.attempt('exclusive when a consumer exists', () =>
      ch.consume(q2, () => undefined, { exclusive: true }),
    );
    await seeReady(ctx, ch1, q, 'queue');
  });

  scenario('reusing a consumer tag on a channel closes the connection (530)', async (ctx) => {
    const conn = await ctx.connect();
    const closed = ctx.closed(conn);
    const q = ctx.q('tag');
    const ch = await ctx.channel(conn, 'ch');
    await ch.assertQueue(q, { durable: false });
    await ctx.attempt('first', () => ch.consume(q, () => undefined, { consumerTag: 'my-tag' }));
    await ctx.attempt('second', () => ch.consume(q, () => undefined, { consumerTag: 'my-tag' }));
    await closed;
    ctx.see('connection closed');
    const conn2 = await ctx.connect('conn2');
    const ch2 = await ctx.channel(conn2, 'ch2');
    await ctx.attempt('same tag on another channel', () =>
      ch2.consume(q, () => undefined, { consumerTag: 'my-tag' }),
    );
    const ch3 = await ctx.channel(conn2, 'ch3');
    await ctx.attempt('same tag on a third channel', () =>
      ch3.consume(q, () => undefined, { consumerTag: 'my-tag' }),
    );
  });

  scenario('acking an unknown or already acked tag (406)', async (ctx) => {
    const conn = await ctx.connect();
    const pub = await ctx.confirmChannel(conn, 'pub');
    const q = ctx.q('badack');
    await pub.assertQueue(q, { durable: false });
    await fill(pub, q, range('m', 2));
    const ch = await ctx.channel(conn, 'ch1');
    let closed = ctx.closed(ch);
    ch.ack({ fields: { deliveryTag: 99 } } as ConsumeMessage);
    await closed;
    const ch2 = await ctx.channel(conn, 'ch2');
    closed = ctx.closed(ch2);
    const m = await ch2.get(q);
    if (m === false) throw new Error('expected a message');
    ch2.ack(m);
    ch2.ack(m);
    await closed;
    const ch3 = await ctx.channel(conn, 'ch3');
    closed = ctx.closed(ch3);
    const n = await ch3.get(q, { noAck: true });
    if (n === false) throw new Error('expected a message');
    ch3.ack(n);
    await closed;
    await seeReady(ctx, pub, q, 'queue');
    const ch4 = await ctx.channel(conn, 'ch4');
    closed = ctx.closed(ch4);
    ch4.nack({ fields: { deliveryTag: 5 } } as ConsumeMessage, true, true);
    await closed;
  });

  scenario('basic.cancel stops deliveries; unknown tags are fine', async (ctx) => {
    const conn = await ctx.connect();
    const pub = await ctx.confirmChannel(conn, 'pub');
    const q = ctx.q('cancel');
    await pub.assertQueue(q, { durable: false });
    const ch = await ctx.channel(conn, 'ch');
    const a = await ctx.consume(ch, q, 'a', { consumerTag: 'tag-a' });
    await fill(pub, q, ['before']);
    await a.waitFor(1);
    await ctx.attempt('cancel', () => ch.cancel('tag-a'));
    await fill(pub, q, ['after']);
    await ctx.quiet();
    ctx.see('a', summary(a.messages));
    await seeReady(ctx, pub, q, 'queue');
    await ctx.attempt('cancel again', () => ch.cancel('tag-a'));
    await ctx.attempt('cancel unknown', () => ch.cancel('never-used'));
    ch.ack(a.messages[0]!);
    await ctx.attempt('channel still open', () => ch.checkQueue(q));
  });

  scenario('deleting a queue cancels its consumers (consumer_cancel_notify)', async (ctx) => {
    const conn = await ctx.connect();
    const q = ctx.q('qdel');
    const ch = await ctx.channel(conn, 'ch');
    await ch.assertQueue(q, { durable: false });
    await ctx.consume(ch, q, 'a');
    const deleteQ = { queue: q, ifUnused: false, ifEmpty: false, nowait: false };
    await ctx.rpcInOrder(
      ch,
      'delete from the consumer channel',
      MethodId.QueueDelete,
      deleteQ,
      MethodId.QueueDeleteOk,
    );
    await ctx.until(() => ctx.lines.some((l) => l.startsWith('a cancelled')), 'cancel of a');

    const q2 = ctx.q('qdel2');
    await ch.assertQueue(q2, { durable: false });
    const other = await ctx.connect('other');
    const och = await ctx.channel(other, 'other ch');
    const b = await ctx.consume(och, q2, 'b', {}, false);
    await ctx.attempt('delete from another connection', () => ch.deleteQueue(q2));
    await ctx.until(() => b.cancelledByServer, 'cancel of b');
    ctx.see('b cancelled');
    await ctx.attempt('other channel still open', () => och.checkExchange('amq.direct'));
  });

  scenario('no-ack consumers ignore prefetch and cannot ack', async (ctx) => {
    const conn = await ctx.connect();
    const pub = await ctx.confirmChannel(conn, 'pub');
    const q = ctx.q('noack');
    await pub.assertQueue(q, { durable: false });
    await fill(pub, q, range('m', 5));
    const ch = await ctx.channel(conn, 'ch');
    await ch.prefetch(1);
    const a = await ctx.consume(ch, q, 'a', { noAck: true });
    await seeInbox(ctx, a, 5, 'a');
    await seeReady(ctx, pub, q, 'queue');
    await ctx.attempt('recover', () => ch.recover());
    await ctx.quiet();
    ctx.see('after recover', a.messages.length);
    const closed = ctx.closed(ch);
    ch.ack(a.messages[0]!);
    await closed;
  });

  scenario(
    'consumer priorities: the highest priority with credit gets the message',
    async (ctx) => {
      const conn = await ctx.connect();
      const pub = await ctx.confirmChannel(conn, 'pub');
      const q = ctx.q('prio');
      await pub.assertQueue(q, { durable: false });
      const ch = await ctx.channel(conn, 'ch');
      await ch.prefetch(2);
      const low = await ctx.consume(ch, q, 'low', { priority: 1 });
      const high = await ctx.consume(ch, q, 'high', { priority: 10 });
      const high2 = await ctx.consume(ch, q, 'high2', { priority: 10 });
      const none = await ctx.consume(ch, q, 'none');
      await fill(pub, q, range('m', 9));
      const total = () =>
        low.messages.length + high.messages.length + high2.messages.length + none.messages.length;
      await ctx.until(() => total() >= 8, '8 deliveries');
      await ctx.quiet();
      ctx.see('deliveries', {
        low: low.bodies,
        high: high.bodies,
        high2: high2.bodies,
        none: none.bodies,
      });
      ch.ack(high.messages[0]!);
      await high.waitFor(3);
      await ctx.quiet();
      ctx.see('after acking one of high', { low: low.bodies, high: high.bodies });
    },
  );

  scenario('consume errors: missing queue', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.channel(conn, 'ch');
    await ctx.attempt('consume missing', () => ch.consume(ctx.q('missing'), () => undefined));
  });
});

function describeGet(m: { content: Buffer; fields: { redelivered: boolean } }): string {
  return `${m.content.toString()}${m.fields.redelivered ? ' (redelivered)' : ''}`;
}
