import { expect, it } from 'vitest';
import { AmqpError, ClientError, Message } from '../../src/client/index.js';
import type { Consumer } from '../../src/client/index.js';
import { countBecomes, describeBrokers, until } from './brokers.js';

describeBrokers('channel operations', (target) => {
  it('connects, negotiates limits and reports the broker', async () => {
    const t = target();
    const conn = await t.connect({ heartbeat: 7, connectionName: 'warren-client-test' });
    expect(conn.isOpen).toBe(true);
    expect(conn.state).toBe('open');
    expect(conn.heartbeat).toBe(7);
    expect(conn.frameMax).toBeGreaterThanOrEqual(4096);
    expect(conn.channelMax).toBeGreaterThan(0);
    expect(conn.serverProperties.product).toBe(t.kind === 'rabbitmq' ? 'RabbitMQ' : 'Warren');
    expect(conn.capabilities.publisher_confirms).toBe(true);
    const a = await conn.channel();
    const b = await conn.channel();
    expect(a.id).not.toBe(b.id);
    expect(a.isOpen && b.isOpen).toBe(true);
  });

  it('declares, binds, unbinds and deletes exchanges (exchange.unbind-ok is 40/51)', async () => {
    const t = target();
    const conn = await t.connect();
    const ch = await conn.channel({ confirm: true });
    const src = t.name('src');
    const dst = t.name('dst');
    await ch.exchangeDeclare(src, 'topic');
    await ch.exchangeDeclare(dst, 'fanout', { autoDelete: false });
    const { queue } = await ch.queueDeclare('', { exclusive: true });
    await ch.queueBind(queue, dst);
    await ch.exchangeBind(dst, src, 'a.*');
    await ch.publish(src, 'a.b', 'routed');
    await ch.publish(src, 'x.b', 'not routed');
    const m = await getOne(ch, queue);
    expect(m.text()).toBe('routed');
    m.ack();
    await ch.exchangeUnbind(dst, src, 'a.*');
    await ch.publish(src, 'a.b', 'after unbind');
    expect((await ch.queueCheck(queue)).messageCount).toBe(0);
    await ch.exchangeCheck(src);
    await ch.exchangeDelete(src);
    await ch.exchangeDelete(dst);
    const err = await ch.exchangeCheck(src).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AmqpError);
    expect((err as AmqpError).replyCode).toBe(404);
  });

  it('declares server-named and named queues, purges and deletes them with counts', async () => {
    const t = target();
    const conn = await t.connect();
    const ch = await conn.channel({ confirm: true });
    const anon = await ch.queueDeclare('', { exclusive: true });
    expect(anon.queue).toMatch(/^amq\.gen-/);
    expect(anon.messageCount).toBe(0);
    const name = t.name('q');
    const q = await ch.queueDeclare(name, { durable: false, messageTtl: 60_000 });
    expect(q).toEqual({ queue: name, messageCount: 0, consumerCount: 0 });
    for (let i = 0; i < 3; i++) await ch.sendToQueue(name, `m${i}`);
    expect((await ch.queueCheck(name)).messageCount).toBe(3);
    expect(await ch.queuePurge(name)).toBe(3);
    await ch.sendToQueue(name, 'one more');
    expect((await ch.queueCheck(name)).messageCount).toBe(1);
    // Declaring with other arguments is refused: 406, and only this channel closes.
    const err = await ch.queueDeclare(name, { messageTtl: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AmqpError);
    expect((err as AmqpError).replyCode).toBe(406);
    expect((err as AmqpError).code).toBe('AMQP_PRECONDITION_FAILED');
    const ch2 = await conn.channel();
    expect(await ch2.queueDelete(name)).toBe(1);
  });

  it('reports broker errors as AmqpError with reply code, text and method, and closes only that channel', async () => {
    const t = target();
    const conn = await t.connect();
    const ch = await conn.channel({ confirm: true });
    const missing = t.name('missing');
    const err = await ch.queueCheck(missing).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AmqpError);
    const e = err as AmqpError;
    expect(e.replyCode).toBe(404);
    expect(e.code).toBe('AMQP_NOT_FOUND');
    expect(e.replyText).toBe(`NOT_FOUND - no queue '${missing}' in vhost '/'`);
    expect([e.classId, e.methodId]).toEqual([50, 10]);
    expect(e.closesConnection).toBe(false);
    expect(ch.isOpen).toBe(false);
    const after = await ch.queueDeclare('').catch((x: unknown) => x);
    expect(after).toBeInstanceOf(ClientError);
    expect((after as ClientError).code).toBe('WARREN_ERR_CHANNEL_CLOSED');
    await expect(ch.publish('', 'x', 'y')).rejects.toMatchObject({
      code: 'WARREN_ERR_CHANNEL_CLOSED',
    });
    // The connection and its other channels go on.
    const ch2 = await conn.channel();
    await ch2.queueDeclare('', { exclusive: true });
    expect(conn.isOpen).toBe(true);
  });

  it('publishes and gets messages with every property, and get answers null when empty', async () => {
    const t = target();
    const conn = await t.connect();
    const ch = await conn.channel({ confirm: true });
    const { queue } = await ch.queueDeclare('', { exclusive: true });
    expect(await ch.get(queue)).toBeNull();
    const when = new Date('2024-05-06T07:08:09Z');
    await ch.publish('', queue, Buffer.from([0, 1, 2, 255]), {
      contentType: 'application/octet-stream',
      contentEncoding: 'identity',
      headers: { str: 'text', int: 42, neg: -7, big: 2 ** 40, flag: true, nested: { a: [1, 'b'] } },
      persistent: true,
      priority: 3,
      correlationId: 'corr-1',
      replyTo: 'reply-queue',
      expiration: 60_000,
      messageId: 'msg-1',
      timestamp: when,
      type: 'test.type',
      appId: 'warren-tests',
    });
    await ch.publish('', queue, 'second', { contentType: 'text/plain' });
    await ch.publish('', queue, new Uint8Array([9, 8, 7]));
    const m = await getOne(ch, queue);
    expect(m).toBeInstanceOf(Message);
    expect([...m.body]).toEqual([0, 1, 2, 255]);
    expect(m.exchange).toBe('');
    expect(m.routingKey).toBe(queue);
    expect(m.redelivered).toBe(false);
    expect(m.messageCount).toBe(2);
    expect(m.properties).toEqual({
      contentType: 'application/octet-stream',
      contentEncoding: 'identity',
      headers: { str: 'text', int: 42, neg: -7, big: 2 ** 40, flag: true, nested: { a: [1, 'b'] } },
      deliveryMode: 2,
      priority: 3,
      correlationId: 'corr-1',
      replyTo: 'reply-queue',
      expiration: '60000',
      messageId: 'msg-1',
      timestamp: Math.floor(when.getTime() / 1000),
      type: 'test.type',
      appId: 'warren-tests',
    });
    m.ack();
    const s = await getOne(ch, queue);
    expect(s.text()).toBe('second');
    expect(s.properties).toEqual({ contentType: 'text/plain' });
    s.ack();
    const u = await ch.get(queue, { noAck: true });
    expect([...u!.body]).toEqual([9, 8, 7]);
    expect(u!.settled).toBe(true);
    expect(await ch.get(queue)).toBeNull();
  });

  it('carries empty, multi-frame and large bodies intact (strings too)', async () => {
    const t = target();
    const conn = await t.connect();
    const ch = await conn.channel({ confirm: true });
    const { queue } = await ch.queueDeclare('', { exclusive: true });
    const big = Buffer.alloc(3 * conn.frameMax + 123);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    const huge = Buffer.alloc(2 * 1024 * 1024, 7);
    const text = 'ü€'.repeat(70_000);
    await ch.publish('', queue, '');
    await ch.publish('', queue, big);
    await ch.publish('', queue, huge);
    await ch.publish('', queue, text);
    expect((await getOne(ch, queue, true)).body.length).toBe(0);
    expect((await getOne(ch, queue, true)).body.equals(big)).toBe(true);
    expect((await getOne(ch, queue, true)).body.equals(huge)).toBe(true);
    expect((await getOne(ch, queue, true)).text()).toBe(text);
  });

  it('splits and joins bodies at a small negotiated frame_max (4096) both ways', async () => {
    const t = target();
    const conn = await t.connect({ frameMax: 4096 });
    expect(conn.frameMax).toBe(4096);
    const ch = await conn.channel({ confirm: true });
    const { queue } = await ch.queueDeclare('', { exclusive: true });
    const body = Buffer.alloc(100_000);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
    await ch.publish('', queue, body, { headers: { big: 'x'.repeat(1000) } });
    const got = new Promise<Message>((r) => void ch.consume(queue, (m) => r(m)));
    const m = await got;
    expect(m.body.equals(body)).toBe(true);
    expect(m.properties.headers?.big).toBe('x'.repeat(1000));
    m.ack();
  });

  it('opens many channels at once and reuses numbers of closed ones', async () => {
    const t = target();
    const conn = await t.connect();
    const chans = await Promise.all(Array.from({ length: 50 }, () => conn.channel()));
    expect(new Set(chans.map((c) => c.id)).size).toBe(50);
    await Promise.all(chans.map((c) => c.queueDeclare('', { exclusive: true })));
    await Promise.all(chans.slice(0, 25).map((c) => c.close()));
    const more = await Promise.all(Array.from({ length: 25 }, () => conn.channel()));
    const { queue } = await more[24]!.queueDeclare('', { exclusive: true });
    await more[24]!.publish('', queue, 'still works');
    expect((await getOne(more[24]!, queue, true)).text()).toBe('still works');
  });

  it('consumes with a callback, in order, and acks with multiple', async () => {
    const t = target();
    const conn = await t.connect();
    const ch = await conn.channel({ confirm: true });
    const { queue } = await ch.queueDeclare('', { exclusive: true });
    const got: Message[] = [];
    const consumer = await ch.consume(queue, (m) => {
      got.push(m);
    });
    expect(consumer.tag).toMatch(/^warren\.ctag-/);
    for (let i = 0; i < 50; i++) await ch.publish('', queue, `n${i}`);
    await until(() => got.length === 50, '50 deliveries');
    expect(got.map((m) => m.text())).toEqual(Array.from({ length: 50 }, (_, i) => `n${i}`));
    expect(got.every((m) => m.consumerTag === consumer.tag && !m.redelivered)).toBe(true);
    ch.ack(got[49]!, true);
    await consumer.cancel();
    expect(await consumer.closed).toBeNull();
    const check = await ch.queueCheck(queue);
    expect(check.messageCount).toBe(0);
    // Nothing left unacked: recover would redeliver it.
    await ch.recover();
    expect((await ch.queueCheck(queue)).messageCount).toBe(0);
  });

  it('nacks and rejects with and without requeue', async () => {
    const t = target();
    const conn = await t.connect();
    const ch = await conn.channel({ confirm: true });
    const { queue } = await ch.queueDeclare('', { exclusive: true });
    for (const s of ['a', 'b', 'c']) await ch.publish('', queue, s);
    const a = await getOne(ch, queue);
    a.nack();
    const a2 = await getOne(ch, queue);
    expect(a2.text()).toBe('a');
    expect(a2.redelivered).toBe(true);
    a2.reject({ requeue: false });
    const b = await getOne(ch, queue);
    const c = await getOne(ch, queue);
    expect([b.text(), c.text()]).toEqual(['b', 'c']);
    c.nack({ multiple: true, requeue: true });
    const again = [await getOne(ch, queue), await getOne(ch, queue)];
    expect(again.map((m) => m.text())).toEqual(['b', 'c']);
    expect(again.every((m) => m.redelivered)).toBe(true);
    again[1]!.ack(true);
    expect(await ch.get(queue)).toBeNull();
    expect((await ch.queueCheck(queue)).messageCount).toBe(0);
  });

  it('iterates with the prefetch count bounding the buffer, and requeues what was not taken', async () => {
    const t = target();
    const conn = await t.connect();
    const ch = await conn.channel({ confirm: true });
    const { queue } = await ch.queueDeclare('', { exclusive: true });
    for (let i = 0; i < 100; i++) await ch.publish('', queue, `m${i}`);
    const consumer = await ch.consume(queue, { prefetch: 5 });
    await until(() => consumer.buffered === 5, 'a full buffer');
    // A round trip on the channel: the broker has sent everything it was going to.
    expect((await ch.queueCheck(queue)).messageCount).toBe(95);
    expect(consumer.buffered).toBe(5);
    let taken = 0;
    for await (const m of consumer) {
      expect(m.text()).toBe(`m${taken}`);
      expect(consumer.buffered).toBeLessThanOrEqual(5);
      m.ack();
      if (++taken === 20) break;
    }
    expect(consumer.isActive).toBe(false);
    expect(await countBecomes(ch, queue, 80)).toBe(80);
    expect((await ch.queueCheck(queue)).consumerCount).toBe(0);
  });

  it('iterates with noAck: messages are settled as the loop takes them, credit still bounded', async () => {
    const t = target();
    const conn = await t.connect();
    const ch = await conn.channel({ confirm: true });
    const { queue } = await ch.queueDeclare('', { exclusive: true });
    for (let i = 0; i < 30; i++) await ch.publish('', queue, `m${i}`);
    const consumer = await ch.consume(queue, { noAck: true, prefetch: 4 });
    await until(() => consumer.buffered === 4, 'a full buffer');
    expect((await ch.queueCheck(queue)).messageCount).toBe(26);
    const seen: string[] = [];
    for await (const m of consumer) {
      expect(m.settled).toBe(true);
      seen.push(m.text());
      if (seen.length === 30) break;
    }
    expect(seen).toEqual(Array.from({ length: 30 }, (_, i) => `m${i}`));
    await ch.close();
    const ch2 = await conn.channel();
    expect((await ch2.queueCheck(queue)).messageCount).toBe(0);
  });

  it('applies channel-wide qos (global)', async () => {
    const t = target();
    const conn = await t.connect();
    const ch = await conn.channel({ confirm: true });
    await ch.qos(3, { global: true });
    const { queue } = await ch.queueDeclare('', { exclusive: true });
    for (let i = 0; i < 10; i++) await ch.publish('', queue, `m${i}`);
    const got: Message[] = [];
    await ch.consume(queue, (m) => {
      got.push(m);
    });
    await ch.consume(queue, (m) => {
      got.push(m);
    });
    await until(() => got.length === 3, 'three deliveries');
    expect((await ch.queueCheck(queue)).messageCount).toBe(7);
    expect(got.length).toBe(3);
    got[0]!.ack();
    await until(() => got.length === 4, 'a fourth delivery');
  });

  it('confirms publishes, keeps at most `window` unconfirmed, and waitForConfirms', async () => {
    const t = target();
    const conn = await t.connect();
    const ch = await conn.channel({ confirm: { window: 10 } });
    expect(ch.confirming).toBe(true);
    const { queue } = await ch.queueDeclare('', { exclusive: true });
    const all: Promise<void>[] = [];
    let maxUnconfirmed = 0;
    for (let i = 0; i < 200; i++) {
      all.push(ch.publish('', queue, `m${i}`));
      maxUnconfirmed = Math.max(maxUnconfirmed, ch.unconfirmed);
    }
    expect(maxUnconfirmed).toBe(10);
    await ch.waitForConfirms();
    await Promise.all(all);
    expect(ch.unconfirmed).toBe(0);
    expect((await ch.queueCheck(queue)).messageCount).toBe(200);
    const first = await getOne(ch, queue, true);
    expect(first.text()).toBe('m0');
  });

  it('rejects publishes the broker nacks (a full queue with x-overflow reject-publish)', async () => {
    const t = target();
    const conn = await t.connect();
    const ch = await conn.channel({ confirm: true });
    const { queue } = await ch.queueDeclare('', {
      exclusive: true,
      maxLength: 1,
      arguments: { 'x-overflow': 'reject-publish' },
    });
    await ch.publish('', queue, 'fits');
    const err = await ch.publish('', queue, 'does not fit').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect((err as ClientError).code).toBe('WARREN_ERR_PUBLISH_NACKED');
    await expect(ch.waitForConfirms()).resolves.toBeUndefined();
    expect((await ch.queueCheck(queue)).messageCount).toBe(1);
  });

  it('returns unroutable mandatory publishes: return event, and in confirm mode the publish rejects', async () => {
    const t = target();
    const conn = await t.connect();
    const ch = await conn.channel({ confirm: true });
    const { queue } = await ch.queueDeclare('', { exclusive: true });
    const returns: { code: number; key: string; body: string; id: string | undefined }[] = [];
    ch.on('return', (r) =>
      returns.push({
        code: r.replyCode,
        key: r.routingKey,
        body: r.body.toString(),
        id: r.properties.messageId,
      }),
    );
    const key = t.name('nowhere');
    // Same body to a queue and to nowhere: only the unroutable one fails.
    const outcomes = await Promise.all([
      ch.publish('', queue, 'same', { mandatory: true, messageId: 'm-0' }).then(() => 'ok'),
      ch.publish('', key, 'same', { mandatory: true, messageId: 'm-1' }).then(
        () => 'ok',
        (e: unknown) => (e as ClientError).code,
      ),
      ch.publish('', queue, 'same', { mandatory: true, messageId: 'm-2' }).then(() => 'ok'),
    ]);
    expect(outcomes).toEqual(['ok', 'WARREN_ERR_UNROUTABLE', 'ok']);
    expect(returns).toEqual([{ code: 312, key, body: 'same', id: 'm-1' }]);
    expect((await ch.queueCheck(queue)).messageCount).toBe(2);
    // Without confirm mode there is only the event.
    const plain = await conn.channel();
    const returned = new Promise<number>((r) => plain.once('return', (m) => r(m.replyCode)));
    await plain.publish('', key, 'lost?', { mandatory: true });
    expect(await returned).toBe(312);
  });

  it('runs transactions: rollback discards, commit delivers, acks inside a transaction', async () => {
    const t = target();
    const conn = await t.connect();
    const ch = await conn.channel();
    const { queue } = await ch.queueDeclare('', { exclusive: true });
    await ch.txSelect();
    await ch.publish('', queue, 'rolled back');
    await ch.txRollback();
    expect((await ch.queueCheck(queue)).messageCount).toBe(0);
    await ch.publish('', queue, 'committed');
    expect((await ch.queueCheck(queue)).messageCount).toBe(0);
    await ch.txCommit();
    expect((await ch.queueCheck(queue)).messageCount).toBe(1);
    const m = await getOne(ch, queue);
    m.ack();
    await ch.txRollback();
    // The rolled-back ack leaves the message unacked; recover puts it back.
    await ch.recover();
    const again = await getOne(ch, queue);
    expect(again.redelivered).toBe(true);
    again.ack();
    await ch.txCommit();
    expect(await ch.get(queue)).toBeNull();
  });

  it('ends iterators with WARREN_ERR_CONSUMER_CANCELLED when the queue is deleted', async () => {
    const t = target();
    const conn = await t.connect();
    const ch = await conn.channel({ confirm: true });
    const name = t.name('cancelled');
    await ch.queueDeclare(name);
    const consumer = await ch.consume(name, { prefetch: 10 });
    const callbackConsumer = await ch.consume(name, () => undefined);
    const other = await conn.channel();
    await other.queueDelete(name);
    const err = await drain(consumer).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect((err as ClientError).code).toBe('WARREN_ERR_CONSUMER_CANCELLED');
    const end = await callbackConsumer.closed;
    expect((end as ClientError).code).toBe('WARREN_ERR_CONSUMER_CANCELLED');
    expect(ch.isOpen).toBe(true);
  });

  it('honours AbortSignal and timeouts on calls that wait', async () => {
    const t = target();
    const conn = await t.connect();
    const ch = await conn.channel({ confirm: true });
    const ac = new AbortController();
    ac.abort(new Error('changed my mind'));
    const err = await ch
      .queueDeclare('', { exclusive: true, signal: ac.signal })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect((err as ClientError).code).toBe('WARREN_ERR_ABORTED');
    expect(((err as ClientError).cause as Error).message).toBe('changed my mind');
    // The channel is still usable and in step: the next reply belongs to the next call.
    const { queue } = await ch.queueDeclare('', { exclusive: true, timeout: 10_000 });
    await ch.publish('', queue, 'x');
    const m = await getOne(ch, queue);
    expect(m.text()).toBe('x');
    const q = await conn.queue(queue, { exclusive: true });
    const timedOut = await q.get({ timeout: 30 }).catch((e: unknown) => e);
    expect((timedOut as ClientError).code).toBe('WARREN_ERR_TIMEOUT');
    expect((timedOut as Error).stack).toContain('channel.test.ts');
  });

  it('closes channels after pending confirms, and the connection ends iterators', async () => {
    const t = target();
    const conn = await t.connect();
    const ch = await conn.channel({ confirm: true });
    const { queue } = await ch.queueDeclare('', { exclusive: true });
    const pubs = Array.from({ length: 20 }, (_, i) => ch.publish('', queue, `m${i}`));
    await ch.close();
    await Promise.all(pubs);
    expect(ch.state).toBe('closed');
    await expect(ch.publish('', queue, 'late')).rejects.toMatchObject({
      code: 'WARREN_ERR_CHANNEL_CLOSED',
    });
    const ch2 = await conn.channel();
    expect((await ch2.queueCheck(queue)).messageCount).toBe(20);
    const consumer = await ch2.consume(queue, { prefetch: 2 });
    const closed = new Promise<Error | null>((r) => conn.once('close', r));
    const it = consumer[Symbol.asyncIterator]();
    expect((await it.next()).value?.text()).toBe('m0');
    await conn.close();
    expect(await closed).toBeNull();
    expect(conn.state).toBe('closed');
    // Buffered messages are dropped (the broker requeues them); the loop finishes.
    expect(await drain(consumer)).toBeLessThanOrEqual(1);
    await expect(conn.channel()).rejects.toMatchObject({ code: 'WARREN_ERR_CONNECTION_CLOSED' });
  });

  it('refuses exclusive access to another connection (405 and 403)', async () => {
    const t = target();
    const a = await t.connect();
    const b = await t.connect();
    const cha = await a.channel();
    const mine = t.name('mine');
    await cha.queueDeclare(mine, { exclusive: true });
    const chb = await b.channel();
    const locked = await chb.queueDeclare(mine, { exclusive: true }).catch((e: unknown) => e);
    expect((locked as AmqpError).replyCode).toBe(405);
    const shared = t.name('shared');
    await cha.queueDeclare(shared);
    await cha.consume(shared, () => undefined, { exclusive: true });
    const chb2 = await b.channel();
    const refused = await chb2.consume(shared, () => undefined).catch((e: unknown) => e);
    expect((refused as AmqpError).replyCode).toBe(403);
  });

  it('fails to connect with typed errors: bad password, unknown vhost, nothing listening', async () => {
    const t = target();
    const bad = await t.connect({ password: 'wrong', reconnect: false }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(Error);
    expect((bad as AmqpError).replyCode).toBe(403);
    const vhost = await t
      .connect({ vhost: 'no-such-vhost', reconnect: false })
      .catch((e: unknown) => e);
    expect((vhost as AmqpError).replyCode).toBe(530);
  });

  it('passes handler errors to onError, or requeues once and reports WARREN_ERR_HANDLER_FAILED', async () => {
    const t = target();
    const conn = await t.connect();
    const ch = await conn.channel({ confirm: true });
    const { queue } = await ch.queueDeclare('', { exclusive: true });
    const reported: Error[] = [];
    conn.on('error', (e) => reported.push(e));
    const attempts: boolean[] = [];
    await ch.consume(queue, (m) => {
      attempts.push(m.redelivered);
      throw new Error('boom');
    });
    await ch.publish('', queue, 'poison');
    await until(() => attempts.length === 2 && reported.length === 2, 'two attempts');
    expect(attempts).toEqual([false, true]);
    expect((reported[0] as ClientError).code).toBe('WARREN_ERR_HANDLER_FAILED');
    expect((await ch.queueCheck(queue)).messageCount).toBe(0);
    const seen: unknown[] = [];
    const ch2 = await conn.channel();
    const { queue: q2 } = await ch2.queueDeclare('', { exclusive: true });
    await ch2.consume(
      q2,
      async () => {
        await Promise.resolve();
        throw new Error('async boom');
      },
      { onError: (e, m) => (seen.push((e as Error).message), m.ack()) },
    );
    await ch2.publish('', q2, 'x');
    await until(() => seen.length === 1, 'onError');
    expect(seen).toEqual(['async boom']);
  });

  it('round-trips channel.flow(true) (RabbitMQ refuses flow(false): see connection tests)', async () => {
    const t = target();
    const conn = await t.connect();
    const ch = await conn.channel({ confirm: true });
    expect(await ch.flow(true)).toBe(true);
    expect(ch.flowActive).toBe(true);
  });
});

async function getOne(
  ch: { get(q: string, o?: { noAck?: boolean }): Promise<Message | null> },
  queue: string,
  noAck = false,
): Promise<Message> {
  for (let i = 0; i < 200; i++) {
    const m = await ch.get(queue, { noAck });
    if (m !== null) return m;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no message in ${queue}`);
}

async function drain(c: Consumer): Promise<number> {
  let n = 0;
  for await (const m of c) {
    m.ack();
    n++;
  }
  return n;
}
