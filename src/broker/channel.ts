import { Method, amqpErrors } from '../protocol/index.js';
import type { BasicPublish } from '../protocol/index.js';
import type { BlobWriter } from '../store/blob-store.js';
import { Deque } from '../util/deque.js';
import type { Connection } from './connection.js';
import type { Consumer, ConsumerChannel } from './consumer.js';
import { RouteOutcome } from './handlers/basic.js';
import type { Message } from './message.js';
import type { Queue, QueueEntry } from './queue.js';

export const ChannelState = {
  Open: 'open',
  /** The broker sent channel.close and waits for close-ok; everything else is dropped. */
  Closing: 'closing',
  Closed: 'closed',
} as const;
export type ChannelState = (typeof ChannelState)[keyof typeof ChannelState];

/** A publish whose content is still arriving. */
export interface PendingContent {
  method: BasicPublish;
  header: Buffer | null;
  body: Buffer | null;
  /** A large body going straight to a blob file instead of `body`. */
  writer: BlobWriter | null;
  received: number;
}

interface PendingConfirm {
  seq: number;
  /** Commit generation that makes it durable; 0 when it waits only for those before it. */
  generation: number;
  nack: boolean;
}

/** Work buffered by a transactional channel until tx.commit. */
export type TxOp =
  | { kind: 'publish'; method: BasicPublish; message: Message }
  | { kind: 'ack'; tag: number; multiple: boolean }
  | { kind: 'nack'; tag: number; multiple: boolean; requeue: boolean };

/**
 * Per-channel state: consumers, unacknowledged deliveries, prefetch, confirm and tx mode, and the
 * publish being assembled. Method handlers in handlers/ drive it.
 */
export class Channel implements ConsumerChannel {
  readonly id: number;
  readonly connection: Connection;
  state: ChannelState = ChannelState.Open;
  /** channel.flow from the client: false pauses deliveries. */
  flowActive = true;

  readonly consumers = new Map<string, Consumer>();
  /** Delivered and not settled, in delivery-tag order (acked entries may linger as holes). */
  readonly unacked = new Deque<QueueEntry>();
  private liveUnacked = 0;
  /** Unacked deliveries to consumers (basic.get excluded), for the global prefetch. */
  consumerUnacked = 0;
  private deliveryTag = 0;
  /** basic.qos prefetch-count for consumers created from now on (global=false). */
  consumerPrefetch = 0;
  /** basic.qos prefetch-count shared by the channel's consumers (global=true). */
  channelPrefetch = 0;

  lastDeclaredQueue = '';
  /** Direct reply-to: the pseudo-consumer's tag and this channel's reply address. */
  replyConsumerTag: string | null = null;
  replyKey: string | null = null;
  pending: PendingContent | null = null;

  confirmMode = false;
  publishSeq = 0;
  /** Publishes not yet confirmable: waiting for a commit, or behind one that is. */
  private readonly pendingConfirms = new Deque<PendingConfirm>();
  private awaitingCommit = false;
  /** Highest publish sequence number resolved and not yet acknowledged to the client. */
  confirmUpTo = 0;
  confirmSent = 0;
  /**
   * Confirm latency, measured once per confirm batch (no per-message clock reads): when the
   * oldest unconfirmed publish arrived (0 = none waiting), and the batches measured so far.
   */
  confirmWaitSince = 0;
  readonly confirmLatency = { count: 0, totalMs: 0 };

  txMode = false;
  txOps: TxOp[] = [];

  /** Routing scratch space reused by every publish on this channel. */
  readonly routed: Queue[] = [];

  constructor(id: number, connection: Connection) {
    this.id = id;
    this.connection = connection;
  }

  get unackedCount(): number {
    return this.liveUnacked;
  }

  nextDeliveryTag(): number {
    return ++this.deliveryTag;
  }

  // ---------------------------------------------------------------- delivery

  canDeliver(consumer: Consumer): boolean {
    if (this.state !== ChannelState.Open || !this.flowActive) return false;
    if (!this.connection.canWrite()) return false;
    if (!consumer.noAck && this.channelPrefetch !== 0) {
      return this.consumerUnacked < this.channelPrefetch;
    }
    return true;
  }

