import type { Channel, ChannelModel } from 'amqplib';
import { differentialSuite } from './harness.js';
import type { ScenarioContext } from './harness.js';

/** Whether a queue or exchange exists, asked passively on a throwaway channel. */
async function exists(conn: ChannelModel, kind: 'queue' | 'exchange', name: string) {
  const ch = await conn.createChannel();
  ch.on('error', () => undefined);
  try {
    if (kind === 'queue') await ch.checkQueue(name);
    else await ch.checkExchange(name);
  } catch {
    return false;
  }
  await ch.close();
  return true;
}

async function seeExists(
  ctx: ScenarioContext,
  conn: ChannelModel,
  kind: 'queue' | 'exchange',
  name: string,
  label: string,
) {
  ctx.see(`${label} exists`, await exists(conn, kind, name));
}

/** Wait for an (auto-deleted) resource to go, then record that it went. */
async function seeGone(
  ctx: ScenarioContext,
  conn: ChannelModel,
  kind: 'queue' | 'exchange',
  name: string,
  label: string,
) {
  await ctx.until(async () => !(await exists(conn, kind, name)), `${label} to be deleted`);
  ctx.see(`${label} gone`);
}

differentialSuite('differential: declare', (scenario) => {
  scenario('exchange redeclaration: equivalence errors', async (ctx) => {
    const conn = await ctx.connect();
    const x = ctx.x('equiv');
    const ae = ctx.x('equiv-ae');
    let ch = await ctx.channel(conn, 'setup');
    await ch.assertExchange(x, 'direct', { durable: false, alternateExchange: ae });
    await ctx.attempt('same', () =>
      ch.assertExchange(x, 'direct', { durable: false, alternateExchange: ae }),
    );
    await ctx.attempt('extra argument not compared', () =>
      ch.assertExchange(x, 'direct', {
        durable: false,
        alternateExchange: ae,
        arguments: { 'x-whatever': 'new' },
      }),
    );
    const variants: [string, () => Promise<unknown>][] = [
      ['type', () => ch.assertExchange(x, 'fanout', { durable: false, alternateExchange: ae })],
      ['durable', () => ch.assertExchange(x, 'direct', { durable: true, alternateExchange: ae })],
      [
        'auto_delete',
        () =>
          ch.assertExchange(x, 'direct', {
            durable: false,
            autoDelete: true,
            alternateExchange: ae,
          }),
      ],
      [
        'internal',
        () =>
          ch.assertExchange(x, 'direct', { durable: false, internal: true, alternateExchange: ae }),
      ],
      [
        'alternate-exchange',
        () => ch.assertExchange(x, 'direct', { durable: false, alternateExchange: 'other' }),
      ],
      ['alternate-exchange missing', () => ch.assertExchange(x, 'direct', { durable: false })],
      ['passive ignores type', () => ch.checkExchange(x)],
    ];
    for (const [label, op] of variants) {
      ch = await ctx.channel(conn, label);
      await ctx.attempt(label, op);
    }
  });

  scenario('queue redeclaration: equivalence errors', async (ctx) => {
    const conn = await ctx.connect();
    const q = ctx.q('equiv');
    // When one side lacks an argument, RabbitMQ names the other side's wire type ('byte' for
    // amqplib's 10). Warren's decoded tables do not keep wire types, so these integers are chosen
    // to be 'signedint' on the wire, which is what Warren reports for any 32-bit integer.
    const args = {
      'x-message-ttl': 60000,
      'x-max-length': 100000,
      'x-dead-letter-exchange': 'dlx',
      'x-custom': 'free',
    };
    let ch = await ctx.channel(conn, 'setup');
    await ctx.attempt('declare', () => ch.assertQueue(q, { durable: false, arguments: args }));
    await ctx.attempt('same', () => ch.assertQueue(q, { durable: false, arguments: args }));
    await ctx.attempt('custom argument not compared', () =>
      ch.assertQueue(q, { durable: false, arguments: { ...args, 'x-custom': 'changed' } }),
    );
    const variants: [string, () => Promise<unknown>][] = [
      ['durable', () => ch.assertQueue(q, { durable: true, arguments: args })],
      [
        'auto_delete',
        () => ch.assertQueue(q, { durable: false, autoDelete: true, arguments: args }),
      ],
      ['exclusive', () => ch.assertQueue(q, { durable: false, exclusive: true, arguments: args })],
      [
        'x-message-ttl',
        () => ch.assertQueue(q, { durable: false, arguments: { ...args, 'x-message-ttl': 70000 } }),
      ],
      [
        'x-max-length missing',
        () =>
          ch.assertQueue(q, {
            durable: false,
            arguments: { ...args, 'x-max-length': undefined },
          }),
      ],
      [
        'x-dead-letter-exchange',
        () =>
          ch.assertQueue(q, {
            durable: false,
            arguments: { ...args, 'x-dead-letter-exchange': 'other' },
          }),
      ],
      [
        'x-expires added',
        () => ch.assertQueue(q, { durable: false, arguments: { ...args, 'x-expires': 3600000 } }),
      ],
      [
        'x-overflow added',
        () =>
          ch.assertQueue(q, {
            durable: false,
            arguments: { ...args, 'x-overflow': 'reject-publish' },
          }),
      ],
      [
        'x-max-length as a string',
        () =>
          ch.assertQueue(q, {
            durable: false,
            arguments: { ...args, 'x-max-length': '100000' },
          }),
      ],
      [
        'x-max-length same value, wider type',
        () =>
          ch.assertQueue(q, {
            durable: false,
            arguments: { ...args, 'x-max-length': { '!': 'long', value: 100000 } },
          }),
      ],
      ['passive ignores everything', () => ch.checkQueue(q)],
    ];
    for (const [label, op] of variants) {
      ch = await ctx.channel(conn, label);
      await ctx.attempt(label, op);
    }
  });

  scenario('passive declare of missing queue and exchange: 404', async (ctx) => {
    const conn = await ctx.connect();
    let ch = await ctx.channel(conn, 'ch1');
    await ctx.attempt('check queue', () => ch.checkQueue(ctx.q('missing')));
    ch = await ctx.channel(conn, 'ch2');
    await ctx.attempt('check exchange', () => ch.checkExchange(ctx.x('missing')));
    ch = await ctx.channel(conn, 'ch3');
    await ctx.attempt('check amq.direct', () => ch.checkExchange('amq.direct'));
    await ctx.attempt('check amq.missing', () => ch.checkExchange('amq.diff-missing'));
  });

  scenario('amq.* names are reserved', async (ctx) => {
    const conn = await ctx.connect();
    let ch = await ctx.channel(conn, 'ch1');
    await ctx.attempt('declare exchange amq.diff', () =>
      ch.assertExchange(`amq.diff-${ctx.suffix}`, 'direct', { durable: false }),
    );
    ch = await ctx.channel(conn, 'ch2');
    await ctx.attempt('declare queue amq.diff', () =>
      ch.assertQueue(`amq.diff-${ctx.suffix}`, { durable: false }),
    );
    ch = await ctx.channel(conn, 'ch3');
    await ctx.attempt('redeclare amq.direct as is', () =>
      ch.assertExchange('amq.direct', 'direct', { durable: true }),
    );
    await ctx.attempt('redeclare amq.topic non-durable', () =>
      ch.assertExchange('amq.topic', 'topic', { durable: false }),
    );
    ch = await ctx.channel(conn, 'ch4');
    await ctx.attempt('delete amq.direct', () => ch.deleteExchange('amq.direct'));
    ch = await ctx.channel(conn, 'ch5');
    await ctx.attempt('delete missing amq.*', () => ch.deleteExchange(`amq.diff-${ctx.suffix}`));
  });

  scenario('the default exchange cannot be declared or deleted', async (ctx) => {
    const conn = await ctx.connect();
    let ch = await ctx.channel(conn, 'ch1');
    await ctx.attempt('declare default', () => ch.assertExchange('', 'direct', { durable: true }));
    ch = await ctx.channel(conn, 'ch2');
    await ctx.attempt('delete default', () => ch.deleteExchange(''));
  });

  scenario('unknown exchange type closes the connection (503)', async (ctx) => {
    const conn = await ctx.connect();
    const closed = ctx.closed(conn);
    const ch = await ctx.channel(conn);
    await ctx.attempt('declare', () =>
      ch.assertExchange(ctx.x('badtype'), 'no-such-type-here', { durable: false }),
    );
    await closed;
    ctx.see('connection closed');
  });

  scenario('exclusive queue is locked to its connection (405)', async (ctx) => {
    const owner = await ctx.connect('owner');
    const other = await ctx.connect('other');
    const q = ctx.q('exclusive');
    const x = ctx.x('exclusive');
    const och = await ctx.channel(owner, 'owner ch');
    await och.assertQueue(q, { exclusive: true, durable: false });
    await och.assertExchange(x, 'fanout', { durable: false });
    const ops: [string, () => Promise<unknown>][] = [];
    const add = (label: string, op: (ch: Channel) => Promise<unknown>) => {
      ops.push([label, async () => op(await ctx.channel(other, label))]);
    };
    add('declare', (ch) => ch.assertQueue(q, { exclusive: true, durable: false }));
    add('declare non-exclusive', (ch) => ch.assertQueue(q, { durable: false }));
    add('passive', (ch) => ch.checkQueue(q));
    add('consume', (ch) => ch.consume(q, () => undefined));
    add('get', (ch) => ch.get(q));
    add('purge', (ch) => ch.purgeQueue(q));
    add('bind', (ch) => ch.bindQueue(q, x, ''));
    add('delete', (ch) => ch.deleteQueue(q));
    for (const [label, op] of ops) await ctx.attempt(label, op);
    const pub = await ctx.confirmChannel(other, 'other publisher');
    await ctx.publish(pub, 'publish from the other connection', '', q, 'allowed', {
      mandatory: true,
    });
    await ctx.attempt('owner sees it', () => och.checkQueue(q));
    await ctx.attempt('owner redeclares', () =>
      och.assertQueue(q, { exclusive: true, durable: false }),
    );
    await ctx.attempt('owner redeclares non-exclusive', () =>
      och.assertQueue(q, { durable: false }),
    );
    await owner.close();
    await seeGone(ctx, other, 'queue', q, 'exclusive queue after owner closed');
  });

  scenario('server-named queues and the last-declared-queue shortcut', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.channel(conn, 'ch1');
    const x = ctx.x('shortcut');
    await ch.assertExchange(x, 'fanout', { durable: false });
    const ok = await ctx.attempt('declare server-named', () =>
      ch.assertQueue('', { exclusive: true }),
    );
    ctx.see('name prefix', ok?.queue.slice(0, 8));
    await ctx.attempt('bind via empty name', () => ch.bindQueue('', x, ''));
    ch.publish(x, '', Buffer.from('via-shortcut'));
    await ctx.until(async () => (await ch.checkQueue(ok!.queue)).messageCount === 1, 'message');
    await ctx.attempt('get via empty name', async () => {
      const m = await ch.get('', { noAck: true });
      return m === false ? 'empty' : m.content.toString();
    });
    await ctx.attempt('purge via empty name', () => ch.purgeQueue(''));
    await ctx.attempt('delete via empty name', () => ch.deleteQueue(''));
    const ch2 = await ctx.channel(conn, 'ch2');
    await ctx.attempt('get on a channel that declared nothing', () => ch2.get(''));
  });

  scenario('auto-delete queue goes when its last consumer cancels', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.channel(conn);
    const q = ctx.q('autodel');
    const never = ctx.q('autodel-never-consumed');
    await ch.assertQueue(q, { autoDelete: true, durable: false });
    await ch.assertQueue(never, { autoDelete: true, durable: false });
    const c1 = await ctx.consume(ch, q, 'c1');
    const c2 = await ctx.consume(ch, q, 'c2');
    await ctx.attempt('declare-ok counts', () => ch.checkQueue(q));
    await ch.cancel(c1.tag);
    await seeExists(ctx, conn, 'queue', q, 'after first cancel');
    await ch.cancel(c2.tag);
    await seeGone(ctx, conn, 'queue', q, 'after last cancel');
    await seeExists(ctx, conn, 'queue', never, 'never consumed');

    const q2 = ctx.q('autodel-chclose');
    const ch2 = await ctx.channel(conn, 'ch2');
    await ch2.assertQueue(q2, { autoDelete: true, durable: false });
    await ctx.consume(ch2, q2, 'c3');
    await ch2.close();
    await seeGone(ctx, conn, 'queue', q2, 'after consumer channel closed');
  });

  scenario('auto-delete exchange goes when its last binding is removed', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.channel(conn);
    const x = ctx.x('autodel');
    const never = ctx.x('autodel-never-bound');
    const [q1, q2] = [ctx.q('ad1'), ctx.q('ad2')];
    await ch.assertExchange(x, 'direct', { autoDelete: true, durable: false });
    await ch.assertExchange(never, 'direct', { autoDelete: true, durable: false });
    await ch.assertQueue(q1, { durable: false });
    await ch.assertQueue(q2, { durable: false });
    await ch.bindQueue(q1, x, 'a');
    await ch.bindQueue(q2, x, 'b');
    await ch.unbindQueue(q1, x, 'a');
    await seeExists(ctx, conn, 'exchange', x, 'after first unbind');
    await ch.unbindQueue(q2, x, 'b');
    await seeGone(ctx, conn, 'exchange', x, 'after last unbind');
    await seeExists(ctx, conn, 'exchange', never, 'never bound');

    const x2 = ctx.x('autodel-qdel');
    await ch.assertExchange(x2, 'fanout', { autoDelete: true, durable: false });
    await ch.bindQueue(q1, x2, '');
    await ch.deleteQueue(q1);
    await seeGone(ctx, conn, 'exchange', x2, 'after its only queue was deleted');

    const src = ctx.x('autodel-src');
    const dst = ctx.x('autodel-dst');
    await ch.assertExchange(src, 'fanout', { autoDelete: true, durable: false });
    await ch.assertExchange(dst, 'fanout', { autoDelete: true, durable: false });
    await ch.bindExchange(dst, src, '');
    await ch.bindQueue(q2, dst, '');
    await ch.unbindExchange(dst, src, '');
    await seeGone(ctx, conn, 'exchange', src, 'e2e source after unbind');
    await seeExists(ctx, conn, 'exchange', dst, 'e2e destination with a queue binding');
  });

  scenario('queue.delete if-unused / if-empty, and deleting what is missing', async (ctx) => {
    const conn = await ctx.connect();
    const q = ctx.q('del');
    let ch = await ctx.channel(conn, 'ch1');
    await ch.assertQueue(q, { durable: false });
    ch.sendToQueue(q, Buffer.from('one'));
    ch.sendToQueue(q, Buffer.from('two'));
    await ctx.until(async () => (await ch.checkQueue(q)).messageCount === 2, 'two messages');
    await ctx.attempt('delete if-empty', () => ch.deleteQueue(q, { ifEmpty: true }));
    ch = await ctx.channel(conn, 'ch2');
    const cch = await ctx.channel(conn, 'consumer ch');
    await cch.prefetch(1);
    const inbox = await ctx.consume(cch, q, 'c', {}, false);
    await inbox.waitFor(1);
    await ctx.attempt('delete if-unused', () => ch.deleteQueue(q, { ifUnused: true }));
    ch = await ctx.channel(conn, 'ch3');
    await ctx.attempt('counts with one unacked', () => ch.checkQueue(q));
    await ctx.attempt('delete', () => ch.deleteQueue(q));
    await ctx.until(() => inbox.cancelledByServer, 'the consumer to be cancelled');
    ctx.see('consumer cancelled by server');
    await ctx.attempt('delete again', () => ch.deleteQueue(q));
    await ctx.attempt('delete never declared', () => ch.deleteQueue(ctx.q('never')));
    await ctx.attempt('delete if-empty never declared', () =>
      ch.deleteQueue(ctx.q('never'), { ifEmpty: true, ifUnused: true }),
    );
  });

  scenario('exchange.delete if-unused, and deleting what is missing', async (ctx) => {
    const conn = await ctx.connect();
    const x = ctx.x('del');
    const x2 = ctx.x('del-dest');
    const q = ctx.q('del');
    let ch = await ctx.channel(conn, 'ch1');
    await ch.assertExchange(x, 'direct', { durable: false });
    await ch.assertExchange(x2, 'direct', { durable: false });
    await ch.assertQueue(q, { durable: false });
    await ch.bindQueue(q, x, 'k');
    await ch.bindExchange(x, x2, 'k');
    await ctx.attempt('delete bound source if-unused', () =>
      ch.deleteExchange(x, { ifUnused: true }),
    );
    ch = await ctx.channel(conn, 'ch2');
    await ch.unbindQueue(q, x, 'k');
    await ctx.attempt('delete destination-only if-unused', () =>
      ch.deleteExchange(x, { ifUnused: true }),
    );
    const pub = await ctx.confirmChannel(conn, 'pub');
    await ctx.publish(pub, 'via x2 to x', x2, 'k', 'one', { mandatory: true });
    await ctx.attempt('delete destination x', () => ch.deleteExchange(x));
    await ctx.publish(pub, 'via x2 after x deleted', x2, 'k', 'two', { mandatory: true });
    await ctx.attempt('delete e2e source', () => ch.deleteExchange(x2));
    await ctx.attempt('delete again', () => ch.deleteExchange(x2));
    await ctx.attempt('delete never declared', () => ch.deleteExchange(ctx.x('never')));
  });

  scenario('purge and declare-ok counts', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.confirmChannel(conn);
    const q = ctx.q('counts');
    await ctx.attempt('declare', () => ch.assertQueue(q, { durable: false }));
    for (let i = 0; i < 5; i++) await ctx.publish(ch, `p${i}`, '', q, `m${i}`);
    await ctx.attempt('redeclare', () => ch.assertQueue(q, { durable: false }));
    const cch = await ctx.channel(conn, 'consumer ch');
    await cch.prefetch(2);
    const inbox = await ctx.consume(cch, q, 'c1');
    await ctx.consume(cch, q, 'c2');
    await inbox.waitFor(2);
    await ctx.until(async () => (await ch.checkQueue(q)).messageCount === 1, '1 ready');
    await ctx.attempt('passive with consumers', () => ch.checkQueue(q));
    await ctx.attempt('purge', () => ch.purgeQueue(q));
    await ctx.attempt('purge again', () => ch.purgeQueue(q));
    await cch.close();
    await ctx.until(async () => (await ch.checkQueue(q)).messageCount === 4, 'requeued');
    await ctx.attempt('after consumer channel closed', () => ch.checkQueue(q));
    await ctx.attempt('delete', () => ch.deleteQueue(q));
    await ctx.attempt('purge missing', () => ch.purgeQueue(q));
  });
});
