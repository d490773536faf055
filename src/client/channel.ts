import { Method } from '../protocol/index.js';
import type {
  BasicProperties,
  FieldTable,
  QueueDeclareOk,
  QueueDeleteOk,
  QueuePurgeOk,
} from '../protocol/index.js';
import type { CallOptions } from './call-options.js';
import { ChannelCore, consumeMethod } from './channel-core.js';
import type { ChannelHost } from './channel-core.js';
import { Consumer, makeConsumerTag } from './consumer.js';
import type { ConsumeOptions, MessageHandler } from './consumer.js';
import { ClientError, ClientErrorCode, connectionLostError, invalidArgument } from './errors.js';
import { SettleKind, toBasicProperties } from './message.js';
import type { Body, Message, NackOptions, PublishOptions } from './message.js';
import type { UnconfirmedPolicy } from './options.js';

/** Exchange types every broker has; others (e.g. x-delayed-message) are plugin-defined strings. */
export type ExchangeType = 'direct' | 'fanout' | 'topic' | 'headers' | (string & {});

export interface ExchangeOptions extends CallOptions {
  /** Survives a broker restart (default false). */
  durable?: boolean | undefined;
  /** Deleted when its last binding is removed (default false). */
  autoDelete?: boolean | undefined;
  /** Only other exchanges may publish to it (default false). */
  internal?: boolean | undefined;
  /** Where unroutable messages go (RabbitMQ's alternate-exchange). */
  alternateExchange?: string | undefined;
  arguments?: FieldTable | undefined;
}

export interface QueueOptions extends CallOptions {
  /** Survives a broker restart (default false). */
  durable?: boolean | undefined;
  /** Used only by this connection and deleted with it (default false). */
  exclusive?: boolean | undefined;
  /** Deleted when its last consumer is cancelled (default false). */
  autoDelete?: boolean | undefined;
  /** Per-queue message TTL in ms (x-message-ttl). */
  messageTtl?: number | undefined;
  /** Delete the queue after this many ms unused (x-expires). */
  expires?: number | undefined;
  /** Longest the queue may get, in messages (x-max-length). */
  maxLength?: number | undefined;
  /** Dead-letter exchange for rejected and expired messages (x-dead-letter-exchange). */
  deadLetterExchange?: string | undefined;
  /** Routing key for dead-lettered messages (x-dead-letter-routing-key). */
  deadLetterRoutingKey?: string | undefined;
  /** Highest message priority the queue honours (x-max-priority). */
  maxPriority?: number | undefined;
  arguments?: FieldTable | undefined;
}

export interface QueueInfo {
  /** The queue's name (the generated one when declared with ''). */
  queue: string;
  messageCount: number;
  consumerCount: number;
}

export interface DeleteQueueOptions extends CallOptions {
  /** Only delete if it has no consumers. */
  ifUnused?: boolean | undefined;
  /** Only delete if it holds no messages. */
  ifEmpty?: boolean | undefined;
}

export interface GetOptions extends CallOptions {
  /** The broker forgets the message as it sends it; no ack needed. */
  noAck?: boolean | undefined;
}

export interface ConfirmOptions {
  /** Most publishes unconfirmed at a time; later ones wait, in order (default 1024). */
  window?: number | undefined;
  /** What to do with unconfirmed publishes when the connection drops (default: the connection's). */
  unconfirmed?: UnconfirmedPolicy | undefined;
}

export interface ChannelOptions extends CallOptions {
  /** Put the channel in confirm mode (publish() resolves when the broker confirms). */
  confirm?: boolean | ConfirmOptions | undefined;
  /** basic.qos prefetch count for consumers created on the channel. */
  prefetch?: number | undefined;
}

/** An iterator with no prefetch set gets this much credit, so its buffer stays bounded. */
export const DEFAULT_ITERATOR_PREFETCH = 128;
export const DEFAULT_CONFIRM_WINDOW = 1024;

const EMPTY_PROPS: BasicProperties = {};

/**
 * An AMQP channel: declare and bind, publish, consume, get, acknowledge, qos, confirms and
 * transactions. Every method that waits for the broker returns a promise, accepts a signal and
 * timeout, and fails with an `AmqpError` (reply code and text) when the broker refuses; the broker
 * then closes the channel, as AMQP specifies, and later calls fail with WARREN_ERR_CHANNEL_CLOSED.
 * After a reconnect the channel is opened again with its qos, confirm and tx mode and consumers.
 */