  deliver(consumer: Consumer, entry: QueueEntry): void {
    const tag = ++this.deliveryTag;
    if (!consumer.noAck) {
      entry.deliveryTag = tag;
      entry.consumer = consumer;
      consumer.unacked++;
      this.consumerUnacked++;
      this.track(entry);
    }
    const m = entry.message;
    this.connection.sendDeliver(
      this.id,
      consumer.tag,
      tag,
      entry.redelivered,
      m.exchange,
      m.routingKey,
      m,
    );
    if (consumer.noAck) entry.queue.forget(entry);
  }

  /** Record an unacknowledged entry (from a consumer or basic.get). */
  track(entry: QueueEntry): void {
    if (entry.deliveryTag === 0) entry.deliveryTag = this.deliveryTag;
    entry.settled = false;
    entry.queue.unackedCount++;
    this.unacked.push(entry);
    this.liveUnacked++;
  }

  consumerCancelledByBroker(consumer: Consumer): void {
    this.consumers.delete(consumer.tag);
    if (!this.connection.capabilities.consumerCancelNotify) return;
    // Sent after the reply to whatever removed the queue (RabbitMQ sends queue.delete-ok first).
    process.nextTick(() => {
      if (this.state !== ChannelState.Open) return;
      this.connection.sendMethod(this.id, {
        id: 0x003c001e, // basic.cancel
        consumerTag: consumer.tag,
        nowait: true,
      });
    });
  }

  // ---------------------------------------------------------------- acknowledgements

  /** basic.ack: settle one delivery, or all up to a tag (0 with multiple = everything). */
  ack(tag: number, multiple: boolean): void {
    const entries = this.collect(tag, multiple);
    for (const e of entries) {
      this.settle(e);
      e.queue.acked(e);
    }
    this.compact();
  }

  /** basic.nack / basic.reject: requeue or discard. */
  reject(tag: number, multiple: boolean, requeue: boolean): void {
    const entries = this.collect(tag, multiple);
    for (const e of entries) this.settle(e);
    this.compact();
    if (requeue) this.requeueEntries(entries);
    else for (const e of entries) e.queue.discard(e, 'rejected');
  }

  /** Requeue every unacknowledged delivery (basic.recover, channel or connection close). */
  requeueAll(): void {
    const entries: QueueEntry[] = [];
    for (const e of this.unacked) {
      if (e.settled) continue;
      this.settle(e);
      entries.push(e);
    }
    this.unacked.clear();
    this.liveUnacked = 0;
    this.requeueEntries(entries);
  }

  private requeueEntries(entries: QueueEntry[]): void {
    if (entries.length === 0) return;
    if (entries.length === 1) {
      entries[0]!.queue.requeue(entries);
      return;
    }
    const byQueue = new Map<Queue, QueueEntry[]>();
    for (const e of entries) {
      const list = byQueue.get(e.queue);
      if (list === undefined) byQueue.set(e.queue, [e]);
      else list.push(e);
    }
    for (const [q, list] of byQueue) q.requeue(list);
  }

  /**
   * The unsettled entries an ack/nack names. The tag itself must be outstanding, as RabbitMQ
   * requires; otherwise 406 PRECONDITION_FAILED "unknown delivery tag".
   */
  private collect(tag: number, multiple: boolean): QueueEntry[] {
    const q = this.unacked;
    if (multiple && tag === 0) {
      const all: QueueEntry[] = [];
      for (const e of q) if (!e.settled) all.push(e);
      return all;
    }
    const idx = this.indexOf(tag);
    if (idx < 0) throw amqpErrors.preconditionFailed(`unknown delivery tag ${tag}`);
    if (!multiple) return [q.at(idx)!];
    const out: QueueEntry[] = [];
    for (let i = 0; i <= idx; i++) {
      const e = q.at(i)!;
      if (!e.settled) out.push(e);
    }
    return out;
  }

