import { MethodId, differentialSuite } from './harness.js';

differentialSuite('differential: connection and errors', (scenario) => {
  scenario('server properties capabilities and negotiated limits', async (ctx) => {
    const conn = await ctx.connect();
    const props = conn.connection.serverProperties as unknown as Record<string, unknown>;
    ctx.see('capabilities', props.capabilities);
    const raw = conn.connection as unknown as Record<string, unknown>;
    ctx.see('tuned', {
      frameMax: raw.frameMax,
      channelMax: raw.channelMax,
      heartbeat: raw.heartbeat,
    });
  });

  scenario('queue arguments RabbitMQ validates are refused with its wording', async (ctx) => {
    const conn = await ctx.connect();
    const cases: [string, Record<string, unknown>][] = [
      ['negative ttl', { 'x-message-ttl': -1 }],
      ['string ttl', { 'x-message-ttl': 'soon' }],
      ['zero expires', { 'x-expires': 0 }],
      ['negative max-length', { 'x-max-length': -5 }],
      // Integers that amqplib sends as 'signedint': RabbitMQ names the wire type in these
      // errors, and Warren's decoded tables no longer know it (it reports 'signedint').
      ['numeric dead-letter exchange', { 'x-dead-letter-exchange': 5_000_000 }],
      ['boolean dead-letter exchange', { 'x-dead-letter-exchange': true }],
      ['numeric dead-letter routing key', { 'x-dlx': 'x', 'x-dead-letter-routing-key': 70_000 }],
      ['boolean overflow', { 'x-overflow': false }],
      ['string max-priority', { 'x-max-priority': 'high' }],
      ['fractional ttl', { 'x-message-ttl': 1.5 }],
      ['string single-active-consumer', { 'x-single-active-consumer': 'yes' }],
      ['unknown queue type', { 'x-queue-type': 'weird' }],
      ['negative max-length-bytes', { 'x-max-length-bytes': -1 }],
      ['dead-letter routing key without exchange', { 'x-dead-letter-routing-key': 'k' }],
      ['max-priority too big', { 'x-max-priority': 256 }],
      ['unknown overflow', { 'x-overflow': 'explode' }],
      ['unknown queue mode', { 'x-queue-mode': 'sleepy' }],
    ];
    for (const [label, args] of cases) {
      const ch = await ctx.channel(conn, label);
      await ctx.attempt(label, () =>
        ch.assertQueue(ctx.q('badarg'), { durable: false, arguments: args }),
      );
    }
  });

  scenario('basic.qos with prefetch_size is not implemented (540)', async (ctx) => {
    const conn = await ctx.connect();
    const closed = ctx.closed(conn);
    const ch = await ctx.channel(conn, 'ch');
    await ctx.attempt('qos', async () => {
      await (ch as unknown as { rpc(m: number, f: object, e: number): Promise<unknown> }).rpc(
        0x003c000a,
        { prefetchSize: 1000, prefetchCount: 0, global: false },
        0x003c000b,
      );
      return {};
    });
    await closed;
    ctx.see('connection closed');
  });

  scenario('errors on several channels: each closes alone', async (ctx) => {
    const conn = await ctx.connect();
    const good = await ctx.confirmChannel(conn, 'good');
    const q = ctx.q('many');
    await good.assertQueue(q, { durable: false });
    for (let i = 1; i <= 3; i++) {
      const bad = await ctx.channel(conn, `bad${i}`);
      await ctx.attempt(`bad${i}`, () => bad.checkQueue(ctx.q(`missing${i}`)));
    }
    const tx = await ctx.channel(conn, 'tx');
    await ctx.rpc(tx, 'tx.select', MethodId.TxSelect, MethodId.TxSelectOk);
    await ctx.publish(good, 'still publishing', '', q, 'ok');
    await ctx.attempt('still declaring', () => good.checkQueue(q));
    await ctx.rpc(tx, 'tx.commit', MethodId.TxCommit, MethodId.TxCommitOk);
  });

  scenario('an error on a channel requeues its unacked messages', async (ctx) => {
    const conn = await ctx.connect();
    const pub = await ctx.confirmChannel(conn, 'pub');
    const q = ctx.q('err-requeue');
    await pub.assertQueue(q, { durable: false });
    for (const b of ['a', 'b']) pub.sendToQueue(q, Buffer.from(b));
    await pub.waitForConfirms();
    const ch = await ctx.channel(conn, 'ch');
    const inbox = await ctx.consume(ch, q, 'c');
    await inbox.waitFor(2);
    await ctx.attempt('bad op', () => ch.checkExchange(ctx.x('missing')));
    await ctx.until(async () => (await pub.checkQueue(q)).messageCount === 2, 'requeue');
    const m = await pub.get(q, { noAck: true });
    ctx.see(
      'first after requeue',
      m === false ? 'empty' : [m.content.toString(), m.fields.redelivered],
    );
  });
});