export class Channel extends ChannelCore {
  constructor(host: ChannelHost, id: number, internal = false) {
    super(host, id, internal);
  }

  // --------------------------------------------------------------------- exchanges

  async exchangeDeclare(
    name: string,
    type: ExchangeType = 'direct',
    options: ExchangeOptions = {},
  ): Promise<void> {
    const args =
      options.alternateExchange !== undefined
        ? { ...options.arguments, 'alternate-exchange': options.alternateExchange }
        : (options.arguments ?? {});
    const rec = {
      name,
      type,
      durable: options.durable ?? false,
      autoDelete: options.autoDelete ?? false,
      internal: options.internal ?? false,
      arguments: args,
    };
    await this.request(
      {
        id: Method.ExchangeDeclare,
        ticket: 0,
        exchange: name,
        type,
        passive: false,
        durable: rec.durable,
        autoDelete: rec.autoDelete,
        internal: rec.internal,
        nowait: false,
        arguments: args,
      },
      Method.ExchangeDeclareOk,
      0,
      options,
      true,
      this.internal ? null : () => this.host.topology.recordExchange(rec),
    );
  }

  /** Passive declare: resolves if the exchange exists, else fails with 404 (closing the channel). */
  async exchangeCheck(name: string, options?: CallOptions): Promise<void> {
    await this.request(
      {
        id: Method.ExchangeDeclare,
        ticket: 0,
        exchange: name,
        type: '',
        passive: true,
        durable: false,
        autoDelete: false,
        internal: false,
        nowait: false,
        arguments: {},
      },
      Method.ExchangeDeclareOk,
      0,
      options,
      true,
    );
  }

  async exchangeDelete(
    name: string,
    options: { ifUnused?: boolean } & CallOptions = {},
  ): Promise<void> {
    await this.request(
      {
        id: Method.ExchangeDelete,
        ticket: 0,
        exchange: name,
        ifUnused: options.ifUnused ?? false,
        nowait: false,
      },
      Method.ExchangeDeleteOk,
      0,
      options,
      true,
      this.internal ? null : () => this.host.topology.deleteExchange(name),
    );
  }

  /** Route messages from `source` to `destination` (RabbitMQ's exchange-to-exchange binding). */
  async exchangeBind(
    destination: string,
    source: string,
    routingKey = '',
    args: FieldTable = {},
    options?: CallOptions,
  ): Promise<void> {
    const rec = { kind: 'exchange' as const, destination, source, routingKey, arguments: args };
    await this.request(
      {
        id: Method.ExchangeBind,
        ticket: 0,
        destination,
        source,
        routingKey,
        nowait: false,
        arguments: args,
      },
      Method.ExchangeBindOk,
      0,
      options,
      true,
      this.internal ? null : () => this.host.topology.recordBinding(rec),
    );
  }

  async exchangeUnbind(
    destination: string,
    source: string,
    routingKey = '',
    args: FieldTable = {},
    options?: CallOptions,
  ): Promise<void> {
    const rec = { kind: 'exchange' as const, destination, source, routingKey, arguments: args };
    // spec: exchange.unbind-ok is method 51, not 41.
    await this.request(
      {
        id: Method.ExchangeUnbind,
        ticket: 0,
        destination,
        source,
        routingKey,
        nowait: false,
        arguments: args,
      },
      Method.ExchangeUnbindOk,
      0,
      options,
      true,
      this.internal ? null : () => this.host.topology.deleteBinding(rec),
    );
  }

  // --------------------------------------------------------------------- queues

  /** Declare a queue; an empty name asks the broker to generate one (returned in `queue`). */
  async queueDeclare(name = '', options: QueueOptions = {}): Promise<QueueInfo> {
    const args = queueArguments(options);
    const durable = options.durable ?? false;
    const exclusive = options.exclusive ?? false;
    const autoDelete = options.autoDelete ?? false;
    const m = (await this.request(
      {
        id: Method.QueueDeclare,
        ticket: 0,
        queue: name,
        passive: false,
        durable,
        exclusive,
        autoDelete,
        nowait: false,
        arguments: args,
      },
      Method.QueueDeclareOk,
      0,
      options,
      true,
      this.internal
        ? null
        : (ok) =>
            this.host.topology.recordQueue({
              name: (ok as QueueDeclareOk).queue,
              serverNamed: name === '',
              durable,
              exclusive,
              autoDelete,
              arguments: args,
            }),
    )) as QueueDeclareOk;
    return { queue: m.queue, messageCount: m.messageCount, consumerCount: m.consumerCount };
  }

