import { readdirSync, statfsSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { resolve } from 'node:path';
import type { Broker } from '../../broker/index.js';
import { Message } from '../../broker/index.js';
import { VERSION } from '../../version.js';
import type { Context } from '../context.js';
import { canSeeVhost, isMonitor, requirePermission, vhostFor } from '../context.js';
import { round, withRate } from '../format.js';
import { Reply, httpErrors } from '../http.js';
import type { Router } from '../router.js';
import { GLOBAL_COUNTERS } from '../stats.js';

/** RabbitMQ's default memory high watermark: 40% of RAM. */
const MEMORY_WATERMARK = 0.4;
/** RabbitMQ's default free disk limit. */
export const DISK_FREE_LIMIT = 50_000_000;

const EXCHANGE_TYPES = ['direct', 'fanout', 'headers', 'topic'].map((name) => ({
  name,
  description: `AMQP ${name} exchange, as per the AMQP specification`,
  enabled: true,
}));

const AUTH_MECHANISMS = [
  { name: 'PLAIN', description: 'SASL PLAIN authentication mechanism', enabled: true },
  { name: 'AMQPLAIN', description: 'QPid AMQPLAIN mechanism', enabled: true },
];

/** RabbitMQ's message_stats object from cumulative counts and their rates. */
export function messageStats(totals: Float64Array, rates: Float64Array): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  GLOBAL_COUNTERS.forEach((name, i) => withRate(out, name, totals[i]!, rates[i]!));
  // deliver_get: everything handed out, by push or pull, with or without acks.
  const sum = (a: Float64Array): number => a[2]! + a[3]! + a[4]! + a[5]!;
  withRate(out, 'deliver_get', sum(totals), sum(rates));
  return sortKeys(out);
}

export function sortKeys(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o).sort()) out[k] = o[k];
  return out;
}

/** Resource use the overview, nodes, health checks and metrics report. */
export function resources(broker: Broker): {
  memUsed: number;
  memLimit: number;
  diskFree: number;
  fdUsed: number;
} {
  const memUsed = process.memoryUsage.rss();
  let diskFree = 0;
  const dataDir = broker.config.dataDir;
  try {
    if (dataDir !== null) {
      const s = statfsSync(resolve(dataDir));
      diskFree = s.bavail * s.bsize;
    }
  } catch {
    // The data directory is not there (yet): nothing to measure.
  }
  let fdUsed = 0;
  try {
    fdUsed = readdirSync('/proc/self/fd').length;
  } catch {
    // Not Linux.
  }
  return { memUsed, memLimit: Math.floor(totalmem() * MEMORY_WATERMARK), diskFree, fdUsed };
}

export function alarms(broker: Broker): { resource: string; node: string }[] {
  const r = resources(broker);
  const node = nodeName(broker);
  const out: { resource: string; node: string }[] = [];
  if (r.memUsed > r.memLimit) out.push({ resource: 'memory', node });
  if (r.diskFree > 0 && r.diskFree < DISK_FREE_LIMIT) {
    out.push({ resource: 'disk', node });
  }
  return out;
}

export function nodeName(broker: Broker): string {
  const cn = broker.serverProperties.cluster_name;
  return typeof cn === 'string' ? cn : 'warren@localhost';
}

function overview(ctx: Context): unknown {
  const { broker, stats } = ctx;
  const monitor = isMonitor(ctx.user);
  const vhosts = [...broker.vhosts.values()].filter((v) => canSeeVhost(ctx, v.name));
  const totals = stats.totals();
  let counts: Float64Array;
  let rates: Float64Array;
  if (monitor) {
    counts = totals.get('') ?? new Float64Array(GLOBAL_COUNTERS.length);
    rates = stats.rates();
  } else {
    counts = new Float64Array(GLOBAL_COUNTERS.length);
    rates = new Float64Array(GLOBAL_COUNTERS.length);
    for (const v of vhosts) {
      const t = totals.get(v.name);
      const r = stats.rates(v.name);
      for (let i = 0; i < counts.length; i++) {
        counts[i]! += t?.[i] ?? 0;
        rates[i]! += r[i]!;
      }
    }
  }
  let ready = 0;
  let unacked = 0;
  let queues = 0;
  let exchanges = 0;
  let consumers = 0;
  for (const v of vhosts) {
    for (const q of v.queues.values()) {
      ready += q.messageCount;
      unacked += q.unackedCount;
      consumers += q.consumerCount;
      queues++;
    }
    exchanges += v.exchanges.size;
  }
  const visible = new Set(vhosts.map((v) => v.name));
  let connections = 0;
  let channels = 0;
  for (const c of broker.connections) {
    if (c.vhost === null || !visible.has(c.vhost.name)) continue;
    if (!monitor && c.user?.name !== ctx.user.name) continue;
    connections++;
    channels += c.channels.size;
  }
  const history = stats.historySamples();
  const last = history[history.length - 1];
  const prev = history[history.length - 2];
  const dt =
    last !== undefined && prev !== undefined ? (last.timestamp - prev.timestamp) / 1000 : 0;
  const depthRate = (k: 'messages_ready' | 'messages_unacknowledged'): number =>
    dt > 0 ? (last![k] - prev![k]) / dt : 0;
  const queueTotals: Record<string, unknown> = {};
  withRate(
    queueTotals,
    'messages',
    ready + unacked,
    depthRate('messages_ready') + depthRate('messages_unacknowledged'),
  );
  withRate(queueTotals, 'messages_ready', ready, depthRate('messages_ready'));
  withRate(queueTotals, 'messages_unacknowledged', unacked, depthRate('messages_unacknowledged'));
  const node = nodeName(broker);
  return {
    management_version: VERSION,
    rates_mode: 'basic',
    sample_retention_policies: { global: [600], basic: [600], detailed: [600] },
    exchange_types: EXCHANGE_TYPES,
    product_version: VERSION,
    product_name: 'Warren',
    rabbitmq_version: VERSION,
    cluster_name: node,
    erlang_version: process.version,
    erlang_full_version: `Node.js ${process.version}`,
    disable_stats: false,
    enable_queue_totals: false,
    message_stats: messageStats(counts, rates),
    queue_totals: queueTotals,
    object_totals: { channels, connections, consumers, exchanges, queues },
    statistics_db_event_queue: 0,
    node,
    listeners: listeners(ctx),
    contexts: [
      { node, description: 'Warren Management', path: '/', port: String(serverPort(ctx)) },
    ],
  };
}