  /** Binary search by delivery tag; -1 when absent or already settled. */
  private indexOf(tag: number): number {
    const q = this.unacked;
    let lo = 0;
    let hi = q.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const e = q.at(mid)!;
      if (e.deliveryTag === tag) return e.settled ? -1 : mid;
      if (e.deliveryTag < tag) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  private settle(e: QueueEntry): void {
    e.settled = true;
    this.liveUnacked--;
    e.queue.unackedCount--;
    const c = e.consumer;
    if (c !== null) {
      c.unacked--;
      this.consumerUnacked--;
      e.consumer = null;
      if (this.channelPrefetch !== 0) {
        for (const other of this.consumers.values()) other.queue.scheduleDrain();
      } else if (!c.cancelled) {
        c.queue.scheduleDrain();
      }
    }
  }

  /** Drop settled entries: from the front always, and everywhere when holes pile up. */
  private compact(): void {
    const q = this.unacked;
    while (q.length > 0 && q.peek()!.settled) q.shift();
    if (q.length > 64 && q.length > this.liveUnacked * 2) {
      const live = q.toArray().filter((e) => !e.settled);
      q.clear();
      for (const e of live) q.push(e);
    }
  }

  // ---------------------------------------------------------------- confirms

  /**
   * A publish in confirm mode was handled. Acks go out with the next flush, coalesced with
   * `multiple`; a publish written to disk is confirmed only after the commit that syncs it, and
   * the ones after it wait their turn so an ack never covers an unsynced message.
   */
  publishHandled(seq: number, outcome: RouteOutcome): void {
    const commit = this.connection.host.commit;
    const needsCommit = outcome === RouteOutcome.NeedsCommit && commit !== null;
    const nack = outcome === RouteOutcome.Refused;
    if (this.pendingConfirms.length === 0 && !needsCommit && !nack) {
      this.confirmUpTo = seq;
      this.connection.scheduleConfirms(this);
      return;
    }
    this.pendingConfirms.push({
      seq,
      generation: needsCommit ? commit.nextGeneration : 0,
      nack,
    });
    if (needsCommit) this.awaitCommit();
    this.resolveConfirms(commit?.completedGeneration ?? 0, null);
  }

  private awaitCommit(): void {
    if (this.awaitingCommit) return;
    const commit = this.connection.host.commit!;
    this.awaitingCommit = true;
    commit.afterNextCommit((err) => {
      this.awaitingCommit = false;
      if (this.state !== ChannelState.Open) return;
      this.resolveConfirms(commit.completedGeneration, err);
      const front = this.pendingConfirms.peek();
      if (front !== undefined && front.generation > commit.completedGeneration) this.awaitCommit();
    });
  }

  /** Confirm (or nack) every pending publish whose commit is done, in order. */
  private resolveConfirms(completed: number, err: Error | null): void {
    const pending = this.pendingConfirms;
    let changed = false;
    for (;;) {
      const front = pending.peek();
      if (front === undefined || front.generation > completed) break;
      pending.shift();
      changed = true;
      if (front.nack || (err !== null && front.generation !== 0)) {
        // Acks before it go first, then the nack alone, so no `multiple` ever spans it.
        if (this.confirmUpTo > this.confirmSent) {
          this.connection.sendMethod(this.id, {
            id: Method.BasicAck,
            deliveryTag: this.confirmUpTo,
            multiple: this.confirmUpTo - this.confirmSent > 1,
          });
        }
        this.connection.sendMethod(this.id, {
          id: Method.BasicNack,
          deliveryTag: front.seq,
          multiple: false,
          requeue: false,
        });
        this.confirmUpTo = front.seq;
        this.confirmSent = front.seq;
      } else {
        this.confirmUpTo = front.seq;
      }
    }
    if (changed) this.connection.scheduleConfirms(this);
  }

  // ---------------------------------------------------------------- teardown

  /** Forget buffered transaction work, releasing the large bodies it held. */
  dropTxOps(): void {
    for (const op of this.txOps) if (op.kind === 'publish') op.message.blob?.release();
    this.txOps = [];
  }

  /** Release everything the channel holds: requeue unacked, cancel consumers. */
  cleanup(): void {
    this.state = ChannelState.Closed;
    this.pending?.writer?.abort();
    this.pending = null;
    if (this.replyKey !== null) this.connection.host.replyChannels.delete(this.replyKey);
    this.replyConsumerTag = null;
    this.dropTxOps();
    const consumers = [...this.consumers.values()];
    this.consumers.clear();
    // Requeue before removing consumers so an auto-delete queue is deleted with its messages.
    this.requeueAll();
    for (const c of consumers) {
      c.cancelled = true;
      c.queue.removeConsumer(c);
    }
  }
}
