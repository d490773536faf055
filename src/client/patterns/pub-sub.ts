import type { CallOptions } from '../call-options.js';
import type { Channel } from '../channel.js';
import type { Connection } from '../connection.js';
import type { Consumer } from '../consumer.js';
import type { Body, Message, PublishOptions } from '../message.js';
import { ackingHandler } from './acking-handler.js';
import type { Handler } from './acking-handler.js';

export interface ExchangeHelperOptions extends CallOptions {
  /** Keep the exchange across broker restarts (default false). */
  durable?: boolean | undefined;
  /** Publishes resolve when the broker confirms them (default true). */
  confirm?: boolean | undefined;
}

export interface SubscribeOptions extends CallOptions {
  /**
   * A named, durable subscription queue that keeps messages while the subscriber is away. By
   * default each subscriber gets a private, server-named queue that goes away with it.
   */
  queue?: string | undefined;
  /** Unacked messages the subscriber holds at once (default 16). */
  prefetch?: number | undefined;
  onError?: (error: unknown, message: Message) => void;
}

/** A live subscription: its consumer, and the queue it reads. */
export interface Subscription {
  readonly queue: string;
  readonly consumer: Consumer;
  /** Stop receiving (a private queue is deleted with it). */
  cancel(): Promise<void>;
}

/**
 * Shared by the publish/subscribe helpers: one exchange, a confirm channel to publish on, and a
 * channel per subscription whose queue is bound with the given keys.
 */
abstract class ExchangeHelper {
  readonly exchange: string;
  protected readonly conn: Connection;
  protected readonly channel: Channel;
  private readonly subscriptions = new Set<Channel>();

  protected constructor(conn: Connection, channel: Channel, exchange: string) {
    this.conn = conn;
    this.channel = channel;
    this.exchange = exchange;
  }

  protected static async declare(
    conn: Connection,
    exchange: string,
    type: 'fanout' | 'direct' | 'topic',
    options: ExchangeHelperOptions,
  ): Promise<Channel> {
    const ch = await conn.channel({ confirm: options.confirm ?? true });
    await ch.exchangeDeclare(exchange, type, { durable: options.durable ?? false });
    return ch;
  }

  protected async bindAndConsume(
    keys: readonly string[],
    handler: Handler,
    options: SubscribeOptions,
  ): Promise<Subscription> {
    const ch = await this.conn.channel({ prefetch: options.prefetch ?? 16 });
    this.subscriptions.add(ch);
    ch.once('close', () => this.subscriptions.delete(ch));
    try {
      const named = options.queue !== undefined;
      const { queue } = await ch.queueDeclare(
        options.queue ?? '',
        named ? { durable: true } : { exclusive: true, autoDelete: true },
      );
      for (const key of keys) await ch.queueBind(queue, this.exchange, key);
      const consumer = await ch.consume(queue, ackingHandler(handler), {
        signal: options.signal,
        timeout: options.timeout,
        ...(options.onError !== undefined ? { onError: options.onError } : {}),
      });
      return {
        get queue() {
          return consumer.queue;
        },
        consumer,
        async cancel() {
          await consumer.cancel();
          if (!named) await ch.queueDelete(consumer.queue).catch(() => 0);
          await ch.close();
        },
      };
    } catch (err) {
      await ch.close().catch(() => undefined);
      throw err;
    }
  }

  /** Close the publishing channel and every subscription's. */
  async close(): Promise<void> {
    await Promise.all([...this.subscriptions].map((c) => c.close()));
    await this.channel.close();
  }
}

/** Publish/subscribe with a fanout exchange: every subscriber gets every message. */
export class Fanout extends ExchangeHelper {
  /** @internal use `connection.fanout(name)`. */
  static async open(
    conn: Connection,
    exchange: string,
    options: ExchangeHelperOptions = {},
  ): Promise<Fanout> {
    return new Fanout(
      conn,
      await ExchangeHelper.declare(conn, exchange, 'fanout', options),
      exchange,
    );
  }

  publish(body: Body, options?: PublishOptions): Promise<void> {
    return this.channel.publish(this.exchange, '', body, options);
  }

  subscribe(handler: Handler, options: SubscribeOptions = {}): Promise<Subscription> {
    return this.bindAndConsume([''], handler, options);
  }
}

/**
 * Routing with a direct exchange (subscribers name the exact keys they want) or topics with a
 * topic exchange (keys are dot-separated words; `*` matches one word, `#` any number).
 */
export class Router extends ExchangeHelper {
  readonly type: 'direct' | 'topic';

  private constructor(
    conn: Connection,
    channel: Channel,
    exchange: string,
    type: 'direct' | 'topic',
  ) {
    super(conn, channel, exchange);
    this.type = type;
  }

  /** @internal use `connection.direct(name)` or `connection.topic(name)`. */
  static async open(
    conn: Connection,
    exchange: string,
    type: 'direct' | 'topic',
    options: ExchangeHelperOptions = {},
  ): Promise<Router> {
    return new Router(
      conn,
      await ExchangeHelper.declare(conn, exchange, type, options),
      exchange,
      type,
    );
  }

  publish(routingKey: string, body: Body, options?: PublishOptions): Promise<void> {
    return this.channel.publish(this.exchange, routingKey, body, options);
  }

  /** Receive messages whose routing key matches any of `keys` (patterns for a topic router). */
  subscribe(
    keys: string | readonly string[],
    handler: Handler,
    options: SubscribeOptions = {},
  ): Promise<Subscription> {
    return this.bindAndConsume(typeof keys === 'string' ? [keys] : keys, handler, options);
  }
}
