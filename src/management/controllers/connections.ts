import type { Connection } from '../../broker/index.js';
import type { Context } from '../context.js';
import { canSeeVhost, isAdministrator, isMonitor, vhostFor } from '../context.js';
import { listing, tableToJson, withRate } from '../format.js';
import { Reply, httpErrors } from '../http.js';
import type { Router } from '../router.js';
import { sortKeys } from './overview.js';

type AnyChannel = Connection['channels'] extends Map<number, infer C> ? C : never;
type AnyConsumer = AnyChannel['consumers'] extends Map<string, infer C> ? C : never;

/** RabbitMQ's connection name: "peer:port -> local:port". */
export function connectionName(c: Connection): string {
  const t = c.transport;
  if (t.localAddress === undefined) return `in-process (${c.id})`;
  return `${c.remoteAddress}:${c.remotePort} -> ${t.localAddress}:${t.localPort ?? 0}`;
}

export function channelName(c: Connection, channelId: number): string {
  return `${connectionName(c)} (${channelId})`;
}

function stateOf(c: Connection): string {
  if (c.state === 'open') return 'running';
  if (c.state === 'closing' || c.state === 'closed') return 'closing';
  return 'starting';
}

/** Connections the caller may see: monitors see all; others their own, in their vhosts. */
function visibleConnections(ctx: Context): Connection[] {
  const only = ctx.params.vhost;
  if (only !== undefined) vhostFor(ctx, only);
  const monitor = isMonitor(ctx.user);
  return [...ctx.broker.connections].filter((c) => {
    if (c.vhost === null) return monitor && only === undefined;
    if (only !== undefined && c.vhost.name !== only) return false;
    if (!canSeeVhost(ctx, c.vhost.name)) return false;
    return monitor || c.user?.name === ctx.user.name;
  });
}

export function connectionJson(ctx: Context, c: Connection): Record<string, unknown> {
  const t = c.transport;
  const inProcess = t.localAddress === undefined;
  const rates = ctx.stats.connectionRates(c);
  const out: Record<string, unknown> = {
    auth_mechanism: c.authMechanism,
    channel_max: c.channelMax,
    channels: c.channels.size,
    client_properties: tableToJson(c.clientProperties),
    connected_at: c.connectedAt,
    frame_max: c.frameMax,
    host: inProcess ? 'in-process' : (t.localAddress ?? ''),
    name: connectionName(c),
    node: ctx.node,
    peer_cert_issuer: null,
    peer_cert_subject: null,
    peer_cert_validity: null,
    peer_host: c.remoteAddress,
    peer_port: c.remotePort,
    port: t.localPort ?? 0,
    protocol: 'AMQP 0-9-1',
    recv_cnt: c.stats.recvCnt,
    send_cnt: c.stats.sendCnt,
    send_pend: t.writableLength,
    ssl: false,
    ssl_cipher: null,
    ssl_hash: null,
    ssl_key_exchange: null,
    ssl_protocol: null,
    state: stateOf(c),
    timeout: c.heartbeat,
    type: inProcess ? 'direct' : 'network',
    user: c.user?.name ?? '',
    user_who_performed_action: c.user?.name ?? '',
    vhost: c.vhost?.name ?? '',
  };
  const provided = c.clientProperties.connection_name;
  if (typeof provided === 'string') out.user_provided_name = provided;
  withRate(out, 'recv_oct', c.stats.recvOct, rates[0]!);
  withRate(out, 'send_oct', c.stats.sendOct, rates[1]!);
  return sortKeys(out);
}

function findConnection(ctx: Context): Connection {
  const name = ctx.params.name!;
  for (const c of visibleConnections(ctx)) if (connectionName(c) === name) return c;
  throw httpErrors.notFound();
}

