import type { BasicProperties } from '../protocol/index.js';

/** A message body: bytes, or a string sent as UTF-8. */
export type Body = Buffer | Uint8Array | string;

/** The AMQP basic properties of a message, as received. `timestamp` is in seconds. */
export type MessageProperties = BasicProperties;

/** Properties and flags for a publish. */
export interface PublishOptions extends Omit<BasicProperties, 'timestamp' | 'expiration'> {
  /** Return the message (channel 'return' event) if no queue takes it. */
  mandatory?: boolean | undefined;
  /** Shorthand for deliveryMode 2: the broker writes the message to disk in a durable queue. */
  persistent?: boolean | undefined;
  /** A Date, or seconds since the epoch. */
  timestamp?: Date | number | undefined;
  /** Per-message TTL in milliseconds. */
  expiration?: string | number | undefined;
  /**
   * Stop waiting for room in the confirm window, for a reconnect, or for the confirm. A publish
   * not yet sent is then never sent; one already sent may still be delivered.
   */
  signal?: AbortSignal | undefined;
  /** Milliseconds to wait, as with `signal` (rejects with WARREN_ERR_TIMEOUT). */
  timeout?: number | undefined;
}

/** How `nack` and `reject` dispose of a message. */
export interface NackOptions {
  /** Put the message back in the queue (default true); false drops or dead-letters it. */
  requeue?: boolean | undefined;
  /** Also settle every earlier unsettled message of the channel. */
  multiple?: boolean | undefined;
}

/** What a channel does for a message's ack/nack/reject. */
export interface Settler {
  settle(message: Message, kind: SettleKind, multiple: boolean, requeue: boolean): void;
}

export const SettleKind = { Ack: 0, Nack: 1, Reject: 2 } as const;
export type SettleKind = (typeof SettleKind)[keyof typeof SettleKind];

/**
 * A message received from a consumer or basic.get. Unless it was consumed with `noAck`, the
 * broker holds it until `ack()`, `nack()` or `reject()`; settling it after the connection dropped
 * and came back does nothing, because the broker has already put it back for redelivery.
 */
export class Message {
  readonly body: Buffer;
  readonly properties: MessageProperties;
  readonly exchange: string;
  readonly routingKey: string;
  readonly deliveryTag: number;
  readonly redelivered: boolean;
  /** The consumer it was delivered to; '' for basic.get. */
  readonly consumerTag: string;
  /** For basic.get: messages left in the queue; -1 for deliveries. */
  readonly messageCount: number;
  /** True once acked, nacked or rejected (or when no acknowledgement is expected). */
  settled: boolean;
  /** @internal the connection session the delivery tag belongs to. */
  readonly epoch: number;
  private readonly settler: Settler;

  constructor(
    settler: Settler,
    epoch: number,
    deliveryTag: number,
    redelivered: boolean,
    exchange: string,
    routingKey: string,
    consumerTag: string,
    messageCount: number,
    properties: MessageProperties,
    body: Buffer,
    settled: boolean,
  ) {
    this.settler = settler;
    this.epoch = epoch;
    this.deliveryTag = deliveryTag;
    this.redelivered = redelivered;
    this.exchange = exchange;
    this.routingKey = routingKey;
    this.consumerTag = consumerTag;
    this.messageCount = messageCount;
    this.properties = properties;
    this.body = body;
    this.settled = settled;
  }

  /** @internal whether this message was received through `settler` (its channel). */
  isFrom(settler: Settler): boolean {
    return this.settler === settler;
  }

  /** The body decoded as UTF-8. */
  text(): string {
    return this.body.toString('utf8');
  }

  /** The body parsed as JSON. */
  json<T = unknown>(): T {
    return JSON.parse(this.body.toString('utf8')) as T;
  }

  /** Acknowledge: the broker forgets the message (with `multiple`, every earlier one too). */
  ack(multiple = false): void {
    this.settler.settle(this, SettleKind.Ack, multiple, false);
  }

  /** Negative acknowledgement; requeues unless `requeue: false`. */
  nack(options: NackOptions = {}): void {
    this.settler.settle(this, SettleKind.Nack, options.multiple ?? false, options.requeue ?? true);
  }

  /** Reject this one message; requeues unless `requeue: false`. */
  reject(options: { requeue?: boolean } = {}): void {
    this.settler.settle(this, SettleKind.Reject, false, options.requeue ?? true);
  }
}

/** A mandatory publish that no queue took, sent back by the broker (channel 'return' event). */
export interface ReturnedMessage {
  readonly replyCode: number;
  readonly replyText: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly properties: MessageProperties;
  readonly body: Buffer;
}

/** Properties to put on the wire for publish options; the same object when nothing needs converting. */
export function toBasicProperties(o: PublishOptions): BasicProperties {
  const ts = o.timestamp;
  const exp = o.expiration;
  if (o.persistent === undefined && typeof ts !== 'object' && typeof exp !== 'number') {
    return o as BasicProperties;
  }
  const p: BasicProperties = { ...(o as BasicProperties) };
  if (o.persistent !== undefined && o.deliveryMode === undefined) {
    p.deliveryMode = o.persistent ? 2 : 1;
  }
  if (ts instanceof Date) p.timestamp = Math.floor(ts.getTime() / 1000);
  if (typeof exp === 'number') p.expiration = String(exp);
  return p;
}
