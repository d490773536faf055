import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const UserTag = {
  Administrator: 'administrator',
  Monitoring: 'monitoring',
  Management: 'management',
  PolicyMaker: 'policymaker',
} as const;

export interface User {
  readonly name: string;
  /** base64(salt ++ sha256(salt ++ password)), RabbitMQ's rabbit_password_hashing_sha256. */
  passwordHash: string;
  tags: string[];
}

/** Regular expressions over resource names, as in RabbitMQ's set_permissions. */
export interface Permission {
  configure: string;
  write: string;
  read: string;
}

export type PermissionKind = keyof Permission;

export const HASHING_ALGORITHM = 'rabbit_password_hashing_sha256';

/** Salted SHA-256 in RabbitMQ's format, so definitions move between RabbitMQ and Warren. */
export function hashPassword(password: string, salt: Buffer = randomBytes(4)): string {
  const digest = createHash('sha256').update(salt).update(password, 'utf8').digest();
  return Buffer.concat([salt, digest]).toString('base64');
}

export function checkPassword(password: string, passwordHash: string): boolean {
  const stored = Buffer.from(passwordHash, 'base64');
  if (stored.length !== 36) return false;
  const expected = Buffer.from(hashPassword(password, stored.subarray(0, 4)), 'base64');
  return timingSafeEqual(stored, expected);
}

interface CompiledPermission {
  readonly source: Permission;
  readonly configure: RegExp;
  readonly write: RegExp;
  readonly read: RegExp;
}

/** Observers of user and permission changes (the store persists them). */
export interface UserStoreEvents {
  userChanged?(user: User): void;
  userDeleted?(name: string): void;
  permissionChanged?(vhost: string, user: string, permission: Permission): void;
  permissionDeleted?(vhost: string, user: string): void;
}

/** Users, their tags and their per-vhost permissions. */
export class UserStore {
  private readonly users = new Map<string, User>();
  /** vhost -> user -> permission */
  private readonly permissions = new Map<string, Map<string, CompiledPermission>>();
  events: UserStoreEvents = {};
  /** Bumped on every permission or user change, so cached permission answers can be dropped. */
  generation = 0;

  addUser(name: string, password: string, tags: string[] = []): User {
    const user: User = { name, passwordHash: hashPassword(password), tags };
    this.putUser(user);
    return user;
  }

  putUser(user: User): void {
    this.generation++;
    this.users.set(user.name, user);
    this.events.userChanged?.(user);
  }

  getUser(name: string): User | undefined {
    return this.users.get(name);
  }

  deleteUser(name: string): boolean {
    this.generation++;
    for (const [vhost, perVhost] of this.permissions) {
      if (perVhost.delete(name)) this.events.permissionDeleted?.(vhost, name);
    }
    const existed = this.users.delete(name);
    if (existed) this.events.userDeleted?.(name);
    return existed;
  }

  /** Forget everything (before loading users from the store). No events. */
  reset(): void {
    this.users.clear();
    this.permissions.clear();
  }

  listUsers(): User[] {
    return [...this.users.values()];
  }

  /** The user, if the password is right. */
  authenticate(name: string, password: string): User | undefined {
    const user = this.users.get(name);
    if (user === undefined) return undefined;
    return checkPassword(password, user.passwordHash) ? user : undefined;
  }

  setPermission(vhost: string, user: string, permission: Permission): void {
    let perVhost = this.permissions.get(vhost);
    if (perVhost === undefined) {
      perVhost = new Map();
      this.permissions.set(vhost, perVhost);
    }
    perVhost.set(user, {
      source: { ...permission },
      configure: compile(permission.configure),
      write: compile(permission.write),
      read: compile(permission.read),
    });
    this.generation++;
    this.events.permissionChanged?.(vhost, user, { ...permission });
  }

  clearPermission(vhost: string, user: string): void {
    this.generation++;
    if (this.permissions.get(vhost)?.delete(user) === true) {
      this.events.permissionDeleted?.(vhost, user);
    }
  }

  clearVhost(vhost: string): void {
    this.generation++;
    const perVhost = this.permissions.get(vhost);
    if (perVhost === undefined) return;
    this.permissions.delete(vhost);
    for (const user of perVhost.keys()) this.events.permissionDeleted?.(vhost, user);
  }

  getPermission(vhost: string, user: string): Permission | undefined {
    return this.permissions.get(vhost)?.get(user)?.source;
  }

  listPermissions(): { vhost: string; user: string; permission: Permission }[] {
    const out = [];
    for (const [vhost, perVhost] of this.permissions) {
      for (const [user, p] of perVhost) out.push({ vhost, user, permission: p.source });
    }
    return out;
  }

  hasVhostAccess(vhost: string, user: string): boolean {
    return this.permissions.get(vhost)?.has(user) ?? false;
  }

  /** Whether the user may do `kind` on a resource name in a vhost. */
  permits(vhost: string, user: string, kind: PermissionKind, resource: string): boolean {
    const p = this.permissions.get(vhost)?.get(user);
    if (p === undefined) return false;
    const re = p[kind];
    re.lastIndex = 0;
    return re.test(resource);
  }
}

/** RabbitMQ's permission expressions match anywhere in the name unless anchored; '' matches nothing. */
function compile(expr: string): RegExp {
  if (expr === '') return /(?!)/;
  return new RegExp(expr);
}