function channelJson(ctx: Context, c: Connection, ch: AnyChannel): Record<string, unknown> {
  const out: Record<string, unknown> = {
    acks_uncommitted: ch.txOps.filter((op) => op.kind !== 'publish').length,
    confirm: ch.confirmMode,
    connection_details: {
      name: connectionName(c),
      peer_host: c.remoteAddress,
      peer_port: c.remotePort,
    },
    consumer_count: ch.consumers.size,
    global_prefetch_count: ch.channelPrefetch,
    messages_unacknowledged: ch.unackedCount,
    messages_uncommitted: ch.txOps.filter((op) => op.kind === 'publish').length,
    messages_unconfirmed: Math.max(0, ch.publishSeq - ch.confirmSent),
    name: channelName(c, ch.id),
    node: ctx.node,
    number: ch.id,
    prefetch_count: ch.consumerPrefetch,
    state: ch.state === 'open' ? (ch.flowActive ? 'running' : 'flow') : 'closing',
    transactional: ch.txMode,
    user: c.user?.name ?? '',
    user_who_performed_action: c.user?.name ?? '',
    vhost: c.vhost?.name ?? '',
  };
  if (ch.confirmMode) {
    const ms: Record<string, unknown> = {};
    withRate(ms, 'confirm', ch.confirmSent, 0);
    out.message_stats = ms;
  }
  return sortKeys(out);
}

function listChannels(ctx: Context, conns: Connection[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const c of conns) for (const ch of c.channels.values()) out.push(channelJson(ctx, c, ch));
  return out;
}

function consumerJson(ctx: Context, c: Connection, ch: AnyChannel, k: AnyConsumer): unknown {
  return {
    arguments: tableToJson(k.arguments),
    ack_required: !k.noAck,
    active: true,
    activity_status: 'up',
    channel_details: {
      connection_name: connectionName(c),
      name: channelName(c, ch.id),
      node: ctx.node,
      number: ch.id,
      peer_host: c.remoteAddress,
      peer_port: c.remotePort,
      user: c.user?.name ?? '',
    },
    consumer_tag: k.tag,
    exclusive: k.exclusive,
    prefetch_count: k.prefetch,
    priority: k.priority,
    queue: { name: k.queue.name, vhost: k.queue.vhost },
  };
}

/** Consumers of visible connections, optionally only those of one queue. */
export function listConsumers(
  ctx: Context,
  filter: (k: AnyConsumer) => boolean = () => true,
): unknown[] {
  const out: unknown[] = [];
  for (const c of visibleConnections(ctx)) {
    for (const ch of c.channels.values()) {
      for (const k of ch.consumers.values()) {
        if (filter(k)) out.push(consumerJson(ctx, c, ch, k));
      }
    }
  }
  return out;
}

function closeConnection(ctx: Context): Reply {
  const c = findConnection(ctx);
  if (!isAdministrator(ctx.user) && c.user?.name !== ctx.user.name) throw httpErrors.forbidden();
  const reason = ctx.req.headers['x-reason'];
  c.close(
    typeof reason === 'string' && reason !== ''
      ? reason
      : `Closed via management plugin by ${ctx.user.name}`,
  );
  return Reply.noContent();
}

function findChannel(ctx: Context): unknown {
  const name = ctx.params.name!;
  for (const c of visibleConnections(ctx)) {
    for (const ch of c.channels.values()) {
      if (channelName(c, ch.id) === name) return channelJson(ctx, c, ch);
    }
  }
  throw httpErrors.notFound();
}

export function registerConnections(r: Router): void {
  const conns = (ctx: Context): unknown =>
    listing(
      visibleConnections(ctx).map((c) => connectionJson(ctx, c)),
      ctx.query,
    );
  const chans = (ctx: Context): unknown =>
    listing(listChannels(ctx, visibleConnections(ctx)), ctx.query);
  r.get('/api/connections', 'management', conns);
  r.get('/api/vhosts/:vhost/connections', 'management', conns);
  r.get('/api/connections/:name', 'management', (ctx) => connectionJson(ctx, findConnection(ctx)));
  r.delete('/api/connections/:name', 'management', closeConnection);
  r.get('/api/connections/:name/channels', 'management', (ctx) =>
    listChannels(ctx, [findConnection(ctx)]),
  );
  r.get('/api/channels', 'management', chans);
  r.get('/api/vhosts/:vhost/channels', 'management', chans);
  r.get('/api/channels/:name', 'management', findChannel);
  r.get('/api/consumers', 'management', (ctx) => listConsumers(ctx));
  r.get('/api/consumers/:vhost', 'management', (ctx) => listConsumers(ctx));
}
