import { createHash } from 'node:crypto';
import { canonicalArgs } from '../../broker/binding.js';
import type { Binding } from '../../broker/binding.js';
import type { Queue, VirtualHost } from '../../broker/index.js';
import type { FieldTable } from '../../protocol/index.js';
import type { Context } from '../context.js';
import { requirePermission, vhostFor, visibleVhosts } from '../context.js';
import { jsonToTable, listing, tableToJson } from '../format.js';
import { Reply, httpErrors, optString } from '../http.js';
import type { Router } from '../router.js';
import { exchangeParam } from './exchanges.js';

/**
 * A binding's identity in URLs: the quoted routing key, plus `~` and a digest of the arguments
 * when there are any ("~" alone for an empty key without arguments), as RabbitMQ's API does.
 */
export function propertiesKey(routingKey: string, args: FieldTable): string {
  const canon = canonicalArgs(args);
  if (canon === '') return routingKey === '' ? '~' : encodeURIComponent(routingKey);
  const digest = createHash('sha256').update(canon).digest('base64url').slice(0, 22);
  return `${encodeURIComponent(routingKey)}~${digest}`;
}

export function bindingJson(b: Binding): Record<string, unknown> {
  return {
    source: b.source.name,
    vhost: b.source.vhost,
    destination: b.destination.name,
    destination_type: b.destinationKind,
    routing_key: b.routingKey,
    arguments: tableToJson(b.arguments),
    properties_key: propertiesKey(b.routingKey, b.arguments),
  };
}

/** Every queue is bound to the default exchange by its name; RabbitMQ lists that binding too. */
export function defaultBindingJson(q: Queue): Record<string, unknown> {
  return {
    source: '',
    vhost: q.vhost,
    destination: q.name,
    destination_type: 'queue',
    routing_key: q.name,
    arguments: {},
    properties_key: propertiesKey(q.name, {}),
  };
}

export function vhostBindings(v: VirtualHost): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  for (const q of v.queues.values()) rows.push(defaultBindingJson(q));
  for (const ex of v.exchanges.values()) {
    for (const b of ex.bindings.values()) rows.push(bindingJson(b));
  }
  return rows;
}

export function queueBindings(q: Queue): Record<string, unknown>[] {
  return [defaultBindingJson(q), ...[...q.bindings].map(bindingJson)];
}

type Kind = 'queue' | 'exchange';

function ends(ctx: Context, kind: Kind): { vhost: VirtualHost; source: string; dest: string } {
  const vhost = vhostFor(ctx, ctx.params.vhost!);
  const source = exchangeParam(ctx.params.source!);
  const dest = kind === 'queue' ? ctx.params.dest! : exchangeParam(ctx.params.dest!);
  if (!vhost.exchanges.has(source)) throw httpErrors.notFound();
  if (kind === 'queue' ? !vhost.queues.has(dest) : !vhost.exchanges.has(dest)) {
    throw httpErrors.notFound();
  }
  return { vhost, source, dest };
}

function between(ctx: Context, kind: Kind): Record<string, unknown>[] {
  const { vhost, source, dest } = ends(ctx, kind);
  const rows: Record<string, unknown>[] = [];
  if (source === '' && kind === 'queue') rows.push(defaultBindingJson(vhost.queues.get(dest)!));
  for (const b of vhost.exchanges.get(source)!.bindings.values()) {
    if (b.destinationKind === kind && b.destination.name === dest) rows.push(bindingJson(b));
  }
  return rows;
}

async function create(ctx: Context, kind: Kind): Promise<Reply> {
  const { vhost, source, dest } = ends(ctx, kind);
  const body = await ctx.body();
  const routingKey = optString(body, 'routing_key') ?? '';
  const args = jsonToTable(body.arguments, 'arguments');
  // queue.bind / exchange.bind rules: write on the destination, read on the source.
  requirePermission(ctx, vhost.name, 'write', dest);
  requirePermission(ctx, vhost.name, 'read', source);
  if (kind === 'queue') vhost.bindQueue(dest, source, routingKey, args);
  else vhost.bindExchange(dest, source, routingKey, args);
  return Reply.created(propertiesKey(routingKey, args));
}

function findOne(ctx: Context, kind: Kind): Binding {
  const { vhost, source, dest } = ends(ctx, kind);
  for (const b of vhost.exchanges.get(source)!.bindings.values()) {
    if (
      b.destinationKind === kind &&
      b.destination.name === dest &&
      propertiesKey(b.routingKey, b.arguments) === ctx.params.props
    ) {
      return b;
    }
  }
  throw httpErrors.notFound();
}

function remove(ctx: Context, kind: Kind): Reply {
  const b = findOne(ctx, kind);
  const vhost = vhostFor(ctx, ctx.params.vhost!);
  requirePermission(ctx, vhost.name, 'write', b.destination.name);
  requirePermission(ctx, vhost.name, 'read', b.source.name);
  if (kind === 'queue') {
    vhost.unbindQueue(b.destination.name, b.source.name, b.routingKey, b.arguments);
  } else {
    vhost.unbindExchange(b.destination.name, b.source.name, b.routingKey, b.arguments);
  }
  return Reply.noContent();
}

export function registerBindings(r: Router): void {
  const all = (ctx: Context): unknown =>
    listing(visibleVhosts(ctx).flatMap(vhostBindings), ctx.query);
  r.get('/api/bindings', 'management', all);
  r.get('/api/bindings/:vhost', 'management', all);
  for (const [letter, kind] of [
    ['q', 'queue'],
    ['e', 'exchange'],
  ] as const) {
    const base = `/api/bindings/:vhost/e/:source/${letter}/:dest`;
    r.get(base, 'management', (ctx) => between(ctx, kind));
    r.post(base, 'management', (ctx) => create(ctx, kind));
    r.get(`${base}/:props`, 'management', (ctx) => bindingJson(findOne(ctx, kind)));
    r.delete(`${base}/:props`, 'management', (ctx) => remove(ctx, kind));
  }
}
