import { Writer } from '../protocol/index.js';
import type { FieldTable } from '../protocol/index.js';

export interface ExchangeRecord {
  name: string;
  type: string;
  durable: boolean;
  autoDelete: boolean;
  internal: boolean;
  arguments: FieldTable;
}

export interface QueueRecord {
  name: string;
  /** Declared with an empty name: after a reconnect it is declared again and gets a new name. */
  serverNamed: boolean;
  durable: boolean;
  exclusive: boolean;
  autoDelete: boolean;
  arguments: FieldTable;
}

export interface BindingRecord {
  /** A queue binding (queue.bind) or an exchange-to-exchange binding (exchange.bind). */
  kind: 'queue' | 'exchange';
  destination: string;
  source: string;
  routingKey: string;
  arguments: FieldTable;
}

/**
 * What the application declared through a connection (exchanges, queues, bindings), recorded
 * when the broker confirmed it and forgotten when deleted, so that it can be declared again on a
 * new connection after the old one dropped (the broker may have restarted without it, and
 * exclusive queues die with their connection). Consumers are kept by their channels.
 */
export class Topology {
  readonly exchanges = new Map<string, ExchangeRecord>();
  readonly queues = new Map<string, QueueRecord>();
  readonly bindings = new Map<string, BindingRecord>();

  get isEmpty(): boolean {
    return this.exchanges.size === 0 && this.queues.size === 0 && this.bindings.size === 0;
  }

  recordExchange(r: ExchangeRecord): void {
    // The default exchange and amq.* always exist and cannot be declared.
    if (r.name === '' || r.name.startsWith('amq.')) return;
    this.exchanges.set(r.name, r);
  }

  deleteExchange(name: string): void {
    this.exchanges.delete(name);
    for (const [key, b] of this.bindings) {
      if (b.source === name || (b.kind === 'exchange' && b.destination === name)) {
        this.bindings.delete(key);
      }
    }
  }

  recordQueue(r: QueueRecord): void {
    this.queues.set(r.name, r);
  }

  deleteQueue(name: string): void {
    this.queues.delete(name);
    for (const [key, b] of this.bindings) {
      if (b.kind === 'queue' && b.destination === name) this.bindings.delete(key);
    }
  }

  recordBinding(b: BindingRecord): void {
    // Bindings to the default exchange are implicit.
    if (b.source === '') return;
    this.bindings.set(bindingKey(b), b);
  }

  deleteBinding(b: BindingRecord): void {
    this.bindings.delete(bindingKey(b));
  }

  /** A server-named queue got a new name on a new connection. */
  renameQueue(from: string, to: string): void {
    const q = this.queues.get(from);
    if (q !== undefined) {
      this.queues.delete(from);
      this.queues.set(to, { ...q, name: to });
    }
    const renamed: BindingRecord[] = [];
    for (const [key, b] of this.bindings) {
      if (b.kind === 'queue' && b.destination === from) {
        this.bindings.delete(key);
        renamed.push({ ...b, destination: to });
      }
    }
    for (const b of renamed) this.bindings.set(bindingKey(b), b);
  }
}

/** Identity of a binding: arguments count, compared by their encoding (they may hold bigints). */
function bindingKey(b: BindingRecord): string {
  let args = '';
  if (Object.keys(b.arguments).length > 0) {
    const w = new Writer(64);
    w.table(b.arguments);
    args = w.toBuffer().toString('base64');
  }
  return `${b.kind}\u0000${b.destination}\u0000${b.source}\u0000${b.routingKey}\u0000${args}`;
}
