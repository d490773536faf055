import type { Exchange, VirtualHost } from '../../broker/index.js';
import { Message } from '../../broker/index.js';
import type { Queue } from '../../broker/index.js';
import type { Context } from '../context.js';
import { requirePermission, vhostFor, visibleVhosts } from '../context.js';
import { jsonToProperties, jsonToTable, listing, tableToJson, withRate } from '../format.js';
import { Reply, httpErrors, optBoolean, optObject, optString } from '../http.js';
import type { Router } from '../router.js';
import { bindingJson } from './bindings.js';
import { sortKeys } from './overview.js';

/** The default exchange is "" in AMQP and "amq.default" in management paths. */
export function exchangeParam(name: string): string {
  return name === 'amq.default' ? '' : name;
}

export function exchangeJson(ctx: Context, ex: Exchange): Record<string, unknown> {
  const rates = ctx.stats.exchangeRates(ex);
  const stats: Record<string, unknown> = {};
  withRate(stats, 'publish_in', ex.stats.publishIn, rates[0]!);
  withRate(stats, 'publish_out', ex.stats.publishOut, rates[1]!);
  return sortKeys({
    arguments: tableToJson(ex.arguments),
    auto_delete: ex.autoDelete,
    durable: ex.durable,
    internal: ex.internal,
    message_stats: stats,
    name: ex.name,
    type: ex.type,
    user_who_performed_action: ex.name === '' || ex.name.startsWith('amq.') ? 'rmq-internal' : '',
    vhost: ex.vhost,
  });
}

function findExchange(ctx: Context): { vhost: VirtualHost; ex: Exchange } {
  const vhost = vhostFor(ctx, ctx.params.vhost!);
  const ex = vhost.exchanges.get(exchangeParam(ctx.params.name!));
  if (ex === undefined) throw httpErrors.notFound();
  return { vhost, ex };
}

function listExchanges(ctx: Context): unknown {
  const all: Exchange[] = [];
  for (const v of visibleVhosts(ctx)) for (const ex of v.exchanges.values()) all.push(ex);
  return listing(
    all,
    ctx.query,
    (ex) => exchangeJson(ctx, ex),
    (ex) => ex.name,
  );
}

async function declareExchange(ctx: Context): Promise<Reply> {
  const vhost = vhostFor(ctx, ctx.params.vhost!);
  const name = exchangeParam(ctx.params.name!);
  const body = await ctx.body();
  requirePermission(ctx, vhost.name, 'configure', name);
  const existed = vhost.exchanges.has(name);
  vhost.declareExchange(name, optString(body, 'type') ?? 'direct', {
    passive: false,
    durable: optBoolean(body, 'durable') ?? true,
    autoDelete: optBoolean(body, 'auto_delete') ?? false,
    internal: optBoolean(body, 'internal') ?? false,
    arguments: jsonToTable(body.arguments, 'arguments'),
  });
  return existed ? Reply.noContent() : Reply.created();
}

function deleteExchange(ctx: Context): Reply {
  const { vhost, ex } = findExchange(ctx);
  requirePermission(ctx, vhost.name, 'configure', ex.name);
  vhost.deleteExchange(ex.name, ctx.query.get('if-unused') === 'true');
  return Reply.noContent();
}

/**
 * Publish one message, routed exactly as basic.publish routes it (exchange-to-exchange bindings,
 * alternate exchanges). Answers `{"routed": bool}` like RabbitMQ.
 */
async function publish(ctx: Context): Promise<unknown> {
  const vhost = vhostFor(ctx, ctx.params.vhost!);
  const name = exchangeParam(ctx.params.name!);
  const body = await ctx.body();
  const routingKey = optString(body, 'routing_key');
  const payload = optString(body, 'payload');
  const encoding = optString(body, 'payload_encoding') ?? 'string';
  if (routingKey === undefined) throw httpErrors.badRequest("'routing_key' is required");
  if (payload === undefined) throw httpErrors.badRequest("'payload' is required");
  if (encoding !== 'string' && encoding !== 'base64') {
    throw httpErrors.badRequest("'payload_encoding' must be 'string' or 'base64'");
  }
  const properties = jsonToProperties(optObject(body, 'properties') ?? {});
  if (properties.userId !== undefined && properties.userId !== ctx.user.name) {
    throw httpErrors.badRequest(
      `user_id property set to '${properties.userId}' but authenticated user was '${ctx.user.name}'`,
    );
  }
  requirePermission(ctx, vhost.name, 'write', name);
  const ex = vhost.exchanges.get(name);
  if (ex === undefined) {
    throw httpErrors.badRequest(`404 NOT_FOUND - no exchange '${name}' in vhost '${vhost.name}'`);
  }
  if (ex.internal) {
    throw httpErrors.badRequest(`cannot publish to internal exchange '${name}'`);
  }
  const bytes = encoding === 'base64' ? Buffer.from(payload, 'base64') : Buffer.from(payload);
  if (bytes.length > ctx.broker.config.maxMessageSize) {
    throw httpErrors.badRequest(
      `message size ${bytes.length} is larger than the configured maximum of ${ctx.broker.config.maxMessageSize} bytes`,
    );
  }
  const message = Message.create(name, routingKey, properties, bytes);
  const out: Queue[] = [];
  ex.stats.publishIn++;
  vhost.route(ex, message, routingKey, out);
  const now = Date.now();
  for (const q of out) q.publish(message, now);
  ex.stats.publishOut += out.length;
  return { routed: out.length > 0 };
}

function exchangeBindings(ctx: Context, side: 'source' | 'destination'): unknown {
  const { ex } = findExchange(ctx);
  const list = side === 'source' ? [...ex.bindings.values()] : [...ex.inbound];
  return list.map(bindingJson);
}

export function registerExchanges(r: Router): void {
  r.get('/api/exchanges', 'management', listExchanges);
  r.get('/api/exchanges/:vhost', 'management', listExchanges);
  r.get('/api/exchanges/:vhost/:name', 'management', (ctx) => ({
    ...exchangeJson(ctx, findExchange(ctx).ex),
    incoming: [],
    outgoing: [],
  }));
  r.put('/api/exchanges/:vhost/:name', 'management', declareExchange);
  r.delete('/api/exchanges/:vhost/:name', 'management', deleteExchange);
  r.post('/api/exchanges/:vhost/:name/publish', 'management', publish);
  r.get('/api/exchanges/:vhost/:name/bindings/source', 'management', (ctx) =>
    exchangeBindings(ctx, 'source'),
  );
  r.get('/api/exchanges/:vhost/:name/bindings/destination', 'management', (ctx) =>
    exchangeBindings(ctx, 'destination'),
  );
}
