/**
 * Authentication and authorisation, compared with the local RabbitMQ: the same users, vhosts and
 * permissions are set up on both (RabbitMQ through its management API), the same amqplib
 * scenario runs on both, and what the client observed must be equal, reply texts included.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'amqplib';
import type { Channel, ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runScenario } from '../differential/harness.js';
import type { ScenarioContext } from '../differential/harness.js';
import { Method, methodName } from '../../src/protocol/index.js';
import type { AnyMethod } from '../../src/protocol/index.js';
import { startTestBroker, waitFor } from '../helpers/broker.js';
import type { TestBroker } from '../helpers/broker.js';
import { RABBITMQ_URL, requireRabbitmq } from '../helpers/rabbitmq.js';
import { RawClient, saslResponse } from '../helpers/raw-client.js';
import { rabbitmqAdmin, warrenAdmin } from './admin.js';
import type { Admin } from './admin.js';

/** One broker as a scenario sees it: where it is, and how to administer it. */
interface Env {
  admin: Admin;
  /** A vhost made for this scenario, with `adminUser` allowed everything in it. */
  vhost: string;
  adminUser: string;
  /** A user without any permission (created; the scenario grants what it tests). */
  user: string;
  password: string;
  url(user: string, password: string, vhost?: string): string;
}

type SecurityScenario = (ctx: ScenarioContext, env: Env) => Promise<void>;

function brokerEnv(base: string, admin: Admin, tag: string): Env {
  const { hostname, port } = new URL(base);
  return {
    admin,
    vhost: `sec-${tag}`,
    adminUser: `sec-admin-${tag}`,
    user: `sec-user-${tag}`,
    password: `pw-${tag}`,
    url: (user, password, vhost = `sec-${tag}`) =>
      `amqp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${hostname}:${port}/${encodeURIComponent(vhost)}`,
  };
}

async function setUp(env: Env): Promise<void> {
  await env.admin.addVhost(env.vhost);
  await env.admin.addUser(env.adminUser, env.password, ['administrator']);
  await env.admin.setPermissions(env.vhost, env.adminUser, '.*', '.*', '.*');
  await env.admin.addUser(env.user, env.password);
}

async function tearDown(env: Env): Promise<void> {
  await env.admin.deleteVhost(env.vhost);
  await env.admin.deleteUser(env.adminUser);
  await env.admin.deleteUser(env.user);
}

/**
 * Try to open a connection with a raw client (amqplib does not show a close received during the
 * handshake); record the open-ok, or the connection.close the broker sent, or a silent close.
 */
async function tryConnect(ctx: ScenarioContext, label: string, url: string): Promise<void> {
  const u = new URL(url);
  const vhost = decodeURIComponent(u.pathname.slice(1)) || '/';
  const c = await RawClient.connect(Number(u.port), { host: u.hostname });
  const next = (ids: number[]): Promise<AnyMethod | 'socket closed'> =>
    waitFor(
      () =>
        c.frames.find((f) => f.method !== undefined && ids.includes(f.method.id))?.method ??
        (c.closed ? ('socket closed' as const) : undefined),
      `${ids.map((id) => methodName(id)).join(' or ')} (${label})`,
    );
  try {
    await c.sendProtocolHeader();
    await next([Method.ConnectionStart]);
    await c.sendMethod(0, {
      id: Method.ConnectionStartOk,
      clientProperties: {
        product: 'warren-security-test',
        capabilities: { authentication_failure_close: true },
      },
      mechanism: 'PLAIN',
      response: saslResponse(
        'PLAIN',
        decodeURIComponent(u.username),
        decodeURIComponent(u.password),
      ),
      locale: 'en_US',
    });
    const tune = await next([Method.ConnectionTune, Method.ConnectionClose]);
    if (tune !== 'socket closed' && tune.id === Method.ConnectionTune) {
      await c.sendMethod(0, {
        id: Method.ConnectionTuneOk,
        channelMax: tune.channelMax,
        frameMax: tune.frameMax,
        heartbeat: 0,
      });
      await c.sendMethod(0, {
        id: Method.ConnectionOpen,
        virtualHost: vhost,
        capabilities: '',
        insist: false,
      });
    }
    const result = await next([Method.ConnectionOpenOk, Method.ConnectionClose]);
    if (result === 'socket closed') {
      ctx.see(label, 'socket closed without connection.close');
    } else if (result.id === Method.ConnectionClose) {
      const { replyCode, replyText, classId, methodId } = result;
      ctx.see(label, { replyCode, replyText, classId, methodId });
    } else {
      ctx.see(label, 'connection.open-ok');
      await c.closeConnection();
    }
  } finally {
    c.destroy();
  }
}

