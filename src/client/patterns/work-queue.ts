import type { CallOptions } from '../call-options.js';
import type { Channel, QueueOptions } from '../channel.js';
import type { Connection } from '../connection.js';
import type { Consumer } from '../consumer.js';
import type { Body, Message, PublishOptions } from '../message.js';
import { ackingHandler } from './acking-handler.js';
import type { Handler } from './acking-handler.js';

export interface WorkerOptions extends CallOptions {
  /** Tasks a worker holds at once (default 1: fair dispatch, a busy worker gets no more). */
  prefetch?: number | undefined;
  onError?: (error: unknown, message: Message) => void;
}

/**
 * Work queue (competing consumers): tasks go to a durable queue as persistent, confirmed
 * messages; each worker takes `prefetch` at a time and a task is acknowledged when its handler
 * completes, so a worker that dies loses nothing: its tasks go to the others.
 */
export class WorkQueue {
  readonly name: string;
  private readonly conn: Connection;
  private readonly channel: Channel;
  private readonly workers = new Set<Channel>();

  private constructor(conn: Connection, channel: Channel, name: string) {
    this.conn = conn;
    this.channel = channel;
    this.name = name;
  }

  /** @internal use `connection.workQueue(name)`. */
  static async open(
    conn: Connection,
    name: string,
    options: QueueOptions = {},
  ): Promise<WorkQueue> {
    const ch = await conn.channel({ confirm: true });
    await ch.queueDeclare(name, { durable: true, ...options });
    return new WorkQueue(conn, ch, name);
  }

  /** Add a task; resolves when the broker has it (persistent and confirmed). */
  send(body: Body, options: PublishOptions = {}): Promise<void> {
    return this.channel.publish('', this.name, body, { persistent: true, ...options });
  }

  /** Start a worker: `handler` runs for each task; the task is acked when it completes. */
  async work(handler: Handler, options: WorkerOptions = {}): Promise<Consumer> {
    const ch = await this.conn.channel({ prefetch: options.prefetch ?? 1 });
    this.workers.add(ch);
    ch.once('close', () => this.workers.delete(ch));
    return ch.consume(this.name, ackingHandler(handler), {
      signal: options.signal,
      timeout: options.timeout,
      ...(options.onError !== undefined ? { onError: options.onError } : {}),
    });
  }

  /** Stop the workers and close the channels (the queue and its tasks stay). */
  async close(): Promise<void> {
    await Promise.all([...this.workers].map((c) => c.close()));
    await this.channel.close();
  }
}