function serverPort(ctx: Context): number {
  return ctx.req.socket.localPort ?? 0;
}

function listeners(ctx: Context): Record<string, unknown>[] {
  const node = nodeName(ctx.broker);
  const out: Record<string, unknown>[] = [];
  if (ctx.broker.config.port !== null) {
    out.push({
      node,
      protocol: 'amqp',
      ip_address: ctx.broker.config.host ?? '::',
      port: ctx.broker.port,
      socket_opts: { nodelay: true },
    });
  }
  out.push({
    node,
    protocol: 'http',
    ip_address: ctx.req.socket.localAddress ?? '::',
    port: serverPort(ctx),
    socket_opts: { port: serverPort(ctx) },
  });
  return out;
}

function node(ctx: Context): Record<string, unknown> {
  const { broker } = ctx;
  const r = resources(broker);
  const name = nodeName(broker);
  let channels = 0;
  for (const c of broker.connections) channels += c.channels.size;
  return {
    name,
    type: 'disc',
    running: true,
    os_pid: String(process.pid),
    uptime: Date.now() - broker.startedAt,
    processors: availableParallelism(),
    rates_mode: 'basic',
    mem_used: r.memUsed,
    mem_limit: r.memLimit,
    mem_alarm: r.memUsed > r.memLimit,
    mem_calculation_strategy: 'rss',
    disk_free: r.diskFree,
    disk_free_limit: DISK_FREE_LIMIT,
    disk_free_alarm: r.diskFree > 0 && r.diskFree < DISK_FREE_LIMIT,
    fd_used: r.fdUsed,
    sockets_used: broker.connections.size,
    db_dir: broker.config.dataDir === null ? null : resolve(broker.config.dataDir),
    config_files: [],
    log_files: ['<stdout>'],
    enabled_plugins: [],
    partitions: [],
    applications: [{ name: 'warren', description: 'Warren message broker', version: VERSION }],
    exchange_types: EXCHANGE_TYPES,
    auth_mechanisms: AUTH_MECHANISMS,
    contexts: [{ description: 'Warren Management', path: '/', port: String(serverPort(ctx)) }],
    warren_connections: broker.connections.size,
    warren_channels: channels,
  };
}

function findNode(ctx: Context): unknown {
  if (ctx.params.name !== nodeName(ctx.broker)) throw httpErrors.notFound();
  return node(ctx);
}

function healthAlarms(ctx: Context): unknown {
  const list = alarms(ctx.broker);
  if (list.length === 0) return { status: 'ok' };
  return new Reply(503, {
    status: 'failed',
    reason: 'resource alarm(s) in effect in the cluster',
    alarms: list,
  });
}

/** Declare a queue, publish to it and get the message back: the broker core works end to end. */
function aliveness(ctx: Context): unknown {
  const vhost = vhostFor(ctx, ctx.params.vhost!);
  requirePermission(ctx, vhost.name, 'configure', 'aliveness-test');
  const { queue } = vhost.declareQueue(
    'aliveness-test',
    { passive: false, durable: false, exclusive: false, autoDelete: false, arguments: {} },
    { id: -1 },
  );
  queue.publish(Message.create('', 'aliveness-test', {}, Buffer.from('test_message')), Date.now());
  const entry = queue.shift(true);
  if (entry === undefined || entry.message.body.toString() !== 'test_message') {
    return new Reply(503, { status: 'failed', reason: 'aliveness test message did not come back' });
  }
  return { status: 'ok' };
}

function history(ctx: Context): unknown {
  return {
    interval: ctx.stats.intervalMs / 1000,
    samples: ctx.stats.historySamples().map((s) => ({
      ...s,
      publish: round(s.publish),
      deliver_get: round(s.deliver_get),
      ack: round(s.ack),
      confirm: round(s.confirm),
    })),
  };
}

export function registerOverview(r: Router): void {
  r.get('/api/overview', 'management', overview);
  r.get('/api/cluster-name', 'management', (ctx) => ({ name: nodeName(ctx.broker) }));
  r.get('/api/nodes', 'monitoring', (ctx) => [node(ctx)]);
  r.get('/api/nodes/:name', 'monitoring', findNode);
  r.get('/api/extensions', 'management', () => []);
  r.get('/api/whoami', 'management', (ctx) => ({ name: ctx.user.name, tags: ctx.user.tags }));
  r.get('/api/health/checks/alarms', 'management', healthAlarms);
  r.get('/api/health/checks/local-alarms', 'management', healthAlarms);
  r.get('/api/aliveness-test/:vhost', 'management', aliveness);
  r.get('/api/warren/history', 'management', history);
}
