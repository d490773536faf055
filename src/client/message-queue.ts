import { guard } from './call-options.js';
import type { CallOptions } from './call-options.js';
import type { Channel, QueueOptions } from './channel.js';
import type { Connection } from './connection.js';
import type { Consumer, MessageHandler } from './consumer.js';
import type { Body, Message, PublishOptions } from './message.js';

export interface MessageQueueOptions extends QueueOptions {
  /** put() resolves when the broker confirms the message (default true). */
  confirm?: boolean | undefined;
}

export interface TakeOptions extends CallOptions {
  /** Settle the message on receipt (at-most-once); by default the caller acks it. */
  noAck?: boolean | undefined;
}

export interface NotifyOptions extends CallOptions {
  /** Messages handed to the handler and not yet acked, at most (default 1). */
  prefetch?: number | undefined;
  /** Settle each message as it is handed over; by default the handler acks it. */
  noAck?: boolean | undefined;
  /** Handler errors; see ConsumeOptions.onError. */
  onError?: (error: unknown, message: Message) => void;
}

/**
 * The message-queue interface of classic MOM on one queue: `put` appends, `get` blocks until a
 * message is there (with timeout/AbortSignal), `poll` never blocks, `notify` installs a handler
 * called as messages arrive. Acknowledgement is explicit: each message is `ack()`ed (or
 * `nack()`ed) by the application, unless it asked for `noAck`.
 */
export class MessageQueue {
  readonly name: string;
  readonly channel: Channel;

  private constructor(channel: Channel, name: string) {
    this.channel = channel;
    this.name = name;
  }

  /** @internal use `connection.queue(name)`. */
  static async open(
    conn: Connection,
    name: string,
    options: MessageQueueOptions = {},
  ): Promise<MessageQueue> {
    const ch = await conn.channel({ confirm: options.confirm ?? true });
    try {
      // amq.* names are the broker's (server-named queues): they can only be checked, not declared.
      const info = name.startsWith('amq.')
        ? await ch.queueCheck(name, options)
        : await ch.queueDeclare(name, options);
      return new MessageQueue(ch, info.queue);
    } catch (err) {
      await ch.close().catch(() => undefined);
      throw err;
    }
  }

  /** Append a message; resolves when the broker has it (confirmed, unless `confirm: false`). */
  put(body: Body, options?: PublishOptions): Promise<void> {
    return this.channel.publish('', this.name, body, options);
  }

  /** The next message, or null at once if the queue is empty. */
  poll(options: TakeOptions = {}): Promise<Message | null> {
    return this.channel.get(this.name, options);
  }

  /**
   * The next message, waiting for one to arrive if the queue is empty. Rejects with
   * WARREN_ERR_TIMEOUT / WARREN_ERR_ABORTED when `timeout` passes or `signal` fires first.
   */
  async get(options: TakeOptions = {}): Promise<Message> {
    const ready = await this.poll({
      noAck: options.noAck,
      signal: options.signal,
      timeout: options.timeout,
    });
    if (ready !== null) return ready;
    return new Promise<Message>((resolve, reject) => {
      let done = false;
      let consumer: Consumer | null = null;
      const stop = (): void => {
        if (consumer !== null) void consumer.cancel().catch(() => undefined);
      };
      const disarm = guard(options, `get from queue '${this.name}'`, (err) => {
        done = true;
        stop();
        reject(err);
      });
      if (done) return;
      // A consumer with a prefetch of one: the broker sends exactly one message when it comes.
      const onMessage = (msg: Message): void => {
        if (done) {
          msg.nack({ requeue: true });
          return;
        }
        done = true;
        disarm();
        stop();
        if (options.noAck === true) msg.ack();
        resolve(msg);
      };
      this.channel.consume(this.name, onMessage, { prefetch: 1 }).then(
        (c) => {
          consumer = c;
          if (done) stop();
        },
        (err: Error) => {
          if (done) return;
          done = true;
          disarm();
          reject(err);
        },
      );
    });
  }

  /**
   * Call `handler` for each message as it arrives, until the returned consumer is cancelled.
   * At most `prefetch` (default 1) messages are handed over and not yet acked.
   */
  notify(handler: MessageHandler, options: NotifyOptions = {}): Promise<Consumer> {
    const noAck = options.noAck === true;
    const wrapped: MessageHandler = noAck
      ? (msg) => {
          msg.ack();
          return handler(msg);
        }
      : handler;
    const consumeOptions = {
      prefetch: options.prefetch ?? 1,
      signal: options.signal,
      timeout: options.timeout,
      ...(options.onError !== undefined ? { onError: options.onError } : {}),
    };
    return this.channel.consume(this.name, wrapped, consumeOptions);
  }

  /** Messages ready in the queue (not counting those delivered and unacked). */
  async size(options?: CallOptions): Promise<number> {
    return (await this.channel.queueCheck(this.name, options)).messageCount;
  }

  /** Remove every ready message; resolves with how many. */
  purge(options?: CallOptions): Promise<number> {
    return this.channel.queuePurge(this.name, options);
  }

  /** Delete the queue and close this handle. */
  async delete(options?: CallOptions): Promise<number> {
    const n = await this.channel.queueDelete(this.name, options);
    await this.channel.close();
    return n;
  }

  /** Close the handle (the queue stays). Unacked messages taken through it go back to the queue. */
  close(): Promise<void> {
    return this.channel.close();
  }
}
