import type { FieldTable } from '../../protocol/index.js';
import type { Message } from '../message.js';
import type { Binding } from '../binding.js';

export const ExchangeType = {
  Direct: 'direct',
  Fanout: 'fanout',
  Topic: 'topic',
  Headers: 'headers',
} as const;
export type ExchangeType = (typeof ExchangeType)[keyof typeof ExchangeType];

export interface ExchangeOptions {
  durable: boolean;
  autoDelete: boolean;
  internal: boolean;
  arguments: FieldTable;
}

/**
 * An exchange routes a message to the bindings whose key (and arguments) match. Subclasses keep
 * their bindings in whatever structure makes `match` cheap for their type.
 */
export abstract class Exchange {
  abstract readonly type: ExchangeType;
  readonly name: string;
  readonly vhost: string;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly internal: boolean;
  readonly arguments: FieldTable;
  /** Bindings where this exchange is the source, by identity key. */
  readonly bindings = new Map<string, Binding>();
  /** Bindings where this exchange is the destination (exchange-to-exchange). */
  readonly inbound = new Set<Binding>();
  /** Marker used by the router to visit each exchange once per publish. */
  routeMark = 0;
  deleted = false;
  stats = { publishIn: 0, publishOut: 0 };

  constructor(vhost: string, name: string, options: ExchangeOptions) {
    this.vhost = vhost;
    this.name = name;
    this.durable = options.durable;
    this.autoDelete = options.autoDelete;
    this.internal = options.internal;
    this.arguments = options.arguments;
  }

  /** The alternate-exchange argument, if set. */
  get alternateExchange(): string | undefined {
    const ae = this.arguments['alternate-exchange'];
    return typeof ae === 'string' ? ae : undefined;
  }

  addBinding(b: Binding): boolean {
    if (this.bindings.has(b.key)) return false;
    this.bindings.set(b.key, b);
    this.onBind(b);
    return true;
  }

  removeBinding(b: Binding): boolean {
    if (!this.bindings.delete(b.key)) return false;
    this.onUnbind(b);
    return true;
  }

  /** Refuse binding arguments the exchange type cannot use (throws AmqpError); most accept all. */
  validateBinding(_args: FieldTable): void {}

  protected abstract onBind(b: Binding): void;
  protected abstract onUnbind(b: Binding): void;
  /** Append the bindings that match the message to `out`. */
  abstract match(message: Message, routingKey: string, out: Binding[]): void;
}