/** Run one operation on a fresh channel (a refusal closes the channel it happens on). */
async function op(
  ctx: ScenarioContext,
  conn: ChannelModel,
  label: string,
  action: (ch: Channel) => Promise<unknown>,
): Promise<void> {
  const ch = await ctx.channel(conn, label);
  await ctx.attempt(label, async () => {
    await action(ch);
    return 'ok';
  });
}

/** Publish on a fresh confirm channel: an ack, or the channel closed with a 403. */
async function publishOp(
  ctx: ScenarioContext,
  conn: ChannelModel,
  label: string,
  exchange: string,
): Promise<void> {
  const ch = await ctx.confirmChannel(conn, label);
  await ctx.publish(ch, label, exchange, 'k', 'body');
}

describe('security: users, vhosts and permissions, compared with RabbitMQ', () => {
  let warren: TestBroker;
  beforeAll(async () => {
    await requireRabbitmq();
    warren = await startTestBroker();
  });
  afterAll(async () => {
    await warren?.stop();
  });

  async function compare(
    scenario: SecurityScenario,
  ): Promise<{ lines: string[]; kinds: string[] }> {
    const tag = randomBytes(4).toString('hex');
    const envs = [
      brokerEnv(RABBITMQ_URL, rabbitmqAdmin(), tag),
      brokerEnv(warren.url, warrenAdmin(warren.broker), tag),
    ] as const;
    const results = [];
    for (const env of envs) {
      await setUp(env);
      try {
        results.push(
          await runScenario(env.url(env.user, env.password), (ctx) => scenario(ctx, env)),
        );
      } finally {
        await tearDown(env);
      }
    }
    const [rabbit, ours] = results as [(typeof results)[0], (typeof results)[0]];
    // RabbitMQ 3.10 says "access to queue 'q' ... refused"; Warren names the permission, as
    // RabbitMQ 3.11+ does ("configure access to queue 'q' ..."). Compared without it; the
    // permissions Warren named are returned for the scenario to check.
    const kinds: string[] = [];
    const warrenLines = ours.lines.map((l) =>
      l.replace(/ACCESS_REFUSED - (configure|write|read) access to/, (_m, kind: string) => {
        kinds.push(kind);
        return 'ACCESS_REFUSED - access to';
      }),
    );
    if (process.env.DIFF_VERBOSE !== undefined) console.log(rabbit.lines.join('\n'));
    if (rabbit.failure !== null) {
      throw new Error(
        `the scenario failed on RabbitMQ itself: ${rabbit.failure}\n${rabbit.lines.join('\n')}`,
      );
    }
    expect(warrenLines, 'observations on Warren (received) vs RabbitMQ (expected)').toEqual(
      rabbit.lines,
    );
    return { lines: rabbit.lines, kinds };
  }

  it('wrong password, unknown user, unknown vhost, a vhost without permissions', async () => {
    const { lines } = await compare(async (ctx, env) => {
      await env.admin.setPermissions(env.vhost, env.user, '.*', '.*', '.*');
      await tryConnect(ctx, 'right password', env.url(env.user, env.password));
      await tryConnect(ctx, 'wrong password', env.url(env.user, 'not-it'));
      await tryConnect(ctx, 'empty password', env.url(env.user, ''));
      await tryConnect(ctx, 'unknown user', env.url(`${env.user}-nobody`, env.password));
      await tryConnect(ctx, 'unknown vhost', env.url(env.user, env.password, `${env.vhost}-none`));
      // The user has permissions in its vhost, none in '/'.
      await tryConnect(ctx, "vhost '/' without permissions", env.url(env.user, env.password, '/'));
    });
    expect(lines.join('\n')).toContain('ACCESS_REFUSED');
    expect(lines.join('\n')).toContain('NOT_ALLOWED');
  });

  it('configure, write and read permissions on every kind of operation', async () => {
    const { lines, kinds } = await compare(async (ctx, env) => {
      // The admin user builds the topology the restricted user then works on.
      const adminConn = await connect(env.url(env.adminUser, env.password));
      const a = await adminConn.createConfirmChannel();
      for (const x of ['cfg.x', 'wr.x', 'rd.x', 'other.x', 'both.x']) {
        await a.assertExchange(x, 'direct', { durable: false });
      }
      for (const q of ['cfg.q', 'wr.q', 'rd.q', 'other.q', 'both.q']) {
        await a.assertQueue(q, { durable: false });
        a.sendToQueue(q, Buffer.from(`in ${q}`));
      }
      await a.waitForConfirms();
      await adminConn.close();
      await env.admin.setPermissions(
        env.vhost,
        env.user,
        '^(cfg|both)\\.',
        '^(wr|both)\\.',
        '^(rd|both)\\.',
      );
      const conn = await ctx.connect('user');

      // configure
      await op(ctx, conn, 'declare exchange cfg.new', (ch) =>
        ch.assertExchange('cfg.new', 'fanout'),
      );
      await op(ctx, conn, 'declare exchange other.new', (ch) =>
        ch.assertExchange('other.new', 'fanout'),
      );
      await op(ctx, conn, 'passive declare exchange other.x', (ch) => ch.checkExchange('other.x'));
      await op(ctx, conn, 'declare queue cfg.new', (ch) =>
        ch.assertQueue('cfg.new', { durable: false }),
      );
      await op(ctx, conn, 'declare queue other.new', (ch) =>
        ch.assertQueue('other.new', { durable: false }),
      );
      await op(ctx, conn, 'passive declare queue other.q', (ch) => ch.checkQueue('other.q'));
      await op(ctx, conn, 'declare server-named queue', (ch) =>
        ch.assertQueue('', { exclusive: true }),
      );
      // A dead-letter exchange needs read on the queue and write on the exchange.
      await op(ctx, conn, 'declare cfg.dl with a dead-letter exchange', (ch) =>
        ch.assertQueue('cfg.dl', { durable: false, deadLetterExchange: 'wr.x' }),
      );
      await op(ctx, conn, 'declare both.dl with dead-letter exchange other.x', (ch) =>
        ch.assertQueue('both.dl', { durable: false, deadLetterExchange: 'other.x' }),
      );
      await op(ctx, conn, 'declare both.dl with the default exchange for dead letters', (ch) =>
        ch.assertQueue('both.dl', { durable: false, deadLetterExchange: '' }),
      );
      await op(ctx, conn, 'declare both.dl with dead-letter exchange wr.x', (ch) =>
        ch.assertQueue('both.dl', { durable: false, deadLetterExchange: 'wr.x' }),
      );
      // So does an alternate exchange, for the exchange declared.
      await op(ctx, conn, 'declare cfg.ae with an alternate exchange', (ch) =>
        ch.assertExchange('cfg.ae', 'direct', { durable: false, alternateExchange: 'wr.x' }),
      );
      await op(ctx, conn, 'declare both.ae with alternate exchange other.x', (ch) =>
        ch.assertExchange('both.ae', 'direct', { durable: false, alternateExchange: 'other.x' }),
      );
      await op(ctx, conn, 'declare both.ae with alternate exchange wr.x', (ch) =>
        ch.assertExchange('both.ae', 'direct', { durable: false, alternateExchange: 'wr.x' }),
      );
      await op(ctx, conn, 'delete exchange other.x', (ch) => ch.deleteExchange('other.x'));
      await op(ctx, conn, 'delete queue other.q', (ch) => ch.deleteQueue('other.q'));
      await op(ctx, conn, 'delete queue cfg.new', (ch) => ch.deleteQueue('cfg.new'));

      // write (and read on the exchange side of a binding)
      await publishOp(ctx, conn, 'publish to wr.x', 'wr.x');
      await publishOp(ctx, conn, 'publish to other.x', 'other.x');
      await publishOp(ctx, conn, 'publish to the default exchange', '');
      await op(ctx, conn, 'bind wr.q to rd.x', (ch) => ch.bindQueue('wr.q', 'rd.x', 'k'));
      await op(ctx, conn, 'bind other.q to rd.x', (ch) => ch.bindQueue('other.q', 'rd.x', 'k'));
      await op(ctx, conn, 'bind wr.q to other.x', (ch) => ch.bindQueue('wr.q', 'other.x', 'k'));
      await op(ctx, conn, 'unbind wr.q from rd.x', (ch) => ch.unbindQueue('wr.q', 'rd.x', 'k'));
      await op(ctx, conn, 'unbind other.q from rd.x', (ch) =>
        ch.unbindQueue('other.q', 'rd.x', 'k'),
      );
      await op(ctx, conn, 'bind exchange wr.x to rd.x', (ch) =>
        ch.bindExchange('wr.x', 'rd.x', 'k'),
      );
      await op(ctx, conn, 'bind exchange other.x to rd.x', (ch) =>
        ch.bindExchange('other.x', 'rd.x', 'k'),
      );
      await op(ctx, conn, 'bind exchange wr.x to other.x', (ch) =>
        ch.bindExchange('wr.x', 'other.x', 'k'),
      );
      await op(ctx, conn, 'unbind exchange other.x from rd.x', (ch) =>
        ch.unbindExchange('other.x', 'rd.x', 'k'),
      );

      // read
      await op(ctx, conn, 'get from rd.q', async (ch) => {
        const m = await ch.get('rd.q', { noAck: true });
        return m === false ? 'empty' : m.content.toString();
      });
      await op(ctx, conn, 'get from other.q', (ch) => ch.get('other.q'));
      await op(ctx, conn, 'consume rd.q', (ch) => ch.consume('rd.q', () => undefined));
      await op(ctx, conn, 'consume other.q', (ch) => ch.consume('other.q', () => undefined));
      await op(ctx, conn, 'purge both.q', (ch) => ch.purgeQueue('both.q'));
      await op(ctx, conn, 'purge other.q', (ch) => ch.purgeQueue('other.q'));
    });
    expect(lines.filter((l) => l.includes('ACCESS_REFUSED')).length).toBeGreaterThan(15);
    // The permission each refusal named, in order (RabbitMQ 3.11+ names it too): each channel
    // error is seen twice (the channel's error event and the failed call), a publish's once.
    const twice = (k: string): string[] => [k, k];
    expect(kinds).toEqual([
      ...twice('configure'), // declare exchange other.new
      ...twice('configure'), // declare queue other.new
      ...twice('configure'), // server-named queue
      ...twice('read'), // cfg.dl: read on the queue, for its dead-letter exchange
      ...twice('write'), // both.dl: write on other.x
      ...twice('write'), // both.dl: write on amq.default
      ...twice('read'), // cfg.ae: read on the exchange, for its alternate
      ...twice('write'), // both.ae: write on other.x
      ...twice('configure'), // delete exchange other.x
      ...twice('configure'), // delete queue other.q
      'write', // publish to other.x
      'write', // publish to the default exchange
      ...twice('write'), // bind other.q: write on the queue
      ...twice('read'), // bind to other.x: read on the exchange
      ...twice('write'), // unbind other.q
      ...twice('write'), // exchange bind: write on the destination
      ...twice('read'), // exchange bind: read on the source
      ...twice('write'), // exchange unbind: write on the destination
      ...twice('read'), // get
      ...twice('read'), // consume
      ...twice('read'), // purge
    ]);
  });

  it('changed or cleared permissions apply to channels opened afterwards', async () => {
    await compare(async (ctx, env) => {
      await env.admin.setPermissions(env.vhost, env.user, '.*', '.*', '.*');
      const conn = await ctx.connect('user');
      await op(ctx, conn, 'declare q.one', (ch) => ch.assertQueue('q.one', { durable: false }));
      await env.admin.setPermissions(env.vhost, env.user, '^q\\.', '', '^nothing$');
      await op(ctx, conn, 'get from q.one after read was narrowed', (ch) => ch.get('q.one'));
      await publishOp(ctx, conn, 'publish after write was cleared', '');
      await op(ctx, conn, 'declare q.two', (ch) => ch.assertQueue('q.two', { durable: false }));
      await env.admin.setPermissions(env.vhost, env.user, '', '', '.*');
      await op(ctx, conn, 'get from q.one after read was widened', async (ch) => {
        const m = await ch.get('q.one');
        return m === false ? 'empty' : m.content.toString();
      });
      await op(ctx, conn, 'declare q.three after configure was cleared', (ch) =>
        ch.assertQueue('q.three', { durable: false }),
      );
    });
  });

  it('guest from 127.0.0.2 is on loopback (RabbitMQ counts all of 127/8)', async () => {
    await compare(async (ctx, env) => {
      const { hostname, port } = new URL(env.url('guest', 'guest', '/'));
      await ctx.attempt('guest from 127.0.0.2', async () => {
        // amqplib hands socket options to net.connect; its typings leave localAddress out.
        const socketOptions = { localAddress: '127.0.0.2' } as Parameters<typeof connect>[1];
        const conn = await connect(`amqp://guest:guest@${hostname}:${port}`, socketOptions);
        const local = (conn.connection as unknown as { stream: { localAddress: string } }).stream
          .localAddress;
        await conn.close();
        return { connectedFrom: local };
      });
    });
  });
});