  /** Passive declare: the queue's counts if it exists, else fails with 404 (closing the channel). */
  async queueCheck(name: string, options?: CallOptions): Promise<QueueInfo> {
    const m = (await this.request(
      {
        id: Method.QueueDeclare,
        ticket: 0,
        queue: name,
        passive: true,
        durable: false,
        exclusive: false,
        autoDelete: false,
        nowait: false,
        arguments: {},
      },
      Method.QueueDeclareOk,
      0,
      options,
      true,
    )) as QueueDeclareOk;
    return { queue: m.queue, messageCount: m.messageCount, consumerCount: m.consumerCount };
  }

  async queueBind(
    queue: string,
    exchange: string,
    routingKey = '',
    args: FieldTable = {},
    options?: CallOptions,
  ): Promise<void> {
    const rec = {
      kind: 'queue' as const,
      destination: queue,
      source: exchange,
      routingKey,
      arguments: args,
    };
    await this.request(
      {
        id: Method.QueueBind,
        ticket: 0,
        queue,
        exchange,
        routingKey,
        nowait: false,
        arguments: args,
      },
      Method.QueueBindOk,
      0,
      options,
      true,
      this.internal ? null : () => this.host.topology.recordBinding(rec),
    );
  }

  async queueUnbind(
    queue: string,
    exchange: string,
    routingKey = '',
    args: FieldTable = {},
    options?: CallOptions,
  ): Promise<void> {
    const rec = {
      kind: 'queue' as const,
      destination: queue,
      source: exchange,
      routingKey,
      arguments: args,
    };
    await this.request(
      { id: Method.QueueUnbind, ticket: 0, queue, exchange, routingKey, arguments: args },
      Method.QueueUnbindOk,
      0,
      options,
      true,
      this.internal ? null : () => this.host.topology.deleteBinding(rec),
    );
  }

  /** Remove the queue's ready messages; resolves with how many. */
  async queuePurge(queue: string, options?: CallOptions): Promise<number> {
    const m = (await this.request(
      { id: Method.QueuePurge, ticket: 0, queue, nowait: false },
      Method.QueuePurgeOk,
      0,
      options,
      true,
    )) as QueuePurgeOk;
    return m.messageCount;
  }

  /** Delete a queue; resolves with the number of messages it held. */
  async queueDelete(queue: string, options: DeleteQueueOptions = {}): Promise<number> {
    const m = (await this.request(
      {
        id: Method.QueueDelete,
        ticket: 0,
        queue,
        ifUnused: options.ifUnused ?? false,
        ifEmpty: options.ifEmpty ?? false,
        nowait: false,
      },
      Method.QueueDeleteOk,
      0,
      options,
      true,
      this.internal ? null : () => this.host.topology.deleteQueue(queue),
    )) as QueueDeleteOk;
    return m.messageCount;
  }

  // --------------------------------------------------------------------- publishing

  /**
   * Publish to an exchange. Without confirm mode the promise resolves once the message is written
   * (at once, unless the connection is backed up: then when it drains, so awaiting it is
   * backpressure). In confirm mode it resolves when the broker confirms, and rejects with
   * WARREN_ERR_PUBLISH_NACKED on basic.nack, WARREN_ERR_UNROUTABLE when a mandatory message came
   * back, or (with `unconfirmed: 'fail'`) WARREN_ERR_CONNECTION_LOST when the connection dropped
   * first. Do not change a body buffer before the promise settles.
   */
  publish(
    exchange: string,
    routingKey: string,
    body: Body,
    options?: PublishOptions,
  ): Promise<void> {
    if (options === undefined)
      return this.publishRaw(exchange, routingKey, body, false, EMPTY_PROPS);
    return this.publishRaw(
      exchange,
      routingKey,
      body,
      options.mandatory === true,
      toBasicProperties(options),
      options,
    );
  }

  /** Publish straight to a queue (the default exchange, routing key = queue name). */
  sendToQueue(queue: string, body: Body, options?: PublishOptions): Promise<void> {
    return this.publish('', queue, body, options);
  }

