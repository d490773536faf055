import type { Broker, VirtualHost } from '../../broker/index.js';
import { VERSION } from '../../version.js';
import type { Context } from '../context.js';
import { vhostFor } from '../context.js';
import { jsonToTable, tableToJson } from '../format.js';
import { Reply, httpErrors } from '../http.js';
import type { Router } from '../router.js';
import {
  applyUser,
  parsePermission,
  permissionJson,
  setVhostMetadata,
  userJson,
  vhostMetadata,
} from './access.js';

/** RabbitMQ's definitions document (the parts Warren has: no policies, parameters or limits). */
export interface Definitions {
  rabbit_version?: string;
  users?: unknown[];
  vhosts?: unknown[];
  permissions?: unknown[];
  queues?: unknown[];
  exchanges?: unknown[];
  bindings?: unknown[];
  [key: string]: unknown;
}

function isSystemExchange(name: string): boolean {
  return name === '' || name.startsWith('amq.');
}

/** Queues, exchanges and bindings of one vhost; `withVhost` adds the "vhost" field to each. */
function topology(v: VirtualHost, withVhost: boolean): Record<string, unknown[]> {
  const tag = (o: Record<string, unknown>): Record<string, unknown> =>
    withVhost ? { name: o.name, vhost: v.name, ...o } : o;
  const queues: unknown[] = [];
  for (const q of v.queues.values()) {
    // Exclusive queues die with their connection: they are not definitions (nor in RabbitMQ).
    if (q.exclusive) continue;
    queues.push(
      tag({
        name: q.name,
        durable: q.durable,
        auto_delete: q.autoDelete,
        arguments: tableToJson(q.arguments),
      }),
    );
  }
  const exchanges: unknown[] = [];
  const bindings: unknown[] = [];
  for (const ex of v.exchanges.values()) {
    if (!isSystemExchange(ex.name)) {
      exchanges.push(
        tag({
          name: ex.name,
          type: ex.type,
          durable: ex.durable,
          auto_delete: ex.autoDelete,
          internal: ex.internal,
          arguments: tableToJson(ex.arguments),
        }),
      );
    }
    for (const b of ex.bindings.values()) {
      if (b.destinationKind === 'queue' && (b.destination as { exclusive?: boolean }).exclusive) {
        continue;
      }
      const row: Record<string, unknown> = {
        source: b.source.name,
        destination: b.destination.name,
        destination_type: b.destinationKind,
        routing_key: b.routingKey,
        arguments: tableToJson(b.arguments),
      };
      bindings.push(withVhost ? { source: b.source.name, vhost: v.name, ...row } : row);
    }
  }
  return { queues, exchanges, bindings };
}

export function exportDefinitions(broker: Broker): Definitions {
  const vhosts = [...broker.vhosts.values()];
  const per = vhosts.map((v) => topology(v, true));
  return {
    rabbit_version: VERSION,
    rabbitmq_version: VERSION,
    product_name: 'Warren',
    product_version: VERSION,
    users: broker.users.listUsers().map(userJson),
    vhosts: vhosts.map((v) => {
      const meta = vhostMetadata(broker, v.name);
      return {
        name: v.name,
        description: meta.description,
        tags: meta.tags,
        metadata: { description: meta.description, tags: meta.tags },
      };
    }),
    permissions: broker.users
      .listPermissions()
      .map((p) => permissionJson(p.vhost, p.user, p.permission)),
    topic_permissions: [],
    parameters: [],
    global_parameters: [],
    policies: [],
    queues: per.flatMap((t) => t.queues!),
    exchanges: per.flatMap((t) => t.exchanges!),
    bindings: per.flatMap((t) => t.bindings!),
  };
}

function exportVhost(broker: Broker, v: VirtualHost): Definitions {
  return {
    rabbit_version: VERSION,
    rabbitmq_version: VERSION,
    product_name: 'Warren',
    product_version: VERSION,
    parameters: [],
    policies: [],
    ...topology(v, false),
  };
}

function list(defs: Definitions, key: string): Record<string, unknown>[] {
  const v = defs[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => x !== null && typeof x === 'object')) {
    throw httpErrors.badRequest(`definitions: '${key}' must be an array of objects`);
  }
  return v as Record<string, unknown>[];
}

function str(o: Record<string, unknown>, key: string, what: string, fallback?: string): string {
  const v = o[key] ?? fallback;
  if (typeof v !== 'string') {
    throw httpErrors.badRequest(`definitions: ${what} needs a string '${key}'`);
  }
  return v;
}

