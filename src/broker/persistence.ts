import { Reader, Writer } from '../protocol/index.js';
import type { FieldTable } from '../protocol/index.js';
import type { BrokerStore } from '../store/broker-store.js';
import type { Binding } from './binding.js';
import type { Exchange } from './exchange/exchange.js';
import type { Queue } from './queue.js';
import type { Permission, User, UserStoreEvents } from './users.js';
import type { VirtualHostEvents } from './vhost.js';

/** Field tables are stored AMQP-encoded so every value keeps its wire type. */
export function encodeArgs(args: FieldTable): string {
  const w = new Writer(64);
  w.table(args);
  return w.toBuffer().toString('base64');
}

export function decodeArgs(text: string): FieldTable {
  return new Reader(Buffer.from(text, 'base64')).table();
}

/** RabbitMQ's rule: a binding is durable when both of its ends are. */
function bindingIsDurable(b: Binding): boolean {
  if (!b.source.durable) return false;
  if (b.destinationKind === 'exchange') return (b.destination as Exchange).durable;
  const q = b.destination as Queue;
  return q.durable && !q.exclusive;
}

function queueIsDurable(q: Queue): boolean {
  // Exclusive queues die with their connection, so a restart never brings them back.
  return q.durable && !q.exclusive && q.storageId !== null;
}

/**
 * Writes durable topology and security changes to the store as they happen: the bridge between
 * broker objects and the store's records.
 */
export class Persistence implements VirtualHostEvents, UserStoreEvents {
  private readonly store: BrokerStore;
  private readonly onWriteError: (err: NodeJS.ErrnoException) => void;

  constructor(store: BrokerStore, onWriteError: (err: NodeJS.ErrnoException) => void = () => {}) {
    this.store = store;
    this.onWriteError = onWriteError;
  }

  /** Run a store write; a failure (disk full) is reported, then rethrown to the caller. */
  private write(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.onWriteError(err as NodeJS.ErrnoException);
      throw err;
    }
  }

  exchangeDeclared(ex: Exchange): void {
    if (!ex.durable) return;
    this.write(() =>
      this.store.putExchange({
        vhost: ex.vhost,
        name: ex.name,
        type: ex.type,
        autoDelete: ex.autoDelete,
        internal: ex.internal,
        arguments: encodeArgs(ex.arguments),
      }),
    );
  }

  exchangeDeleted(ex: Exchange): void {
    if (ex.durable) this.write(() => this.store.deleteExchange(ex.vhost, ex.name));
  }

  queueDeclared(q: Queue): void {
    if (!queueIsDurable(q)) return;
    this.write(() =>
      this.store.putQueue({
        vhost: q.vhost,
        name: q.name,
        autoDelete: q.autoDelete,
        arguments: encodeArgs(q.arguments),
        storageId: q.storageId!,
      }),
    );
  }

  queueDeleted(q: Queue): void {
    if (queueIsDurable(q)) this.store.deleteQueue(q.vhost, q.name);
  }

  bindingAdded(b: Binding): void {
    if (!bindingIsDurable(b)) return;
    this.write(() =>
      this.store.putBinding({
        vhost: b.source.vhost,
        source: b.source.name,
        destination: b.destination.name,
        kind: b.destinationKind,
        routingKey: b.routingKey,
        arguments: encodeArgs(b.arguments),
        key: `${b.source.name}\u0000${b.key}`,
      }),
    );
  }

  bindingRemoved(b: Binding): void {
    if (bindingIsDurable(b))
      this.write(() => this.store.deleteBinding(b.source.vhost, `${b.source.name}\u0000${b.key}`));
  }

  userChanged(user: User): void {
    this.write(() =>
      this.store.putUser({
        name: user.name,
        passwordHash: user.passwordHash,
        tags: [...user.tags],
      }),
    );
  }

  userDeleted(name: string): void {
    this.write(() => this.store.deleteUser(name));
  }

  permissionChanged(vhost: string, user: string, p: Permission): void {
    this.write(() => this.store.putPermission({ vhost, user, ...p }));
  }

  permissionDeleted(vhost: string, user: string): void {
    this.write(() => this.store.deletePermission(vhost, user));
  }

  vhostAdded(name: string): void {
    this.write(() => this.store.putVhost(name));
  }

  vhostDeleted(name: string): void {
    this.write(() => this.store.deleteVhost(name));
  }
}
