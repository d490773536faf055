import { amqpErrors } from '../../protocol/index.js';
import type { Connection } from '../connection.js';
import type { PermissionKind } from '../users.js';

const KIND_INDEX: Record<PermissionKind, number> = { configure: 0, write: 1, read: 2 };

/**
 * Enforce a user's configure/write/read permission on a resource (403 ACCESS_REFUSED otherwise).
 * Results are cached per connection: permissions change rarely, publishes are many.
 */
export function checkPermission(
  conn: Connection,
  kind: PermissionKind,
  resourceType: 'exchange' | 'queue',
  name: string,
): void {
  const users = conn.host.users;
  if (conn.permissionGeneration !== users.generation) {
    // Permissions changed since these answers were cached.
    for (const m of conn.permissionCache) m.clear();
    conn.permissionGeneration = users.generation;
  }
  const cache = conn.permissionCache[KIND_INDEX[kind] * 2 + (resourceType === 'queue' ? 1 : 0)]!;
  let ok = cache.get(name);
  if (ok === undefined) {
    // RabbitMQ checks the default exchange under the name amq.default.
    const resource = resourceType === 'exchange' && name === '' ? 'amq.default' : name;
    ok = users.permits(conn.vhost!.name, conn.user!.name, kind, resource);
    if (cache.size > 4096) cache.clear();
    cache.set(name, ok);
  }
  if (!ok) {
    const vhost = conn.vhost!.name;
    const user = conn.user!.name;
    const resource = resourceType === 'exchange' && name === '' ? 'amq.default' : name;
    throw amqpErrors.accessRefused(
      `${kind} access to ${resourceType} '${resource}' in vhost '${vhost}' refused for user '${user}'`,
    );
  }
}
