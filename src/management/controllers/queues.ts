import type { Queue, VirtualHost } from '../../broker/index.js';
import { BasicPropertyFlag } from '../../protocol/index.js';
import type { Context } from '../context.js';
import { requirePermission, vhostFor, visibleVhosts } from '../context.js';
import {
  isPrintableUtf8,
  jsonToTable,
  listing,
  propertiesToJson,
  tableToJson,
  withRate,
} from '../format.js';
import { Reply, httpErrors, optBoolean, optInteger, optString } from '../http.js';
import type { Router } from '../router.js';
import { QUEUE_COUNTERS, queueCounters } from '../stats.js';
import { queueBindings } from './bindings.js';
import { listConsumers } from './connections.js';
import { sortKeys } from './overview.js';

type Entry = ReturnType<Queue['peek']>[number];

/**
 * Bytes a queued message costs beyond its body: the entry, the message object and its header.
 * An estimate (Node has no per-object accounting), used for `memory` and the metrics.
 */
export const ENTRY_OVERHEAD = 200;
/** What an empty queue costs: its maps, ring buffer and stats. */
export const QUEUE_OVERHEAD = 2048;

/** The HTTP API's stand-in for a connection: it owns no exclusive queue. */
const NO_OWNER = { id: -1 };

export function queueMemory(q: Queue, unackedBytes: number): number {
  return (
    QUEUE_OVERHEAD +
    q.readyBytes +
    unackedBytes +
    (q.messageCount + q.unackedCount) * ENTRY_OVERHEAD
  );
}

export function queueJson(ctx: Context, q: Queue): Record<string, unknown> {
  const counters = queueCounters(q, new Float64Array(QUEUE_COUNTERS.length));
  const rates = ctx.stats.queueRates(q);
  const stats: Record<string, unknown> = {};
  for (let i = 0; i < 8; i++) withRate(stats, QUEUE_COUNTERS[i]!, counters[i]!, rates[i]!);
  const dg = (a: Float64Array): number => a[1]! + a[2]! + a[3]! + a[4]!;
  withRate(stats, 'deliver_get', dg(counters), dg(rates));
  const unackedBytes = ctx.stats.queueUnackedBytes(q);
  const ready = q.messageCount;
  const unacked = q.unackedCount;
  const consumers = q.consumerCount;
  // No time-weighted sampling: a queue with consumers and nothing waiting delivers at once.
  const capacity = consumers > 0 && ready === 0 ? 1 : 0;
  const out: Record<string, unknown> = {
    arguments: tableToJson(q.arguments),
    auto_delete: q.autoDelete,
    consumer_capacity: capacity,
    consumer_utilisation: capacity,
    consumers,
    durable: q.durable,
    effective_policy_definition: {},
    exclusive: q.exclusive,
    exclusive_consumer_tag: q.exclusiveConsumer?.tag ?? null,
    head_message_timestamp: headTimestamp(q),
    memory: queueMemory(q, unackedBytes),
    message_bytes: q.readyBytes + unackedBytes,
    message_bytes_paged_out: 0,
    message_bytes_ram: q.readyBytes + unackedBytes,
    message_bytes_ready: q.readyBytes,
    message_bytes_unacknowledged: unackedBytes,
    message_stats: sortKeys(stats),
    messages_paged_out: 0,
    messages_ram: ready + unacked,
    messages_ready_ram: ready,
    messages_unacknowledged_ram: unacked,
    name: q.name,
    node: ctx.node,
    operator_policy: null,
    policy: null,
    recoverable_slaves: null,
    single_active_consumer_tag: null,
    state: 'running',
    type: 'classic',
    vhost: q.vhost,
  };
  withRate(out, 'messages', ready + unacked, rates[8]!);
  withRate(out, 'messages_ready', ready, rates[9]!);
  withRate(out, 'messages_unacknowledged', unacked, rates[10]!);
  return sortKeys(out);
}

function headTimestamp(q: Queue): number | null {
  const head = q.peek(1)[0];
  if (head === undefined || (head.message.propertyFlags & BasicPropertyFlag.Timestamp) === 0) {
    return null;
  }
  return head.message.properties.timestamp ?? null;
}

function findQueue(ctx: Context): { vhost: VirtualHost; q: Queue } {
  const vhost = vhostFor(ctx, ctx.params.vhost!);
  const q = vhost.queues.get(ctx.params.name!);
  if (q === undefined) throw httpErrors.notFound();
  return { vhost, q };
}

function listQueues(ctx: Context): unknown {
  const queues: Queue[] = [];
  for (const v of visibleVhosts(ctx)) for (const q of v.queues.values()) queues.push(q);
  return listing(
    queues,
    ctx.query,
    (q) => queueJson(ctx, q),
    (q) => q.name,
  );
}

function queueDetail(ctx: Context): unknown {
  const { q } = findQueue(ctx);
  return sortKeys({
    ...queueJson(ctx, q),
    consumer_details: listConsumers(ctx, (k) => k.queue === q),
    deliveries: [],
    incoming: [],
  });
}

async function declareQueue(ctx: Context): Promise<Reply> {
  const vhost = vhostFor(ctx, ctx.params.vhost!);
  const name = ctx.params.name!;
  const body = await ctx.body();
  if (optBoolean(body, 'exclusive') === true) {
    throw httpErrors.badRequest(
      'an exclusive queue belongs to the AMQP connection that declares it; declare it over AMQP',
    );
  }
  requirePermission(ctx, vhost.name, 'configure', name);
  const { created } = vhost.declareQueue(
    name,
    {
      passive: false,
      durable: optBoolean(body, 'durable') ?? true,
      exclusive: false,
      autoDelete: optBoolean(body, 'auto_delete') ?? false,
      arguments: jsonToTable(body.arguments, 'arguments'),
    },
    NO_OWNER,
  );
  return created ? Reply.created() : Reply.noContent();
}

