import type { Broker, Permission, User } from '../../broker/index.js';
import { HASHING_ALGORITHM, hashPassword } from '../../broker/users.js';
import type { Context } from '../context.js';
import { canSeeVhost, vhostFor } from '../context.js';
import { listing, withRate } from '../format.js';
import { Reply, httpErrors, optString } from '../http.js';
import type { Router } from '../router.js';
import { GLOBAL_COUNTERS } from '../stats.js';
import { messageStats, nodeName, sortKeys } from './overview.js';

/** Vhost descriptions and tags: management metadata the broker core has no use for. */
export interface VhostMetadata {
  description: string;
  tags: string[];
}
const metadata = new WeakMap<Broker, Map<string, VhostMetadata>>();

export function vhostMetadata(broker: Broker, name: string): VhostMetadata {
  return (
    metadata.get(broker)?.get(name) ?? {
      description: name === '/' ? 'Default virtual host' : '',
      tags: [],
    }
  );
}

export function setVhostMetadata(broker: Broker, name: string, m: VhostMetadata): void {
  let perBroker = metadata.get(broker);
  if (perBroker === undefined) {
    perBroker = new Map();
    metadata.set(broker, perBroker);
  }
  perBroker.set(name, m);
}

// ---------------------------------------------------------------- vhosts

function vhostJson(ctx: Context, name: string): Record<string, unknown> {
  const { broker, stats } = ctx;
  const depth = stats.depths(name);
  let recv = 0;
  let send = 0;
  let recvRate = 0;
  let sendRate = 0;
  for (const c of broker.connections) {
    if (c.vhost?.name !== name) continue;
    recv += c.stats.recvOct;
    send += c.stats.sendOct;
    const r = stats.connectionRates(c);
    recvRate += r[0]!;
    sendRate += r[1]!;
  }
  const meta = vhostMetadata(broker, name);
  const out: Record<string, unknown> = {
    cluster_state: { [nodeName(broker)]: 'running' },
    default_queue_type: 'classic',
    description: meta.description,
    message_stats: messageStats(
      stats.totals().get(name) ?? new Float64Array(GLOBAL_COUNTERS.length),
      stats.rates(name),
    ),
    metadata: { description: meta.description, tags: meta.tags },
    name,
    tags: meta.tags,
    tracing: false,
  };
  withRate(out, 'messages', depth.ready + depth.unacked, 0);
  withRate(out, 'messages_ready', depth.ready, 0);
  withRate(out, 'messages_unacknowledged', depth.unacked, 0);
  withRate(out, 'recv_oct', recv, recvRate);
  withRate(out, 'send_oct', send, sendRate);
  return sortKeys(out);
}

function tagList(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v) && v.every((t) => typeof t === 'string')) {
    return v.map((t) => t.trim()).filter((t) => t !== '');
  }
  if (typeof v === 'string') {
    return v
      .split(',')
      .map((t) => t.trim())
      .filter((t) => t !== '');
  }
  throw httpErrors.badRequest("'tags' must be a comma-separated string or an array of strings");
}

async function putVhost(ctx: Context): Promise<Reply> {
  const name = ctx.params.vhost!;
  if (name === '') throw httpErrors.badRequest('a vhost name cannot be empty');
  const body = await ctx.body();
  const existed = ctx.broker.vhosts.has(name);
  ctx.broker.addVhost(name);
  const old = vhostMetadata(ctx.broker, name);
  setVhostMetadata(ctx.broker, name, {
    description: optString(body, 'description') ?? old.description,
    tags: body.tags === undefined ? old.tags : tagList(body.tags),
  });
  return existed ? Reply.noContent() : Reply.created();
}

/**
 * Delete a vhost: close its connections, delete its queues and exchanges through the vhost's own
 * methods (so whatever observes them, like the store, sees each go), then forget it.
 */
export function deleteVhost(broker: Broker, name: string): void {
  if (!broker.deleteVhost(name)) throw httpErrors.notFound();
  metadata.get(broker)?.delete(name);
}

// ---------------------------------------------------------------- users

export function userJson(u: User): Record<string, unknown> {
  return {
    name: u.name,
    password_hash: u.passwordHash,
    hashing_algorithm: HASHING_ALGORITHM,
    tags: u.tags,
    limits: {},
  };
}

/** Create or update a user from `{password | password_hash, hashing_algorithm, tags}`. */
export function applyUser(broker: Broker, name: string, body: Record<string, unknown>): boolean {
  if (name === '') throw httpErrors.badRequest('a user name cannot be empty');
  const password = optString(body, 'password');
  const hash = optString(body, 'password_hash');
  const algorithm = optString(body, 'hashing_algorithm');
  if (algorithm !== undefined && algorithm !== HASHING_ALGORITHM) {
    throw httpErrors.badRequest(
      `hashing_algorithm '${algorithm}' is not supported; Warren uses ${HASHING_ALGORITHM}`,
    );
  }
  if (hash !== undefined && hash !== '' && Buffer.from(hash, 'base64').length !== 36) {
    throw httpErrors.badRequest(`password_hash of user '${name}' is not a salted SHA-256 hash`);
  }
  const existing = broker.users.getUser(name);
  const passwordHash =
    password !== undefined ? hashPassword(password) : (hash ?? existing?.passwordHash ?? '');
  broker.users.putUser({ name, passwordHash, tags: tagList(body.tags) });
  return existing === undefined;
}

