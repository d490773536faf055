import type { FieldTable } from '../protocol/index.js';
import type { Queue, QueueEntry } from './queue.js';

/** What a consumer needs from the channel it belongs to. */
export interface ConsumerChannel {
  readonly id: number;
  canDeliver(consumer: Consumer): boolean;
  deliver(consumer: Consumer, entry: QueueEntry): void;
  /** The broker ended the consumer (its queue was deleted): tell the client. */
  consumerCancelledByBroker?(consumer: Consumer): void;
}

export interface ConsumerOptions {
  noAck: boolean;
  exclusive: boolean;
  /** basic.qos prefetch-count in force (per consumer) when the consumer was created; 0 = none. */
  prefetch: number;
  arguments: FieldTable;
}

export class Consumer {
  readonly tag: string;
  readonly channel: ConsumerChannel;
  readonly queue: Queue;
  readonly noAck: boolean;
  readonly exclusive: boolean;
  readonly prefetch: number;
  readonly arguments: FieldTable;
  /** x-priority: higher-priority consumers with credit get messages first (RabbitMQ's rule). */
  readonly priority: number;
  unacked = 0;
  cancelled = false;
  /** Registration order on its queue (single active consumer fails over in this order). */
  order = 0;

  constructor(tag: string, channel: ConsumerChannel, queue: Queue, options: ConsumerOptions) {
    this.tag = tag;
    this.channel = channel;
    this.queue = queue;
    this.noAck = options.noAck;
    this.exclusive = options.exclusive;
    this.prefetch = options.prefetch;
    this.arguments = options.arguments;
    const p = options.arguments['x-priority'];
    this.priority = typeof p === 'number' && Number.isInteger(p) ? p : 0;
  }

  /** Has credit (prefetch) and a channel that can take a delivery now. */
  canTake(): boolean {
    if (!this.noAck && this.prefetch !== 0 && this.unacked >= this.prefetch) return false;
    return this.channel.canDeliver(this);
  }

  deliver(entry: QueueEntry): void {
    this.channel.deliver(this, entry);
  }
}
