/**
 * RabbitMQ's queue extensions, scenario by scenario against the local RabbitMQ: message and queue
 * TTL, dead-lettering with its headers, length limits and overflow modes, priority queues and
 * single active consumer.
 *
 * One difference is normalised, by design: RabbitMQ 3.10 writes `x-first-death-*` only, while
 * Warren also writes `x-last-death-reason/queue/exchange` as RabbitMQ 3.13 and later do. Those
 * headers are checked against the newest `x-death` entry (a wrong one is recorded, so it fails
 * the comparison) and then removed from what is compared.
 */
import type { Channel, ConfirmChannel, Message } from 'amqplib';
import { describeMessage, differentialSuite } from './harness.js';
import type { ScenarioContext } from './harness.js';

/** Per-message and per-queue TTLs: long enough that a publish never races them, short enough to wait for. */
const TTL_MS = 150;

/** A message as compared: the harness's description, with dead-lettering headers normalised. */
function describeDead(m: Message): Record<string, unknown> {
  const d = describeMessage(m);
  const props = d.props as Record<string, unknown>;
  const headers = props.headers as Record<string, unknown> | undefined;
  if (headers !== undefined) props.headers = normaliseDeathHeaders(headers);
  return d;
}

function normaliseDeathHeaders(headers: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...headers };
  const deaths = Array.isArray(headers['x-death'])
    ? (headers['x-death'] as Record<string, unknown>[])
    : [];
  if (deaths.length > 0) {
    out['x-death'] = deaths.map((d) => ({ ...d, time: describeTime(d.time) }));
  }
  const last = deaths[0];
  const lastKeys = ['reason', 'queue', 'exchange'] as const;
  if (lastKeys.some((k) => headers[`x-last-death-${k}`] !== undefined)) {
    for (const k of lastKeys) {
      if (last === undefined || headers[`x-last-death-${k}`] !== last[k]) {
        out[`x-last-death-${k} disagrees with x-death[0]`] = headers[`x-last-death-${k}`];
      }
      delete out[`x-last-death-${k}`];
    }
  }
  return out;
}

/** x-death's `time` is when it happened: compared as "a timestamp within a minute of now". */
function describeTime(t: unknown): unknown {
  const v = t as { '!'?: string; value?: number } | undefined;
  if (v?.['!'] !== 'timestamp' || typeof v.value !== 'number') return { unexpected: t };
  const skew = Math.abs(v.value - Date.now() / 1000);
  return skew < 60 ? 'timestamp (now)' : { timestamp: v.value, skewSeconds: skew };
}

/** basic.get until the queue is empty; each message described with normalised death headers. */
async function getAll(ch: Channel, queue: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < 100; i++) {
    const m = await ch.get(queue, { noAck: true });
    if (m === false) break;
    out.push(describeDead(m));
  }
  return out;
}

async function bodiesOf(ch: Channel, queue: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < 100; i++) {
    const m = await ch.get(queue, { noAck: true });
    if (m === false) break;
    out.push(m.content.toString());
  }
  return out;
}

async function readyCount(ch: Channel, queue: string): Promise<number> {
  return (await ch.checkQueue(queue)).messageCount;
}

/** Wait until a queue holds exactly `n` ready messages. */
async function untilReady(ctx: ScenarioContext, ch: Channel, queue: string, n: number) {
  await ctx.until(async () => (await readyCount(ch, queue)) === n, `${n} ready in ${queue}`);
}

async function publishAll(
  ctx: ScenarioContext,
  ch: ConfirmChannel,
  queue: string,
  bodies: string[],
  options: Record<string, unknown> = {},
): Promise<void> {
  for (const b of bodies) await ctx.publish(ch, b, '', queue, b, options);
}