function deleteQueue(ctx: Context): Reply {
  const { vhost, q } = findQueue(ctx);
  requirePermission(ctx, vhost.name, 'configure', q.name);
  // The operator may delete an exclusive queue, as in RabbitMQ: act as its owner.
  vhost.deleteQueue(
    q.name,
    ctx.query.get('if-unused') === 'true',
    ctx.query.get('if-empty') === 'true',
    q.owner ?? NO_OWNER,
  );
  return Reply.noContent();
}

function purge(ctx: Context): Reply {
  const { vhost, q } = findQueue(ctx);
  requirePermission(ctx, vhost.name, 'read', q.name);
  vhost.checkExclusiveAccess(q, NO_OWNER);
  q.purge();
  return Reply.noContent();
}

interface ReadOptions {
  count: number;
  encoding: 'auto' | 'base64';
  truncate: number | undefined;
}

function readOptions(body: Record<string, unknown>, needCount: boolean): ReadOptions {
  const count = optInteger(body, 'count', 1, 100_000);
  if (count === undefined && needCount) throw httpErrors.badRequest("'count' is required");
  const encoding = optString(body, 'encoding') ?? 'auto';
  if (encoding !== 'auto' && encoding !== 'base64') {
    throw httpErrors.badRequest("'encoding' must be 'auto' or 'base64'");
  }
  return {
    count: count ?? 1,
    encoding,
    truncate: optInteger(body, 'truncate', 0, Number.MAX_SAFE_INTEGER),
  };
}

function messageJson(e: Entry, messageCount: number, o: ReadOptions): Record<string, unknown> {
  const m = e.message;
  // A large body lives on disk: read only what is shown.
  const body = m.bodyBuffer(o.truncate ?? Infinity);
  const asString = o.encoding === 'auto' && isPrintableUtf8(body);
  return {
    payload_bytes: m.bodySize,
    redelivered: e.redelivered,
    exchange: m.exchange,
    routing_key: m.routingKey,
    message_count: messageCount,
    properties: propertiesToJson(m.properties),
    payload: asString ? body.toString('utf8') : body.toString('base64'),
    payload_encoding: asString ? 'string' : 'base64',
  };
}

const ACK_MODES = [
  'ack_requeue_true',
  'ack_requeue_false',
  'reject_requeue_true',
  'reject_requeue_false',
];

/** RabbitMQ's "get messages": take up to `count`, then requeue or drop them per `ackmode`. */
async function getMessages(ctx: Context): Promise<unknown> {
  const { vhost, q } = findQueue(ctx);
  const body = await ctx.body();
  const ackmode = optString(body, 'ackmode');
  if (ackmode === undefined || !ACK_MODES.includes(ackmode)) {
    throw httpErrors.badRequest(`'ackmode' must be one of ${ACK_MODES.join(', ')}`);
  }
  const o = readOptions(body, true);
  requirePermission(ctx, vhost.name, 'read', q.name);
  vhost.checkExclusiveAccess(q, NO_OWNER);
  const taken: Entry[] = [];
  while (taken.length < o.count && q.messageCount > 0) taken.push(q.shift(false)!);
  const left = q.messageCount;
  const out = taken.map((e, i) => messageJson(e, left + taken.length - 1 - i, o));
  if (ackmode.endsWith('requeue_true')) q.requeue(taken);
  else if (ackmode === 'ack_requeue_false') for (const e of taken) q.acked(e);
  // Rejected without requeue: dead-lettered if the queue has a dead-letter exchange.
  else for (const e of taken) q.discard(e, 'rejected');
  return out;
}

/**
 * Browse: the first `count` ready messages, left where they are: not delivered, not requeued,
 * not marked redelivered. RabbitMQ can only get-and-requeue, which reorders and flags them.
 */
async function peek(ctx: Context): Promise<unknown> {
  const { vhost, q } = findQueue(ctx);
  const fromQuery = ctx.req.method === 'GET';
  const body: Record<string, unknown> = fromQuery
    ? Object.fromEntries(ctx.query.entries())
    : await ctx.body();
  const o = readOptions(body, false);
  requirePermission(ctx, vhost.name, 'read', q.name);
  vhost.checkExclusiveAccess(q, NO_OWNER);
  const total = q.messageCount;
  return q.peek(o.count).map((e, i) => ({
    ...messageJson(e, total - 1 - i, o),
    position: i,
  }));
}

export function registerQueues(r: Router): void {
  r.get('/api/queues', 'management', listQueues);
  r.get('/api/queues/:vhost', 'management', listQueues);
  r.get('/api/queues/:vhost/:name', 'management', queueDetail);
  r.put('/api/queues/:vhost/:name', 'management', declareQueue);
  r.delete('/api/queues/:vhost/:name', 'management', deleteQueue);
  r.delete('/api/queues/:vhost/:name/contents', 'management', purge);
  r.post('/api/queues/:vhost/:name/get', 'management', getMessages);
  r.get('/api/queues/:vhost/:name/peek', 'management', peek);
  r.post('/api/queues/:vhost/:name/peek', 'management', peek);
  r.get('/api/queues/:vhost/:name/bindings', 'management', (ctx) =>
    queueBindings(findQueue(ctx).q),
  );
}