  // --------------------------------------------------------------------- consuming

  /**
   * Start a consumer. With a handler, each message is passed to it; without one, iterate the
   * returned consumer (`for await (const m of consumer)`), whose buffer the prefetch count bounds
   * (an iterator on a channel without qos gets a prefetch of 128).
   */
  consume(queue: string, handler: MessageHandler, options?: ConsumeOptions): Promise<Consumer>;
  consume(queue: string, options?: ConsumeOptions): Promise<Consumer>;
  async consume(
    queue: string,
    a?: MessageHandler | ConsumeOptions,
    b?: ConsumeOptions,
  ): Promise<Consumer> {
    const handler = typeof a === 'function' ? a : null;
    const options = (typeof a === 'function' ? b : a) ?? {};
    let prefetch = options.prefetch;
    if (
      prefetch === undefined &&
      handler === null &&
      this.consumerPrefetch === 0 &&
      this.channelPrefetch === 0
    ) {
      prefetch = DEFAULT_ITERATOR_PREFETCH;
    }
    const c = new Consumer(
      this,
      queue,
      options.consumerTag ?? makeConsumerTag(),
      handler,
      options,
      prefetch ?? this.consumerPrefetch,
    );
    this.addConsumer(c);
    // Requests go out in order, so this qos is what the broker applies to the consumer.
    const qos =
      prefetch !== undefined && prefetch !== this.consumerPrefetch
        ? this.qos(prefetch, { ...pickCall(options), global: false })
        : null;
    const consumed = this.request(consumeMethod(c), Method.BasicConsumeOk, 0, options, true, () => {
      c.active = true;
      c.established = true;
      // The caller gave up before consume-ok: undo the consumer it no longer holds.
      if (!c.isActive) void this.cancelConsumer(c).catch(() => undefined);
    });
    try {
      await Promise.all([qos, consumed]);
    } catch (err) {
      if (
        err instanceof ClientError &&
        (err.code === ClientErrorCode.Timeout || err.code === ClientErrorCode.Aborted)
      ) {
        // consume-ok may still come; the consumer stays known so that it can be cancelled then.
        c.end(err, true);
      } else {
        this.removeConsumer(c);
        c.end(err as Error, false);
      }
      throw err;
    }
    return c;
  }

  /** Cancel a consumer by tag (or use `consumer.cancel()`). */
  async cancel(consumerTag: string, options?: CallOptions): Promise<void> {
    const c = this.consumers.get(consumerTag);
    if (c === undefined) return;
    await this.cancelConsumer(c, options);
  }

  /** @internal */
  override async cancelConsumer(c: Consumer, options?: CallOptions): Promise<void> {
    c.cancelling = true;
    try {
      await this.request(
        { id: Method.BasicCancel, consumerTag: c.tag, nowait: false },
        Method.BasicCancelOk,
        0,
        options,
        true,
      );
    } finally {
      this.removeConsumer(c);
      c.end(null, this.isOpen);
    }
  }

  /** Fetch one message (basic.get); null when the queue is empty. Never waits for a message. */
  async get(queue: string, options: GetOptions = {}): Promise<Message | null> {
    return (await this.call(
      { id: Method.BasicGet, ticket: 0, queue, noAck: options.noAck ?? false },
      Method.BasicGetOk,
      Method.BasicGetEmpty,
      options,
      true,
      null,
      false,
    )) as Message | null;
  }

  // --------------------------------------------------------------------- acknowledgements

  /** Acknowledge a message (and, with `multiple`, every earlier unsettled one of this channel). */
  ack(message: Message, multiple = false): void {
    this.checkOwn(message);
    this.settle(message, SettleKind.Ack, multiple, false);
  }

  /** Negative acknowledgement; requeued unless `requeue: false`. */
  nack(message: Message, options: NackOptions = {}): void {
    this.checkOwn(message);
    this.settle(message, SettleKind.Nack, options.multiple ?? false, options.requeue ?? true);
  }

  /** Reject one message; requeued unless `requeue: false`. */
  reject(message: Message, options: { requeue?: boolean } = {}): void {
    this.checkOwn(message);
    this.settle(message, SettleKind.Reject, false, options.requeue ?? true);
  }

  private checkOwn(message: Message): void {
    if (!message.isFrom(this)) {
      throw invalidArgument(
        `message ${message.deliveryTag} was received on another channel; settle it there (message.ack())`,
      );
    }
  }

