import type { FieldTable } from '../protocol/index.js';
import { Deque } from '../util/deque.js';
import type { CallOptions } from './call-options.js';
import { ClientError, ClientErrorCode } from './errors.js';
import type { Message } from './message.js';

/** Called for each delivery; a returned promise is watched for rejection, not awaited. */
export type MessageHandler = (message: Message) => unknown;

export interface ConsumeOptions extends CallOptions {
  /**
   * The broker forgets each message once it is handed over; no ack needed (at-most-once). With an
   * iterator the client acknowledges a message when the loop takes it, so prefetch still bounds
   * what is buffered.
   */
  noAck?: boolean | undefined;
  /** Only this consumer may consume from the queue. */
  exclusive?: boolean | undefined;
  /** Choose the consumer tag; by default the client makes a unique one. */
  consumerTag?: string | undefined;
  /** Unacknowledged messages this consumer may hold (basic.qos before basic.consume). */
  prefetch?: number | undefined;
  /** Consumer priority (RabbitMQ's x-priority). */
  priority?: number | undefined;
  /** Broker-specific consume arguments. */
  arguments?: FieldTable | undefined;
  /**
   * Handler errors (callback consumers). Without it, a message whose handler fails and that is
   * still unsettled is requeued once, then rejected without requeue (dead-lettered if the queue
   * has a dead-letter exchange), and the connection emits 'error' with WARREN_ERR_HANDLER_FAILED.
   */
  onError?: (error: unknown, message: Message) => void;
}

/** Why a consumer stopped: null for a cancel by the application, else the error. */
export type ConsumerEnd = Error | null;

/** What a consumer needs from its channel. */
export interface ConsumerHost {
  readonly id: number;
  cancelConsumer(consumer: Consumer, options?: CallOptions): Promise<void>;
  autoAck(message: Message): void;
  requeue(message: Message): void;
  reportError(err: Error): void;
}

let tagCounter = 0;
const tagPrefix = `warren.ctag-${process.pid.toString(36)}-${Date.now().toString(36)}`;

export function makeConsumerTag(): string {
  return `${tagPrefix}-${(++tagCounter).toString(36)}`;
}

/**
 * A subscription to a queue. Consume it with a callback (given to `channel.consume`) or as an
 * async iterator: `for await (const msg of consumer) { ...; msg.ack(); }`. The iterator buffers
 * only what the broker sends, and the broker sends no more than the prefetch count of unacked
 * messages, so the buffer is bounded by prefetch; leaving the loop cancels the consumer and
 * requeues what was buffered.
 */
export class Consumer implements AsyncIterableIterator<Message> {
  readonly tag: string;
  /** The queue; changes if a server-named queue got a new name after a reconnect. */
  queue: string;
  readonly options: ConsumeOptions;
  /** Whether the broker acks on delivery (callback consumers with noAck). */
  readonly brokerNoAck: boolean;
  /** Prefetch in force when it was created, re-applied after a reconnect. */
  prefetch: number;
  /** The broker knows this consumer in the current session (consume-ok seen). */
  active = false;
  /** consume-ok was seen once: the consumer is re-created after a reconnect. */
  established = false;
  /** cancel() was called; it is not recovered after a reconnect. */
  cancelling = false;
  /** Resolves when the consumer stops, with null for a cancel or the error that ended it. */
  readonly closed: Promise<ConsumerEnd>;

  private readonly host: ConsumerHost;
  private readonly handler: MessageHandler | null;
  private readonly buffer = new Deque<Message>(32);
  private readonly waiters = new Deque<{
    resolve: (r: IteratorResult<Message>) => void;
    reject: (err: Error) => void;
  }>();
  private ended = false;
  private endError: Error | null = null;
  private resolveClosed!: (end: ConsumerEnd) => void;

  constructor(
    host: ConsumerHost,
    queue: string,
    tag: string,
    handler: MessageHandler | null,
    options: ConsumeOptions,
    prefetch: number,
  ) {
    this.host = host;
    this.queue = queue;
    this.tag = tag;
    this.handler = handler;
    this.options = options;
    this.brokerNoAck = handler !== null && options.noAck === true;
    this.prefetch = prefetch;
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }

  /** Messages received and not yet taken by the iterator. */
  get buffered(): number {
    return this.buffer.length;
  }

  get isActive(): boolean {
    return !this.ended;
  }

  /** Stop consuming. Messages already delivered stay with the application to settle. */
  cancel(options?: CallOptions): Promise<void> {
    if (this.ended || this.cancelling) return this.closed.then(() => undefined);
    return this.host.cancelConsumer(this, options);
  }

  /** @internal a delivery for this consumer. */
  deliver(msg: Message): void {
    if (this.ended) {
      this.host.requeue(msg);
      return;
    }
    const handler = this.handler;
    if (handler !== null) {
      try {
        const r = handler(msg);
        if (
          r !== null &&
          typeof r === 'object' &&
          typeof (r as Promise<unknown>).then === 'function'
        ) {
          (r as Promise<unknown>).then(undefined, (err: unknown) => this.handlerFailed(err, msg));
        }
      } catch (err) {
        this.handlerFailed(err, msg);
      }
      return;
    }
    const w = this.waiters.shift();
    if (w !== undefined) {
      this.handOut(msg);
      w.resolve({ value: msg, done: false });
    } else {
      this.buffer.push(msg);
    }
  }

  private handlerFailed(err: unknown, msg: Message): void {
    const onError = this.options.onError;
    if (onError !== undefined) {
      onError(err, msg);
      return;
    }
    if (!msg.settled) msg.nack({ requeue: !msg.redelivered });
    this.host.reportError(
      new ClientError(
        ClientErrorCode.HandlerFailed,
        `the handler of consumer '${this.tag}' on queue '${this.queue}' failed: ${err instanceof Error ? err.message : String(err)}; ` +
          `the message was ${msg.redelivered ? 'rejected' : 'requeued once'} (pass onError to decide yourself)`,
        { cause: err },
      ),
    );
  }

  private handOut(msg: Message): void {
    if (this.options.noAck === true) this.host.autoAck(msg);
  }

  next(): Promise<IteratorResult<Message>> {
    const msg = this.buffer.shift();
    if (msg !== undefined) {
      this.handOut(msg);
      return Promise.resolve({ value: msg, done: false });
    }
    if (this.ended) {
      return this.endError !== null
        ? Promise.reject(this.endError)
        : Promise.resolve({ value: undefined, done: true });
    }
    if (this.handler !== null) {
      return Promise.reject(
        new ClientError(
          ClientErrorCode.InvalidArgument,
          `consumer '${this.tag}' delivers to a callback; consume without one to iterate`,
        ),
      );
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Leaving a for-await loop: cancel, and requeue what the loop did not take. */
  async return(): Promise<IteratorResult<Message>> {
    if (!this.ended) await this.cancel().catch(() => undefined);
    this.requeueBuffered();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** @internal the connection dropped: the broker requeues what it delivered, so drop the buffer. */
  sessionLost(): void {
    this.active = false;
    this.buffer.clear();
  }

  /** @internal a queue rename after a reconnect. */
  rename(from: string, to: string): void {
    if (this.queue === from) this.queue = to;
  }

  /** @internal the consumer stopped; waiting iterators finish (or throw `error`). */
  end(error: Error | null, channelUsable: boolean): void {
    if (this.ended) return;
    this.ended = true;
    this.active = false;
    this.endError = error;
    if (channelUsable) this.requeueBuffered();
    else this.buffer.clear();
    for (let w = this.waiters.shift(); w !== undefined; w = this.waiters.shift()) {
      if (error !== null) w.reject(error);
      else w.resolve({ value: undefined, done: true });
    }
    this.resolveClosed(error);
  }

  private requeueBuffered(): void {
    for (let m = this.buffer.shift(); m !== undefined; m = this.buffer.shift())
      this.host.requeue(m);
  }
}

export function consumerCancelledError(c: Consumer): ClientError {
  return new ClientError(
    ClientErrorCode.ConsumerCancelled,
    `the broker cancelled consumer '${c.tag}' of queue '${c.queue}' (the queue was probably deleted); consume again once it exists`,
  );
}
