import { createHash } from 'node:crypto';
import type { Message } from 'amqplib';
import { MethodId, describeMessage, differentialSuite } from './harness.js';

differentialSuite('differential: publishing', (scenario) => {
  scenario('mandatory: basic.return (312 NO_ROUTE) comes before the confirm ack', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.confirmChannel(conn);
    const x = ctx.x('mandatory');
    const q = ctx.q('mandatory');
    await ch.assertExchange(x, 'direct', { durable: false });
    await ch.assertQueue(q, { durable: false });
    await ch.bindQueue(q, x, 'bound');
    await ctx.publish(ch, 'unroutable mandatory', x, 'nowhere', 'lost', {
      mandatory: true,
      messageId: 'm-1',
      headers: { h: 'v' },
    });
    await ctx.publish(ch, 'unroutable not mandatory', x, 'nowhere', 'dropped');
    await ctx.publish(ch, 'routable mandatory', x, 'bound', 'kept', { mandatory: true });
    await ctx.publish(ch, 'default exchange, no queue', '', ctx.q('none'), 'lost-2', {
      mandatory: true,
    });
    await ctx.drain(ch, q, 'q');
  });

  scenario('confirms: many publishes, acks (possibly multiple) cover every one', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.confirmChannel(conn);
    const q = ctx.q('confirms');
    await ch.assertQueue(q, { durable: false });
    let highest = 0;
    ch.on('ack', (f: { deliveryTag: number }) => {
      if (f.deliveryTag > highest) highest = f.deliveryTag;
    });
    for (let i = 0; i < 500; i++) ch.sendToQueue(q, Buffer.from(`m${i}`));
    await ch.waitForConfirms();
    ctx.see('highest acked tag', highest);
    await ctx.attempt('queue', () => ch.checkQueue(q));
  });

  scenario('publish to a missing exchange closes the channel (404)', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.confirmChannel(conn, 'ch1');
    const closed = ctx.closed(ch);
    await ctx.publish(ch, 'publish', ctx.x('missing'), 'k', 'body');
    await closed;
    const ch2 = await ctx.channel(conn, 'ch2');
    const closed2 = ctx.closed(ch2);
    ch2.publish(ctx.x('missing'), 'k', Buffer.alloc(0));
    await closed2;
    const ch3 = await ctx.channel(conn, 'ch3');
    await ctx.attempt('connection still usable', () => ch3.checkExchange('amq.fanout'));
  });

  scenario('publish to an internal exchange is refused (403)', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.confirmChannel(conn, 'ch');
    const inner = ctx.x('internal');
    const outer = ctx.x('outer');
    const q = ctx.q('internal');
    await ch.assertExchange(inner, 'fanout', { durable: false, internal: true });
    await ch.assertExchange(outer, 'fanout', { durable: false });
    await ch.assertQueue(q, { durable: false });
    await ch.bindQueue(q, inner, '');
    await ch.bindExchange(inner, outer, '');
    await ctx.publish(ch, 'via outer', outer, '', 'through');
    await ctx.drain(ch, q, 'q');
    const closed = ctx.closed(ch);
    await ctx.publish(ch, 'direct to internal', inner, '', 'refused');
    await closed;
  });

  scenario('tx: publishes and acks take effect on commit, vanish on rollback', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.channel(conn, 'tx');
    const obs = await ctx.channel(conn, 'observer');
    const q = ctx.q('tx');
    await ch.assertQueue(q, { durable: false });
    await ctx.rpc(ch, 'tx.select', MethodId.TxSelect, MethodId.TxSelectOk);
    ch.sendToQueue(q, Buffer.from('a'));
    ch.sendToQueue(q, Buffer.from('b'));
    await ctx.attempt('before commit', () => obs.checkQueue(q));
    await ctx.rpc(ch, 'tx.commit', MethodId.TxCommit, MethodId.TxCommitOk);
    await ctx.attempt('after commit', () => obs.checkQueue(q));
    ch.sendToQueue(q, Buffer.from('c'));
    await ctx.rpc(ch, 'tx.rollback', MethodId.TxRollback, MethodId.TxRollbackOk);
    await ctx.attempt('after rollback', () => obs.checkQueue(q));
    const m = await ch.get(q);
    if (m === false) throw new Error('expected a message');
    ctx.see('got', describeMessage(m));
    ch.ack(m);
    await ctx.rpc(ch, 'tx.rollback', MethodId.TxRollback, MethodId.TxRollbackOk);
    await ctx.rpc(ch, 'tx.commit (nothing)', MethodId.TxCommit, MethodId.TxCommitOk);
    await ctx.attempt('ack rolled back: still unacked', () => obs.checkQueue(q));
    ch.ack(m);
    await ctx.rpc(ch, 'tx.commit (ack)', MethodId.TxCommit, MethodId.TxCommitOk);
    await ch.recover();
    await ctx.attempt('after ack commit and recover', () => obs.checkQueue(q));
    const n = await ch.get(q);
    if (n === false) throw new Error('expected a message');
    ch.nack(n, false, true);
    await ctx.rpc(ch, 'tx.commit (nack)', MethodId.TxCommit, MethodId.TxCommitOk);
    await ctx.attempt('after nack commit', () => obs.checkQueue(q));
  });

  scenario('tx: a mandatory publish is returned at commit, before commit-ok', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.channel(conn, 'tx');
    const q = ctx.q('tx-mandatory');
    await ch.assertQueue(q, { durable: false });
    await ctx.rpc(ch, 'tx.select', MethodId.TxSelect, MethodId.TxSelectOk);
    ch.publish('amq.direct', 'nowhere', Buffer.from('unroutable'), { mandatory: true });
    ch.sendToQueue(q, Buffer.from('routable'), { mandatory: true });
    await ctx.quiet();
    ctx.see('before commit');
    await ctx.rpcInOrder(ch, 'tx.commit', MethodId.TxCommit, {}, MethodId.TxCommitOk);
    await ctx.attempt('queue', () => ch.checkQueue(q));
    const closed = ctx.closed(ch);
    ch.publish(ctx.x('missing'), 'k', Buffer.from('x'));
    await closed;
  });

  scenario('tx and confirm modes exclude each other (406)', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.channel(conn, 'ch1');
    await ctx.rpc(ch, 'tx.select', MethodId.TxSelect, MethodId.TxSelectOk);
    await ctx.rpc(ch, 'tx.select again', MethodId.TxSelect, MethodId.TxSelectOk);
    await ctx.rpc(ch, 'confirm.select', MethodId.ConfirmSelect, MethodId.ConfirmSelectOk);
    const ch2 = await ctx.confirmChannel(conn, 'ch2');
    await ctx.rpc(ch2, 'confirm.select again', MethodId.ConfirmSelect, MethodId.ConfirmSelectOk);
    await ctx.rpc(ch2, 'tx.select', MethodId.TxSelect, MethodId.TxSelectOk);
    const ch3 = await ctx.channel(conn, 'ch3');
    await ctx.rpc(ch3, 'tx.commit without select', MethodId.TxCommit, MethodId.TxCommitOk);
    const ch4 = await ctx.channel(conn, 'ch4');
    await ctx.rpc(ch4, 'tx.rollback without select', MethodId.TxRollback, MethodId.TxRollbackOk);
  });

  scenario('direct reply-to: request and reply without a reply queue', async (ctx) => {
    const conn = await ctx.connect();
    const server = await ctx.channel(conn, 'server');
    const client = await ctx.channel(conn, 'client');
    const q = ctx.q('rpc');
    await server.assertQueue(q, { durable: false });
    await server.consume(
      q,
      (m) => {
        if (m === null) return;
        ctx.see('server got', describeMessage(m));
        server.sendToQueue(
          m.properties.replyTo as string,
          Buffer.from(`re:${m.content.toString()}`),
          {
            correlationId: m.properties.correlationId as string,
          },
        );
        server.ack(m);
      },
      { consumerTag: 'server' },
    );
    const replies = await ctx.consume(client, 'amq.rabbitmq.reply-to', 'client', {
      noAck: true,
      consumerTag: 'replies',
    });
    client.sendToQueue(q, Buffer.from('ping'), {
      replyTo: 'amq.rabbitmq.reply-to',
      correlationId: 'c-1',
    });
    await replies.waitFor(1);
    ctx.see('reply', describeMessage(replies.messages[0]!));
    const bad = await ctx.channel(conn, 'no reply consumer');
    const closed = ctx.closed(bad);
    bad.sendToQueue(q, Buffer.from('x'), { replyTo: 'amq.rabbitmq.reply-to' });
    await closed;
    const acking = await ctx.channel(conn, 'acking reply consumer');
    await ctx.attempt('consume reply-to with acks', () =>
      acking.consume('amq.rabbitmq.reply-to', () => undefined),
    );
    const pub = await ctx.confirmChannel(conn, 'pub');
    await ctx.publish(
      pub,
      'reply to a vanished requester',
      '',
      'amq.rabbitmq.reply-to.nobody',
      'x',
      {
        mandatory: true,
      },
    );
  });

  scenario('user-id must match the authenticated user (406)', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.confirmChannel(conn, 'ch');
    const q = ctx.q('userid');
    await ch.assertQueue(q, { durable: false });
    await ctx.publish(ch, 'matching', '', q, 'ok', { userId: 'guest' });
    await ctx.drain(ch, q, 'q');
    const closed = ctx.closed(ch);
    await ctx.publish(ch, 'mismatch', '', q, 'bad', { userId: 'mallory' });
    await closed;
  });

  scenario('immediate=true is not implemented (540, connection closed)', async (ctx) => {
    const conn = await ctx.connect();
    const closed = ctx.closed(conn);
    const ch = await ctx.channel(conn, 'ch');
    const q = ctx.q('immediate');
    await ch.assertQueue(q, { durable: false });
    ctx.publishRaw(ch, { exchange: '', routingKey: q, immediate: true }, {}, Buffer.from('now'));
    await closed;
    ctx.see('connection closed');
  });

  scenario('all 14 basic properties are delivered unchanged', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.channel(conn, 'ch');
    const q = ctx.q('props');
    await ch.assertQueue(q, { durable: false });
    const properties = {
      contentType: 'application/json',
      contentEncoding: 'gzip',
      headers: {
        str: 'text',
        int: 42,
        big: 5_000_000_000,
        neg: -7,
        float: 1.5,
        bool: true,
        nil: null,
        arr: ['a', 1, false],
        nested: { deeper: { x: 'y' } },
        bytes: Buffer.from([0, 1, 2, 255]),
        ts: { '!': 'timestamp', value: 1_700_000_000 },
        dec: { '!': 'decimal', value: { places: 2, digits: 12345 } },
      },
      deliveryMode: 2,
      priority: 7,
      correlationId: 'corr-1',
      replyTo: 'reply-queue',
      expiration: '3600000',
      messageId: 'msg-1',
      timestamp: 1_700_000_000,
      type: 'example.type',
      userId: 'guest',
      appId: 'differential',
      clusterId: 'cluster-x',
    };
    ctx.publishRaw(ch, { exchange: '', routingKey: q }, properties, Buffer.from('{"a":1}'));
    ctx.publishRaw(ch, { exchange: '', routingKey: q }, {}, Buffer.from('no properties'));
    const a = await ctx.consume(ch, q, 'a', { noAck: true });
    await a.waitFor(2);
    for (const m of a.messages) ctx.see('delivered', describeMessage(m));
  });

  scenario('empty body and a body larger than frame_max', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.confirmChannel(conn, 'ch');
    const q = ctx.q('sizes');
    await ch.assertQueue(q, { durable: false });
    const big = Buffer.alloc(300_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + 3) & 0xff;
    await ctx.publish(ch, 'empty', '', q, Buffer.alloc(0));
    await ctx.publish(ch, 'big', '', q, big);
    await ctx.publish(ch, 'exactly one frame', '', q, Buffer.alloc(131_072 - 8, 1));
    const a = await ctx.consume(ch, q, 'a', { noAck: true });
    await a.waitFor(3);
    for (const m of a.messages) {
      ctx.see('delivered', {
        bytes: m.content.length,
        sha256: createHash('sha256').update(m.content).digest('hex'),
      });
    }
    const returned: Message[] = [];
    ch.on('return', (m: Message) => returned.push(m));
    await ctx.publish(ch, 'big returned', '', ctx.q('none'), big, { mandatory: true });
    ctx.see(
      'returned bytes',
      returned.map((m) => m.content.length),
    );
  });

  scenario('a channel error leaves the connection and its other channels working', async (ctx) => {
    const conn = await ctx.connect();
    const pub = await ctx.confirmChannel(conn, 'pub');
    const q = ctx.q('survive');
    await pub.assertQueue(q, { durable: false });
    const consumer = await ctx.channel(conn, 'consumer');
    const a = await ctx.consume(consumer, q, 'a');
    await ctx.publish(pub, 'before', '', q, 'before');
    await a.waitFor(1);
    const bad = await ctx.channel(conn, 'bad');
    await ctx.attempt('bad op', () => bad.checkQueue(ctx.q('missing')));
    await ctx.attempt('op on the closed channel', () => bad.checkQueue(q));
    await ctx.publish(pub, 'after', '', q, 'after');
    await a.waitFor(2);
    consumer.ack(a.messages[0]!);
    consumer.ack(a.messages[1]!);
    ctx.see('a', a.bodies);
    await ctx.attempt('queue', () => pub.checkQueue(q));
    const again = await ctx.channel(conn, 'again');
    await ctx.attempt('new channel', () => again.checkQueue(q));
  });
});