  /** Prefetch: how many unacknowledged messages consumers may hold (per consumer, or per channel with `global`). */
  async qos(
    prefetchCount: number,
    options: { global?: boolean } & CallOptions = {},
  ): Promise<void> {
    if (!Number.isInteger(prefetchCount) || prefetchCount < 0 || prefetchCount > 65535) {
      throw invalidArgument(
        `prefetchCount must be an integer from 0 to 65535, got ${prefetchCount}`,
      );
    }
    const global = options.global ?? false;
    if (global) this.channelPrefetch = prefetchCount;
    else this.consumerPrefetch = prefetchCount;
    await this.request(
      { id: Method.BasicQos, prefetchSize: 0, prefetchCount, global },
      Method.BasicQosOk,
      0,
      options,
      true,
    );
  }

  /** Redeliver every unacknowledged message of this channel (basic.recover). */
  async recover(options?: CallOptions): Promise<void> {
    await this.request(
      { id: Method.BasicRecover, requeue: true },
      Method.BasicRecoverOk,
      0,
      options,
      true,
    );
  }

  /** Ask the broker to pause (false) or resume (true) deliveries on this channel. */
  async flow(active: boolean, options?: CallOptions): Promise<boolean> {
    const m = await this.request(
      { id: Method.ChannelFlow, active },
      Method.ChannelFlowOk,
      0,
      options,
      true,
    );
    return (m as { active: boolean }).active;
  }

  // --------------------------------------------------------------------- confirms and tx

  /** Enter confirm mode: from now on publish() resolves when the broker confirms. */
  async confirmSelect(options: ConfirmOptions & CallOptions = {}): Promise<void> {
    const window = options.window ?? DEFAULT_CONFIRM_WINDOW;
    if (!(window >= 1)) throw invalidArgument(`confirm window must be at least 1, got ${window}`);
    if (this.txMode) {
      throw invalidArgument('a channel in tx mode cannot enter confirm mode; use another channel');
    }
    if (this.confirming) return;
    this.enterConfirmMode(window, options.unconfirmed);
    await this.request(
      { id: Method.ConfirmSelect, nowait: false },
      Method.ConfirmSelectOk,
      0,
      options,
      true,
    );
  }

  async txSelect(options?: CallOptions): Promise<void> {
    if (this.confirming) {
      throw invalidArgument(
        'a channel in confirm mode cannot use transactions; use another channel',
      );
    }
    this.enterTxMode();
    await this.request({ id: Method.TxSelect }, Method.TxSelectOk, 0, options, true);
  }

  /**
   * Commit the transaction. If the connection dropped since the last commit, the broker rolled the
   * work back: this fails with WARREN_ERR_CONNECTION_LOST and the work must be redone.
   */
  async txCommit(options?: CallOptions): Promise<void> {
    if (this.takeTxLost()) {
      this.txEnded();
      throw connectionLostError('tx.commit (the transaction was rolled back)', null);
    }
    await this.request({ id: Method.TxCommit }, Method.TxCommitOk, 0, options, false);
    this.txEnded();
  }

  async txRollback(options?: CallOptions): Promise<void> {
    this.takeTxLost();
    await this.request({ id: Method.TxRollback }, Method.TxRollbackOk, 0, options, false);
    this.txEnded();
  }

  /** Resolves once the channel is open (after a reconnect in progress, if any). */
  ready(): Promise<void> {
    return this.whenOpen();
  }
}

function pickCall(o: CallOptions): CallOptions {
  return { signal: o.signal, timeout: o.timeout };
}

function queueArguments(o: QueueOptions): FieldTable {
  const args: FieldTable = { ...o.arguments };
  if (o.messageTtl !== undefined) args['x-message-ttl'] = o.messageTtl;
  if (o.expires !== undefined) args['x-expires'] = o.expires;
  if (o.maxLength !== undefined) args['x-max-length'] = o.maxLength;
  if (o.deadLetterExchange !== undefined) args['x-dead-letter-exchange'] = o.deadLetterExchange;
  if (o.deadLetterRoutingKey !== undefined) {
    args['x-dead-letter-routing-key'] = o.deadLetterRoutingKey;
  }
  if (o.maxPriority !== undefined) args['x-max-priority'] = o.maxPriority;
  return args;
}
