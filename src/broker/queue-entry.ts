import type { StoredRef } from '../store/queue-store.js';
import type { Consumer } from './consumer.js';
import type { Message } from './message.js';
import type { Queue } from './queue.js';

/**
 * One message in one queue. The same Message may sit in several queues (fanout); each has its
 * own entry, which also records where it is while unacknowledged and where it is on disk.
 */
export class QueueEntry {
  readonly message: Message;
  readonly queue: Queue;
  /** Position in the queue's publish order; requeued entries go back in this order. */
  readonly seq: number;
  /** Priority lane (0 unless the queue has x-max-priority). */
  readonly lane: number;
  /** When the message expires (ms since the epoch), 0 for never. */
  readonly expiresAt: number;
  /** Where the message is on disk, if it is. */
  readonly ref: StoredRef | null;
  /** Stored as persistent: releasing it writes an ack so it does not come back after a restart. */
  readonly persistent: boolean;
  redelivered: boolean;
  /** Set while the entry is delivered and unacknowledged. */
  deliveryTag: number;
  consumer: Consumer | null;
  settled: boolean;

  constructor(
    message: Message,
    queue: Queue,
    seq: number,
    lane: number,
    expiresAt: number,
    ref: StoredRef | null,
    persistent: boolean,
  ) {
    this.message = message;
    this.queue = queue;
    this.seq = seq;
    this.lane = lane;
    this.expiresAt = expiresAt;
    this.ref = ref;
    this.persistent = persistent;
    this.redelivered = false;
    this.deliveryTag = 0;
    this.consumer = null;
    this.settled = false;
  }

  /**
   * A fresh entry for a requeued message: the old object may linger, settled, in a channel's
   * unacked list, where reusing it would bring it back to life under its next delivery tag.
   */
  requeued(): QueueEntry {
    const e = new QueueEntry(
      this.message,
      this.queue,
      this.seq,
      this.lane,
      this.expiresAt,
      this.ref,
      this.persistent,
    );
    e.redelivered = true;
    return e;
  }
}
