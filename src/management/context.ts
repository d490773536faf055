import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Broker, Permission, User, VirtualHost } from '../broker/index.js';
import { UserTag } from '../broker/index.js';
import { HttpError, httpErrors, readJsonObject } from './http.js';
import type { StatsCollector } from './stats.js';

/** Who may call a route: anyone, any management user, monitoring users, or administrators. */
export type Access = 'none' | 'management' | 'monitoring' | 'administrator';

/** What a handler gets: the request, its decoded path parameters, the broker and the caller. */
export interface Context {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly broker: Broker;
  readonly stats: StatsCollector;
  /** The authenticated user (a placeholder with no tags on routes that need none). */
  readonly user: User;
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** The node name shown in every `node` field. */
  readonly node: string;
  body(): Promise<Record<string, unknown>>;
}

export type Handler = (ctx: Context) => unknown;

export function makeBodyReader(req: IncomingMessage): () => Promise<Record<string, unknown>> {
  let cached: Promise<Record<string, unknown>> | undefined;
  return () => (cached ??= readJsonObject(req));
}

const MANAGEMENT_TAGS: readonly string[] = [
  UserTag.Administrator,
  UserTag.Monitoring,
  UserTag.Management,
  UserTag.PolicyMaker,
];

export function hasManagementTag(user: User): boolean {
  return user.tags.some((t) => MANAGEMENT_TAGS.includes(t));
}

export function isAdministrator(user: User): boolean {
  return user.tags.includes(UserTag.Administrator);
}

/** Administrators and monitoring users see every vhost, connection and channel. */
export function isMonitor(user: User): boolean {
  return isAdministrator(user) || user.tags.includes(UserTag.Monitoring);
}

export function allows(user: User, access: Access): boolean {
  switch (access) {
    case 'none':
      return true;
    case 'management':
      return hasManagementTag(user);
    case 'monitoring':
      return isMonitor(user);
    case 'administrator':
      return isAdministrator(user);
  }
}

/** Whether the caller may see things in this vhost (monitors see all; others need a permission). */
export function canSeeVhost(ctx: Context, vhost: string): boolean {
  return isMonitor(ctx.user) || ctx.broker.users.hasVhostAccess(vhost, ctx.user.name);
}

/** The vhosts the caller can see, optionally only the one named in the path. */
export function visibleVhosts(ctx: Context): VirtualHost[] {
  const name = ctx.params.vhost;
  if (name !== undefined) return [vhostFor(ctx, name)];
  return [...ctx.broker.vhosts.values()].filter((v) => canSeeVhost(ctx, v.name));
}

/** The vhost named in the path: 404 if missing, 401 if the caller may not see it. */
export function vhostFor(ctx: Context, name: string): VirtualHost {
  const v = ctx.broker.getVhost(name);
  if (v === undefined) throw httpErrors.notFound();
  if (!canSeeVhost(ctx, name)) throw httpErrors.forbidden();
  return v;
}

/**
 * The caller must hold `kind` permission on a resource in the vhost, as an AMQP client would:
 * the HTTP API is not a way around permissions, for administrators either (RabbitMQ's rule).
 */
export function requirePermission(
  ctx: Context,
  vhost: string,
  kind: keyof Permission,
  resource: string,
): void {
  if (!ctx.broker.users.permits(vhost, ctx.user.name, kind, resource)) {
    throw new HttpError(
      401,
      'not_authorised',
      `access to '${resource}' in vhost '${vhost}' refused for user '${ctx.user.name}' (needs ${kind} permission)`,
    );
  }
}