function bool(o: Record<string, unknown>, key: string, fallback: boolean): boolean {
  const v = o[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw httpErrors.badRequest(`definitions: '${key}' must be boolean`);
  return v;
}

/**
 * Import a definitions document through the broker's public methods (addVhost, putUser,
 * setPermission, declareExchange, declareQueue, bind*), so persistence and every other observer
 * of those methods see the changes as if a client had made them. `onlyVhost` imports a
 * per-vhost document (no users, vhosts or permissions; objects carry no vhost field).
 */
export function importDefinitions(broker: Broker, defs: Definitions, onlyVhost?: string): void {
  if (onlyVhost === undefined) {
    for (const u of list(defs, 'users')) applyUser(broker, str(u, 'name', 'a user'), u);
    for (const v of list(defs, 'vhosts')) {
      const name = str(v, 'name', 'a vhost');
      broker.addVhost(name);
      const meta = (v.metadata ?? {}) as Record<string, unknown>;
      const description = v.description ?? meta.description;
      const tags = v.tags ?? meta.tags;
      if (typeof description === 'string' || Array.isArray(tags)) {
        setVhostMetadata(broker, name, {
          description: typeof description === 'string' ? description : '',
          tags: Array.isArray(tags) ? tags.filter((t): t is string => typeof t === 'string') : [],
        });
      }
    }
    for (const p of list(defs, 'permissions')) {
      const vhost = str(p, 'vhost', 'a permission');
      const user = str(p, 'user', 'a permission');
      if (!broker.vhosts.has(vhost)) {
        throw httpErrors.badRequest(`definitions: permission for unknown vhost '${vhost}'`);
      }
      broker.users.setPermission(vhost, user, parsePermission(p));
    }
  }
  const vhostOf = (o: Record<string, unknown>, what: string): VirtualHost => {
    const name = onlyVhost ?? str(o, 'vhost', what);
    const v = broker.getVhost(name);
    if (v === undefined)
      throw httpErrors.badRequest(`definitions: ${what} in unknown vhost '${name}'`);
    return v;
  };
  for (const e of list(defs, 'exchanges')) {
    const name = str(e, 'name', 'an exchange');
    if (isSystemExchange(name)) continue;
    vhostOf(e, `exchange '${name}'`).declareExchange(
      name,
      str(e, 'type', 'an exchange', 'direct'),
      {
        passive: false,
        durable: bool(e, 'durable', true),
        autoDelete: bool(e, 'auto_delete', false),
        internal: bool(e, 'internal', false),
        arguments: jsonToTable(e.arguments, 'arguments'),
      },
    );
  }
  for (const q of list(defs, 'queues')) {
    const name = str(q, 'name', 'a queue');
    vhostOf(q, `queue '${name}'`).declareQueue(
      name,
      {
        passive: false,
        durable: bool(q, 'durable', true),
        exclusive: false,
        autoDelete: bool(q, 'auto_delete', false),
        arguments: jsonToTable(q.arguments, 'arguments'),
      },
      { id: -1 },
    );
  }
  for (const b of list(defs, 'bindings')) {
    const source = str(b, 'source', 'a binding');
    const dest = str(b, 'destination', 'a binding');
    const v = vhostOf(b, `binding '${source}' -> '${dest}'`);
    const key = str(b, 'routing_key', 'a binding', '');
    const args = jsonToTable(b.arguments, 'arguments');
    const kind = str(b, 'destination_type', 'a binding', 'queue');
    if (kind === 'queue') v.bindQueue(dest, source, key, args);
    else if (kind === 'exchange') v.bindExchange(dest, source, key, args);
    else throw httpErrors.badRequest(`definitions: unknown destination_type '${kind}'`);
  }
}

/** `?download=name` makes browsers save the export as a file, as RabbitMQ's UI link does. */
function asDownload(ctx: Context, body: unknown): unknown {
  const name = ctx.query.get('download');
  if (name === null || name === '') return body;
  const safe = name.replace(/[^\w.-]/g, '_');
  return new Reply(200, body, { 'content-disposition': `attachment; filename="${safe}"` });
}

async function importAll(ctx: Context): Promise<Reply> {
  importDefinitions(ctx.broker, await ctx.body());
  return Reply.noContent();
}

async function importOne(ctx: Context): Promise<Reply> {
  const v = vhostFor(ctx, ctx.params.vhost!);
  importDefinitions(ctx.broker, await ctx.body(), v.name);
  return Reply.noContent();
}

export function registerDefinitions(r: Router): void {
  r.get('/api/definitions', 'administrator', (ctx) =>
    asDownload(ctx, exportDefinitions(ctx.broker)),
  );
  r.post('/api/definitions', 'administrator', importAll);
  r.get('/api/definitions/:vhost', 'administrator', (ctx) =>
    asDownload(ctx, exportVhost(ctx.broker, vhostFor(ctx, ctx.params.vhost!))),
  );
  r.post('/api/definitions/:vhost', 'administrator', importOne);
}