differentialSuite('differential: TTL, dead-lettering, limits, priorities', (scenario) => {
  scenario(
    'x-message-ttl: messages expire with no consumer and dead-letter as expired',
    async (ctx) => {
      const conn = await ctx.connect();
      const ch = await ctx.confirmChannel(conn);
      const [q, dlq] = [ctx.q('ttl'), ctx.q('ttl-dlq')];
      const dlx = ctx.x('ttl-dlx');
      await ch.assertExchange(dlx, 'fanout', { durable: false });
      await ch.assertQueue(dlq, { durable: false });
      await ch.bindQueue(dlq, dlx, '');
      await ch.assertQueue(q, {
        durable: false,
        arguments: { 'x-message-ttl': TTL_MS, 'x-dead-letter-exchange': dlx },
      });
      await publishAll(ctx, ch, q, ['a', 'b']);
      await ctx.publish(ch, 'c with its own longer expiration', '', q, 'c', {
        expiration: '60000',
      });
      await ctx.publish(ch, 'd with a header', '', q, 'd', {
        headers: { keep: 'me' },
        priority: 3,
      });
      await untilReady(ctx, ch, q, 0);
      ctx.see('ready after the TTL', 0);
      await untilReady(ctx, ch, dlq, 4);
      ctx.see('dead-lettered', await getAll(ch, dlq));
    },
  );

  scenario('x-message-ttl 0: only a waiting consumer gets the message', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.confirmChannel(conn);
    const q = ctx.q('ttl0');
    await ch.assertQueue(q, { durable: false, arguments: { 'x-message-ttl': 0 } });
    await ctx.publish(ch, 'nobody waiting', '', q, 'lost');
    ctx.see('ready', await readyCount(ch, q));
    const sub = await ctx.channel(conn, 'sub');
    const inbox = await ctx.consume(sub, q, 'consumer', { noAck: true });
    await ctx.publish(ch, 'consumer waiting', '', q, 'kept');
    await inbox.waitFor(1);
    ctx.see('delivered', inbox.messages.map(describeDead));
  });

  scenario('per-message TTL: expires only at the head; the lower of two TTLs wins', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.confirmChannel(conn);
    const [q, canary] = [ctx.q('expiration'), ctx.q('canary')];
    await ch.assertQueue(q, { durable: false });
    await ch.assertQueue(canary, { durable: false });
    await ctx.publish(ch, 'head, no expiration', '', q, 'first');
    await ctx.publish(ch, 'behind the head, short', '', q, 'short', { expiration: String(TTL_MS) });
    await ctx.publish(ch, 'long', '', q, 'long', { expiration: '60000' });
    // The canary expires at the head after the same time: once it is gone, 'short' has expired
    // too, but it is not at the head, so it is still counted.
    await ctx.publish(ch, 'canary', '', canary, 'canary', { expiration: String(TTL_MS) });
    await untilReady(ctx, ch, canary, 0);
    ctx.see('ready behind a live head', await readyCount(ch, q));
    const first = await ch.get(q, { noAck: true });
    ctx.see('first get', first === false ? 'empty' : describeDead(first));
    const second = await ch.get(q, { noAck: true });
    ctx.see(
      'second get skips the expired message',
      second === false ? 'empty' : describeDead(second),
    );
    ctx.see('ready after', await readyCount(ch, q));

    const q2 = ctx.q('both-ttls');
    await ch.assertQueue(q2, { durable: false, arguments: { 'x-message-ttl': 60_000 } });
    await ctx.publish(ch, 'message TTL below the queue TTL', '', q2, 'm', {
      expiration: String(TTL_MS),
    });
    await untilReady(ctx, ch, q2, 0);
    ctx.see('the message TTL won');
    await ctx.publish(ch, 'expiration 0 with nobody waiting', '', q2, 'z', { expiration: '0' });
    await untilReady(ctx, ch, q2, 0);
    ctx.see('expiration 0 dropped');
  });

  scenario('invalid expiration values and TTL arguments are refused', async (ctx) => {
    const conn = await ctx.connect();
    const q = ctx.q('bad-expiration');
    const values = [
      'soon',
      '',
      ' 5',
      '-5',
      '1.5',
      '5abc',
      '+5',
      '007',
      '-0',
      '315360000000',
      '315360000001',
      '99999999999999999999',
      '-99999999999999999999',
    ];
    for (const expiration of values) {
      const ch = await ctx.confirmChannel(conn, `expiration '${expiration}'`);
      await ch.assertQueue(q, { durable: false });
      await new Promise<void>((resolve) => {
        ch.once('close', () => resolve());
        ch.publish('', q, Buffer.from('x'), { expiration }, (err: unknown) => {
          if (err === null || err === undefined) ctx.see(`expiration '${expiration}' accepted`);
          ch.close().catch(() => undefined);
        });
      });
    }
    const ch = await ctx.channel(conn, 'check');
    ctx.see('ready', await readyCount(ch, q));
    for (const [arg, value] of [
      ['x-message-ttl', 315_360_000_000],
      ['x-message-ttl', 315_360_000_001],
      ['x-expires', 315_360_000_001],
    ] as const) {
      const c = await ctx.channel(conn, `${arg} ${value}`);
      const name = ctx.q(`ttl-arg-${arg}-${value}`);
      await ctx.attempt(`${arg} ${value}`, () =>
        c.assertQueue(name, { durable: false, arguments: { [arg]: value } }),
      );
    }
  });

  scenario(
    'x-expires deletes an unused queue; consumers and declares count as use',
    async (ctx) => {
      const conn = await ctx.connect();
      const ch = await ctx.channel(conn);
      const probe = await ctx.confirmChannel(conn, 'probe');
      let returned = 0;
      probe.on('return', () => returned++);
      // Whether a queue exists, without touching it: a mandatory publish comes back if it is gone
      // (publishing does not count as use; a passive declare would).
      const exists = (queue: string): Promise<boolean> =>
        new Promise((resolve) => {
          const before = returned;
          probe.publish('', queue, Buffer.from('probe'), { mandatory: true }, () =>
            resolve(returned === before),
          );
        });
      const [unused, consumed, declared] = [
        ctx.q('expires-unused'),
        ctx.q('expires-consumed'),
        ctx.q('expires-declared'),
      ];
      const expires = { 'x-expires': 3 * TTL_MS };
      await ch.assertQueue(unused, { durable: false, arguments: expires });
      await ch.assertQueue(declared, { durable: false, arguments: expires });
      await ch.assertQueue(consumed, { durable: false, arguments: { 'x-expires': TTL_MS } });
      await ctx.consume(ch, consumed, 'keeper', { noAck: true });
      ctx.see('all exist', [await exists(unused), await exists(consumed), await exists(declared)]);
      // Passive declares of `declared`, much more often than its expiry, until `unused` is gone.
      await ctx.until(async () => {
        await ch.checkQueue(declared);
        await new Promise((r) => setTimeout(r, TTL_MS / 3));
        return !(await exists(unused));
      }, 'the unused queue to go');
      ctx.see('after the expiry', {
        unused: await exists(unused),
        consumed: await exists(consumed),
        declared: await exists(declared),
      });
    },
  );

  scenario(
    'dead-lettering on reject and nack: x-death and x-first-death-* headers',
    async (ctx) => {
      const conn = await ctx.connect();
      const ch = await ctx.confirmChannel(conn);
      const [q, dlq] = [ctx.q('work'), ctx.q('dead')];
      const dlx = ctx.x('dlx');
      await ch.assertExchange(dlx, 'topic', { durable: false });
      await ch.assertQueue(dlq, { durable: false });
      await ch.bindQueue(dlq, dlx, '#');
      await ch.assertQueue(q, { durable: false, arguments: { 'x-dead-letter-exchange': dlx } });
      await ctx.publish(ch, 'r1', '', q, 'r1', {
        headers: { app: 'kept' },
        messageId: 'id-1',
        correlationId: 'c-1',
      });
      await publishAll(ctx, ch, q, ['n1', 'n2', 'requeued']);
      const sub = await ctx.channel(conn, 'sub');
      const inbox = await ctx.consume(sub, q, 'consumer');
      await inbox.waitFor(4);
      const [r1, n1, n2, again] = inbox.messages as [Message, Message, Message, Message];
      sub.reject(r1, false);
      sub.nack(n2, true, false); // multiple: n1 and n2
      sub.nack(again, false, true);
      await inbox.waitFor(5);
      ctx.see('requeued, not dead-lettered', inbox.messages[4]!.content.toString());
      sub.ack(inbox.messages[4]!);
      void n1;
      await untilReady(ctx, ch, dlq, 3);
      ctx.see('dead-lettered', await getAll(ch, dlq));
    },
  );

  scenario(
    'dead-letter routing key, CC keys, and deaths counted across a reject loop',
    async (ctx) => {
      const conn = await ctx.connect();
      const ch = await ctx.confirmChannel(conn);
      const [a, b, cc] = [ctx.q('loop-a'), ctx.q('loop-b'), ctx.q('loop-cc')];
      const x = ctx.x('loop');
      await ch.assertExchange(x, 'direct', { durable: false });
      // a dead-letters to b through the default exchange with b's name as the key (its CC keys are
      // then ignored); b dead-letters through x with the message's own keys, its CC included:
      // x routes the key b to a, and the CC key to cc.
      await ch.assertQueue(a, {
        durable: false,
        arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': b },
      });
      await ch.assertQueue(b, { durable: false, arguments: { 'x-dead-letter-exchange': x } });
      await ch.assertQueue(cc, { durable: false });
      await ch.bindQueue(a, x, b);
      await ch.bindQueue(cc, x, cc);
      await ctx.publish(ch, 'published to a, cc to another queue', '', a, 'loop', { CC: [cc] });
      ctx.see('ready in cc', await readyCount(ch, cc));
      const sub = await ctx.channel(conn, 'sub');
      const hops: Record<string, unknown>[] = [];
      for (const queue of [a, b, a, b]) {
        await untilReady(ctx, ch, queue, 1);
        const m = await sub.get(queue, { noAck: false });
        if (m === false) throw new Error(`nothing in ${queue}`);
        hops.push(describeDead(m));
        sub.reject(m, false);
      }
      ctx.see('each hop', hops);
      await untilReady(ctx, ch, a, 1);
      ctx.see('back in a after four rejects', await getAll(ch, a));
      ctx.see('cc: the published copy, then one per pass through b', await getAll(ch, cc));
    },
  );

  scenario('an expiry cycle is dropped instead of spinning forever', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.confirmChannel(conn);
    const [self, one, two, watch] = [
      ctx.q('cycle-self'),
      ctx.q('cycle-1'),
      ctx.q('cycle-2'),
      ctx.q('cycle-watch'),
    ];
    const fan = ctx.x('cycle-fan');
    // A queue dead-lettering expired messages to itself.
    await ch.assertQueue(self, {
      durable: false,
      arguments: { 'x-message-ttl': TTL_MS, 'x-dead-letter-exchange': '' },
    });
    // one -> two -> (fanout) one and watch: the way back to one closes a cycle, watch does not.
    await ch.assertExchange(fan, 'fanout', { durable: false });
    await ch.assertQueue(one, {
      durable: false,
      arguments: {
        'x-message-ttl': TTL_MS,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': two,
      },
    });
    await ch.assertQueue(two, {
      durable: false,
      arguments: { 'x-message-ttl': TTL_MS, 'x-dead-letter-exchange': fan },
    });
    await ch.assertQueue(watch, { durable: false });
    await ch.bindQueue(one, fan, '');
    await ch.bindQueue(watch, fan, '');
    await ctx.publish(ch, 'to self', '', self, 'self');
    await ctx.publish(ch, 'to one', '', one, 'around');
    await untilReady(ctx, ch, watch, 1);
    await untilReady(ctx, ch, self, 0);
    await ctx.quiet();
    ctx.see('ready', {
      self: await readyCount(ch, self),
      one: await readyCount(ch, one),
      two: await readyCount(ch, two),
    });
    ctx.see('watch', await getAll(ch, watch));
  });

  scenario('x-max-length with drop-head dead-letters the oldest as maxlen', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.confirmChannel(conn);
    const [q, dlq] = [ctx.q('maxlen'), ctx.q('maxlen-dlq')];
    const dlx = ctx.x('maxlen-dlx');
    await ch.assertExchange(dlx, 'fanout', { durable: false });
    await ch.assertQueue(dlq, { durable: false });
    await ch.bindQueue(dlq, dlx, '');
    await ch.assertQueue(q, {
      durable: false,
      arguments: { 'x-max-length': 2, 'x-overflow': 'drop-head', 'x-dead-letter-exchange': dlx },
    });
    await publishAll(ctx, ch, q, ['m1', 'm2', 'm3', 'm4', 'm5']);
    ctx.see('kept', await bodiesOf(ch, q));
    ctx.see('dropped', await getAll(ch, dlq));

    const zero = ctx.q('maxlen-zero');
    await ch.assertQueue(zero, { durable: false, arguments: { 'x-max-length': 0 } });
    await publishAll(ctx, ch, zero, ['z1']);
    ctx.see('max-length 0 keeps', await readyCount(ch, zero));
  });

  scenario(
    'x-overflow reject-publish: confirms nack what does not fit (ready messages only)',
    async (ctx) => {
      const conn = await ctx.connect();
      const ch = await ctx.confirmChannel(conn);
      const [q, dlq] = [ctx.q('reject'), ctx.q('reject-dlq')];
      const dlx = ctx.x('reject-dlx');
      await ch.assertExchange(dlx, 'fanout', { durable: false });
      await ch.assertQueue(dlq, { durable: false });
      await ch.bindQueue(dlq, dlx, '');
      await ch.assertQueue(q, {
        durable: false,
        arguments: {
          'x-max-length': 2,
          'x-overflow': 'reject-publish',
          'x-dead-letter-exchange': dlx,
        },
      });
      await publishAll(ctx, ch, q, ['m1', 'm2', 'm3']);
      const sub = await ctx.channel(conn, 'sub');
      const got = await sub.get(q, { noAck: false });
      ctx.see('got (unacked)', got === false ? 'empty' : got.content.toString());
      await publishAll(ctx, ch, q, ['m4', 'm5']);
      ctx.see('ready', await readyCount(ch, q));
      ctx.see('reject-publish does not dead-letter', await readyCount(ch, dlq));
      await ctx.publish(ch, 'mandatory, refused', '', q, 'm6', { mandatory: true });
      await sub.close();
      ctx.see('after the unacked one is requeued', await bodiesOf(ch, q));
    },
  );

  scenario('x-overflow reject-publish-dlx: nacked and dead-lettered', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.confirmChannel(conn);
    const [q, dlq] = [ctx.q('reject-dlx'), ctx.q('reject-dlx-dlq')];
    const dlx = ctx.x('reject-dlx-dlx');
    await ch.assertExchange(dlx, 'fanout', { durable: false });
    await ch.assertQueue(dlq, { durable: false });
    await ch.bindQueue(dlq, dlx, '');
    await ch.assertQueue(q, {
      durable: false,
      arguments: {
        'x-max-length': 1,
        'x-overflow': 'reject-publish-dlx',
        'x-dead-letter-exchange': dlx,
      },
    });
    await publishAll(ctx, ch, q, ['m1', 'm2']);
    await ctx.publish(ch, 'm3', '', q, 'm3', { headers: { n: 3 } });
    ctx.see('kept', await bodiesOf(ch, q));
    await untilReady(ctx, ch, dlq, 2);
    ctx.see('dead-lettered', await getAll(ch, dlq));
  });

  scenario('x-max-length-bytes counts body bytes, with either overflow mode', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.confirmChannel(conn);
    const [head, reject] = [ctx.q('bytes-head'), ctx.q('bytes-reject')];
    await ch.assertQueue(head, { durable: false, arguments: { 'x-max-length-bytes': 25 } });
    await ch.assertQueue(reject, {
      durable: false,
      arguments: { 'x-max-length-bytes': 25, 'x-overflow': 'reject-publish' },
    });
    for (const q of [head, reject]) {
      await publishAll(ctx, ch, q, ['0123456789', 'abcdefghij', 'ABCDEFGHIJ', '']);
      await publishAll(ctx, ch, q, ['12345']);
      await publishAll(ctx, ch, q, ['x']);
      ctx.see(`kept in ${q === head ? 'drop-head' : 'reject-publish'}`, await bodiesOf(ch, q));
    }
    const big = ctx.q('bytes-too-big');
    await ch.assertQueue(big, { durable: false, arguments: { 'x-max-length-bytes': 4 } });
    await publishAll(ctx, ch, big, ['too big for the queue']);
    ctx.see('a body bigger than the limit', await readyCount(ch, big));
  });

  scenario(
    'priority queue: by priority, FIFO within a level; requeue keeps priority',
    async (ctx) => {
      const conn = await ctx.connect();
      const ch = await ctx.confirmChannel(conn);
      const q = ctx.q('prio');
      await ch.assertQueue(q, { durable: false, arguments: { 'x-max-priority': 5 } });
      const sends: [string, number | undefined][] = [
        ['p0-a', 0],
        ['none-a', undefined],
        ['p3-a', 3],
        ['p5-a', 5],
        ['p9-capped', 9],
        ['p1-a', 1],
        ['p3-b', 3],
        ['none-b', undefined],
        ['p5-b', 5],
      ];
      for (const [body, priority] of sends) {
        await ctx.publish(ch, body, '', q, body, priority === undefined ? {} : { priority });
      }
      const firstGet = await ch.get(q, { noAck: true });
      ctx.see('get', firstGet === false ? 'empty' : describeDead(firstGet));
      ctx.see('gets', await bodiesOf(ch, q));

      for (const [body, priority] of sends) {
        await ctx.publish(ch, body, '', q, body, priority === undefined ? {} : { priority });
      }
      const sub = await ctx.channel(conn, 'sub');
      await sub.prefetch(1);
      const inbox = await ctx.consume(sub, q, 'consumer');
      await inbox.waitFor(1);
      await ctx.publish(ch, 'p4 while p5 is out', '', q, 'p4-late', { priority: 4 });
      sub.nack(inbox.messages[0]!, false, true);
      for (let n = 2; n <= 11; n++) {
        await inbox.waitFor(n);
        sub.ack(inbox.messages[n - 1]!);
      }
      ctx.see(
        'consumed',
        inbox.messages.map(
          (m) => `${m.content.toString()}${m.fields.redelivered ? ' (again)' : ''}`,
        ),
      );
    },
  );

  scenario(
    'single active consumer: one receives; fail-over on cancel and channel close',
    async (ctx) => {
      const conn = await ctx.connect();
      const pub = await ctx.confirmChannel(conn, 'pub');
      const q = ctx.q('sac');
      await pub.assertQueue(q, { durable: false, arguments: { 'x-single-active-consumer': true } });
      const [cha, chb, chc] = [
        await ctx.channel(conn, 'a'),
        await ctx.channel(conn, 'b'),
        await ctx.channel(conn, 'c'),
      ];
      const a = await ctx.consume(cha, q, 'a');
      const b = await ctx.consume(chb, q, 'b');
      const c = await ctx.consume(chc, q, 'c');
      await publishAll(ctx, pub, q, ['m1', 'm2', 'm3']);
      await a.waitFor(3);
      await ctx.quiet();
      ctx.see('while a is active', { a: a.bodies, b: b.bodies, c: c.bodies });
      const ok = await pub.checkQueue(q);
      ctx.see('declare-ok', { messages: ok.messageCount, consumers: ok.consumerCount });

      // Cancelling a leaves its three unacked; new messages go to b, the next in line.
      await cha.cancel(a.tag);
      await publishAll(ctx, pub, q, ['m4', 'm5']);
      await b.waitFor(2);
      // Closing a's channel requeues its three: they go to b too.
      await cha.close();
      await b.waitFor(5);
      await ctx.quiet();
      ctx.see('after a left', {
        b: b.messages.map(
          (m) => `${m.content.toString()}${m.fields.redelivered ? ' (again)' : ''}`,
        ),
        c: c.bodies,
      });
      // b's channel closing hands everything it held to c.
      await chb.close();
      await c.waitFor(5);
      ctx.see(
        'after b left',
        c.messages.map((m) => `${m.content.toString()}${m.fields.redelivered ? ' (again)' : ''}`),
      );
    },
  );
});