async function putUser(ctx: Context): Promise<Reply> {
  const created = applyUser(ctx.broker, ctx.params.user!, await ctx.body());
  return created ? Reply.created() : Reply.noContent();
}

function findUser(ctx: Context): User {
  const u = ctx.broker.users.getUser(ctx.params.user!);
  if (u === undefined) throw httpErrors.notFound();
  return u;
}

// ---------------------------------------------------------------- permissions

export function permissionJson(vhost: string, user: string, p: Permission): unknown {
  return { user, vhost, configure: p.configure, write: p.write, read: p.read };
}

/** Permissions from a body; each expression must be present and a valid regular expression. */
export function parsePermission(body: Record<string, unknown>): Permission {
  const missing = ['configure', 'write', 'read'].filter((k) => typeof body[k] !== 'string');
  if (missing.length > 0) {
    throw httpErrors.badRequest(`missing or non-string: ${missing.join(', ')}`);
  }
  const p = { configure: body.configure, write: body.write, read: body.read } as Permission;
  for (const [k, expr] of Object.entries(p)) {
    try {
      new RegExp(expr as string);
    } catch {
      throw httpErrors.badRequest(`${k} is not a valid regular expression: '${String(expr)}'`);
    }
  }
  return p;
}

function listPermissions(ctx: Context, filter: (vhost: string, user: string) => boolean): unknown {
  return ctx.broker.users
    .listPermissions()
    .filter((p) => filter(p.vhost, p.user))
    .map((p) => permissionJson(p.vhost, p.user, p.permission));
}

async function putPermission(ctx: Context): Promise<Reply> {
  const { vhost, user } = ctx.params as { vhost: string; user: string };
  if (!ctx.broker.vhosts.has(vhost)) throw httpErrors.notFound();
  if (ctx.broker.users.getUser(user) === undefined) throw httpErrors.notFound();
  const p = parsePermission(await ctx.body());
  const existed = ctx.broker.users.getPermission(vhost, user) !== undefined;
  ctx.broker.users.setPermission(vhost, user, p);
  return existed ? Reply.noContent() : Reply.created();
}

export function registerAccess(r: Router): void {
  r.get('/api/vhosts', 'management', (ctx) =>
    listing(
      [...ctx.broker.vhosts.keys()]
        .filter((v) => canSeeVhost(ctx, v))
        .map((v) => vhostJson(ctx, v)),
      ctx.query,
    ),
  );
  r.get('/api/vhosts/:vhost', 'management', (ctx) =>
    vhostJson(ctx, vhostFor(ctx, ctx.params.vhost!).name),
  );
  r.put('/api/vhosts/:vhost', 'administrator', putVhost);
  r.delete('/api/vhosts/:vhost', 'administrator', (ctx) => {
    deleteVhost(ctx.broker, ctx.params.vhost!);
    return Reply.noContent();
  });
  r.get('/api/vhosts/:vhost/permissions', 'administrator', (ctx) => {
    const name = vhostFor(ctx, ctx.params.vhost!).name;
    return listPermissions(ctx, (v) => v === name);
  });

  r.get('/api/users', 'administrator', (ctx) =>
    listing(ctx.broker.users.listUsers().map(userJson), ctx.query),
  );
  r.get('/api/users/:user', 'administrator', (ctx) => userJson(findUser(ctx)));
  r.put('/api/users/:user', 'administrator', putUser);
  r.delete('/api/users/:user', 'administrator', (ctx) => {
    const u = findUser(ctx);
    ctx.broker.users.deleteUser(u.name);
    return Reply.noContent();
  });
  r.get('/api/users/:user/permissions', 'administrator', (ctx) => {
    const u = findUser(ctx);
    return listPermissions(ctx, (_v, user) => user === u.name);
  });

  r.get('/api/permissions', 'administrator', (ctx) => listPermissions(ctx, () => true));
  r.get('/api/permissions/:vhost/:user', 'administrator', (ctx) => {
    const { vhost, user } = ctx.params as { vhost: string; user: string };
    const p = ctx.broker.users.getPermission(vhost, user);
    if (p === undefined) throw httpErrors.notFound();
    return permissionJson(vhost, user, p);
  });
  r.put('/api/permissions/:vhost/:user', 'administrator', putPermission);
  r.delete('/api/permissions/:vhost/:user', 'administrator', (ctx) => {
    const { vhost, user } = ctx.params as { vhost: string; user: string };
    if (ctx.broker.users.getPermission(vhost, user) === undefined) throw httpErrors.notFound();
    ctx.broker.users.clearPermission(vhost, user);
    return Reply.noContent();
  });
}
