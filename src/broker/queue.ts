import type { FieldTable } from '../protocol/index.js';
import type { Blob, BlobStore } from '../store/blob-store.js';
import type { QueueStore, TailRecord } from '../store/queue-store.js';
import { RecordFlag } from '../store/record.js';
import type { Binding } from './binding.js';
import type { Consumer } from './consumer.js';
import type { MemoryBudget } from './memory-budget.js';
import { Message } from './message.js';
import { QueueEntry } from './queue-entry.js';
import { Overflow, parseExpiration, queueFeatures } from './queue-features.js';
import type { QueueFeatures } from './queue-features.js';
import { ReadyList } from './ready-list.js';

export { QueueEntry } from './queue-entry.js';

/** The connection that owns an exclusive queue (only what the queue needs to know of it). */
export interface QueueOwner {
  readonly id: number;
}

export interface QueueOptions {
  durable: boolean;
  exclusive: boolean;
  autoDelete: boolean;
  arguments: FieldTable;
  owner: QueueOwner | null;
}

export interface QueueStats {
  published: number;
  delivered: number;
  redelivered: number;
  acked: number;
  got: number;
  discarded: number;
  /** Of `delivered`, those to no-ack consumers; of `got`, those without ack; empty basic.gets. */
  deliveredNoAck: number;
  gotNoAck: number;
  getEmpty: number;
  expired: number;
  deadLettered: number;
  rejectedPublishes: number;
}

export type DeathReason = 'rejected' | 'expired' | 'maxlen';

/** Calls a queue makes upward when something happens to it. */
export interface QueueEvents {
  /** The queue has no consumers left after having had some (auto-delete). */
  onLastConsumerGone(queue: Queue): void;
  /** A message left the queue without an ack; route it to the dead-letter exchange if any. */
  deadLetter(queue: Queue, message: Message, reason: DeathReason): void;
  /** x-expires: the queue has been unused for its expiry period. */
  unused(queue: Queue): void;
}

/** What the broker lends a queue: the memory budget and, with a data dir, disk. */
export interface QueueResources {
  budget: MemoryBudget;
  /** Opens the store of a priority lane; null when the broker keeps nothing on disk. */
  openStore: ((lane: number) => QueueStore) | null;
  /** Names the directory of a durable queue's messages (null for other queues). */
  storageId: string | null;
  /** Where large bodies live (to resolve the references in recovered records). */
  blobs?: BlobStore | null;
}

export const PublishResult = {
  /** Taken, in memory only. */
  Accepted: 0,
  /** Taken and written to disk as persistent: a publisher confirm waits for the next commit. */
  Stored: 1,
  /** Refused by the queue's length limit (x-overflow reject-publish): nack it. */
  Rejected: 2,
} as const;
export type PublishResult = (typeof PublishResult)[keyof typeof PublishResult];

const EMPTY = Buffer.alloc(0);

/** Deliveries made by one drain before yielding to I/O. */
const DRAIN_BUDGET = 4096;
/** Each queue keeps at least this many bytes in memory before paging to disk. */
const MIN_HEAD_BYTES = 256 * 1024;

/**
 * A queue: its ready messages (one ReadyList, or one per priority level), the consumers it
 * feeds, and RabbitMQ's per-queue features (TTL, dead-lettering, length limits, priorities,
 * single active consumer, auto-delete and x-expires).
 *
 * A published message goes straight to a consumer with credit when nothing is waiting (no
 * enqueue at all); otherwise it waits until a consumer gains credit (ack, qos, socket drain)
 * and the queue drains. Persistent messages in a durable queue are written to the queue's
 * store as they arrive; when memory is short, new messages are kept only on disk.
 */
export class Queue {
  readonly name: string;
  readonly vhost: string;
  readonly durable: boolean;
  readonly exclusive: boolean;
  readonly autoDelete: boolean;
  readonly arguments: FieldTable;
  readonly features: QueueFeatures;
  readonly storageId: string | null;
  private readonly blobs: BlobStore | null;
  owner: QueueOwner | null;

  /** Ready messages by priority lane (index = priority; one lane without x-max-priority). */
  readonly lanes: ReadyList[];
  readonly consumers: Consumer[] = [];
  /** Bindings that point at this queue, so deleting it removes them. */
  readonly bindings = new Set<Binding>();
  readonly stats: QueueStats = {
    published: 0,
    delivered: 0,
    redelivered: 0,
    acked: 0,
    got: 0,
    discarded: 0,
    deliveredNoAck: 0,
    gotNoAck: 0,
    getEmpty: 0,
    expired: 0,
    deadLettered: 0,
    rejectedPublishes: 0,
  };
  /** Delivered, not yet acknowledged. */
  unackedCount = 0;
  routeMark = 0;
  deleted = false;
  hadConsumers = false;
  exclusiveConsumer: Consumer | null = null;
  /** x-single-active-consumer: the one consumer that receives. */
  activeConsumer: Consumer | null = null;

  private nextSeq = 1;
  private nextConsumerOrder = 1;
  private rr = 0;
  /** Consumers differ in priority: delivery goes by priority level (see nextByPriority). */
  private prioritised = false;
  private readonly rrByPriority = new Map<number, number>();
  private drainScheduled = false;
  private readonly events: QueueEvents;
  /** Some ready message may carry an expiry. */
  private mayExpire: boolean;
  private expiryTimer: NodeJS.Timeout | null = null;
  private expiryAt = 0;
  private unusedTimer: NodeJS.Timeout | null = null;

  constructor(
    vhost: string,
    name: string,
    options: QueueOptions,
    events: QueueEvents,
    resources: QueueResources,
  ) {
    this.vhost = vhost;
    this.name = name;
    this.durable = options.durable;
    this.exclusive = options.exclusive;
    this.autoDelete = options.autoDelete;
    this.arguments = options.arguments;
    this.owner = options.owner;
    this.events = events;
    this.features = queueFeatures(options.arguments);
    this.storageId = resources.storageId;
    this.blobs = resources.blobs ?? null;
    this.mayExpire = this.features.messageTtl !== null;
    const openStore = resources.openStore;
    const lanes = this.features.maxPriority + 1;
    this.lanes = [];
    for (let i = 0; i < lanes; i++) {
      this.lanes.push(
        new ReadyList(
          openStore === null ? null : () => openStore(i),
          resources.budget,
          (r) => this.entryFromDisk(r, i),
          resources.blobs ?? null,
        ),
      );
    }
    this.resetUnusedTimer();
  }

  get messageCount(): number {
    if (this.lanes.length === 1) return this.lanes[0]!.length;
    let n = 0;
    for (const l of this.lanes) n += l.length;
    return n;
  }

  /** Body bytes of the ready messages (in memory and on disk). */
  get readyBytes(): number {
    let n = 0;
    for (const l of this.lanes) n += l.bodyBytes;
    return n;
  }

  /** Body bytes of the ready messages held in memory. */
  get memoryBytes(): number {
    let n = 0;
    for (const l of this.lanes) n += l.headBytes;
    return n;
  }

  get consumerCount(): number {
    return this.consumers.length;
  }

  /** Load what the store kept from before a restart. Returns the number of messages. */
  recover(): number {
    let count = 0;
    let maxSeq = 0;
    for (const l of this.lanes) {
      const r = l.recover();
      count += r.count;
      if (r.maxSeq > maxSeq) maxSeq = r.maxSeq;
    }
    this.nextSeq = maxSeq + 1;
    if (count > 0) this.mayExpire = true;
    return count;
  }

  // ---------------------------------------------------------------- publishing

  /** Accept a routed message. */
  publish(message: Message, now: number): PublishResult {
    this.stats.published++;
    const f = this.features;
    if (
      f.overflow !== Overflow.DropHead &&
      (f.maxLength !== null || f.maxLengthBytes !== null) &&
      this.wouldOverflow(message)
    ) {
      // RabbitMQ counts ready messages only, and refuses even when a consumer is waiting.
      this.stats.rejectedPublishes++;
      if (f.overflow === Overflow.RejectPublishDlx) this.deadLetter(message, 'maxlen');
      return PublishResult.Rejected;
    }
    let expiresAt = 0;
    if (f.messageTtl !== null) expiresAt = now + f.messageTtl;
    const expiration = message.expiration;
    if (expiration !== undefined) {
      const ms = parseExpiration(expiration);
      if (typeof ms === 'number' && (expiresAt === 0 || now + ms < expiresAt)) expiresAt = now + ms;
      this.mayExpire = true;
    }
    const persistent = this.durable && message.persistent && this.lanes[0]!.hasDisk;
    const laneIndex = this.laneOf(message);
    const lane = this.lanes[laneIndex]!;
    const seq = this.nextSeq++;

    if (this.consumers.length > 0 && this.messageCount === 0) {
      const c = this.nextConsumer();
      if (c !== null) {
        const ref = persistent
          ? lane.disk()!.append(this.fields(message, seq, expiresAt, true), false)
          : null;
        message.blob?.retain();
        this.deliverTo(
          c,
          new QueueEntry(message, this, seq, laneIndex, expiresAt, ref, persistent),
        );
        return persistent ? PublishResult.Stored : PublishResult.Accepted;
      }
    }
    if (expiresAt !== 0 && expiresAt <= now) {
      // A TTL that has already run out (x-message-ttl 0): only a waiting consumer could take it.
      this.expireMessage(message);
      return PublishResult.Accepted;
    }
    message.blob?.retain();
    if (lane.shouldPage(MIN_HEAD_BYTES)) {
      lane.appendToTail(this.fields(message, seq, expiresAt, persistent), message.blob);
    } else {
      const ref = persistent
        ? lane.disk()!.append(this.fields(message, seq, expiresAt, true), false)
        : null;
      lane.push(new QueueEntry(message, this, seq, laneIndex, expiresAt, ref, persistent));
    }
    if (expiresAt !== 0) this.scheduleExpiry();
    if (f.maxLength !== null || f.maxLengthBytes !== null) this.dropHeadOverLimit(now);
    return persistent ? PublishResult.Stored : PublishResult.Accepted;
  }

  private fields(message: Message, seq: number, expiresAt: number, persistent: boolean) {
    const blob = message.blob;
    return {
      seq,
      expiresAt,
      flags: (persistent ? RecordFlag.Persistent : 0) | (blob !== null ? RecordFlag.External : 0),
      exchange: message.exchange,
      routingKey: message.routingKey,
      header: message.header,
      body: blob !== null ? blob.encodeRef() : message.body,
    };
  }

  /** An entry for a record read back from disk; null when its large body is gone. */
  private entryFromDisk(r: TailRecord, lane: number): QueueEntry | null {
    let blob: Blob | null = null;
    if ((r.flags & RecordFlag.External) !== 0) {
      blob = this.blobs?.get(r.body.toString('hex', 0, 8)) ?? null;
      if (blob === null) return null;
    }
    const e = new QueueEntry(
      new Message(r.exchange, r.routingKey, r.header, blob === null ? r.body : EMPTY, blob),
      this,
      r.seq,
      lane,
      r.expiresAt,
      r.ref,
      r.persistent,
    );
    e.redelivered = r.redelivered;
    return e;
  }

  private laneOf(message: Message): number {
    const max = this.lanes.length - 1;
    if (max === 0) return 0;
    const p = message.priority;
    return p > max ? max : p;
  }

  private wouldOverflow(message: Message): boolean {
    const f = this.features;
    if (f.maxLength !== null && this.messageCount + 1 > f.maxLength) return true;
    return f.maxLengthBytes !== null && this.readyBytes + message.bodySize > f.maxLengthBytes;
  }

  /** x-overflow drop-head: drop (and dead-letter) the oldest messages beyond the limits. */
  private dropHeadOverLimit(now: number): void {
    const f = this.features;
    while (
      (f.maxLength !== null && this.messageCount > f.maxLength) ||
      (f.maxLengthBytes !== null && this.readyBytes > f.maxLengthBytes)
    ) {
      const e = this.takeReady(now);
      if (e === undefined) return;
      this.discard(e, 'maxlen');
    }
  }

  // ---------------------------------------------------------------- taking and settling

  /** The next ready entry in delivery order, expiring those whose time has passed. */
  private takeReady(now: number): QueueEntry | undefined {
    const lanes = this.lanes;
    for (let i = lanes.length - 1; i >= 0; i--) {
      const lane = lanes[i]!;
      while (lane.length > 0) {
        const e = lane.shift();
        if (e === undefined) break;
        if (e.expiresAt !== 0 && e.expiresAt <= now) {
          this.discard(e, 'expired');
          continue;
        }
        return e;
      }
    }
    return undefined;
  }

  /** Take the next ready message (basic.get). */
  shift(noAck = false): QueueEntry | undefined {
    this.resetUnusedTimer();
    const entry = this.takeReady(this.mayExpire ? Date.now() : 0);
    if (entry !== undefined) {
      // As RabbitMQ: expired messages now at the head go first, so get-ok's count omits them.
      if (this.mayExpire) this.expireHeads();
      this.stats.got++;
      if (noAck) this.stats.gotNoAck++;
      if (entry.ref !== null) this.lanes[entry.lane]!.openedStore?.noteDelivered(entry.seq);
    } else {
      this.stats.getEmpty++;
    }
    return entry;
  }

  /**
   * The first `count` ready messages in delivery order, left in place (management's browse/peek);
   * messages kept on disk are read back for it.
   */
  peek(count: number): QueueEntry[] {
    const out: QueueEntry[] = [];
    for (let i = this.lanes.length - 1; i >= 0 && out.length < count; i--) {
      for (const e of this.lanes[i]!.peek(count - out.length)) out.push(e);
    }
    return out;
  }

  /** A consumer (or basic.get client) acknowledged the entry: forget it, on disk too. */
  acked(entry: QueueEntry): void {
    this.stats.acked++;
    this.release(entry);
  }

  /**
   * A message leaves the queue without being acknowledged: rejected without requeue, expired or
   * pushed out by a length limit. It is dead-lettered if the queue says where.
   */
  discard(entry: QueueEntry, reason: DeathReason): void {
    this.stats.discarded++;
    if (reason === 'expired') this.stats.expired++;
    this.release(entry);
    this.deadLetter(entry.message, reason);
  }

  private expireMessage(message: Message): void {
    this.stats.discarded++;
    this.stats.expired++;
    this.deadLetter(message, 'expired');
  }

  private deadLetter(message: Message, reason: DeathReason): void {
    if (this.features.deadLetterExchange === null) return;
    this.stats.deadLettered++;
    this.events.deadLetter(this, message, reason);
  }

  /** A message handed out without an ack (no-ack consumer or basic.get): forget it on disk. */
  forget(entry: QueueEntry): void {
    this.release(entry);
  }

  private release(entry: QueueEntry): void {
    if (entry.ref !== null && !this.deleted) {
      this.lanes[entry.lane]!.openedStore?.release(entry.ref, entry.persistent);
    }
    entry.message.blob?.release();
  }

  /**
   * Put unacknowledged entries back, ahead of newer messages and in their original order, with
   * the redelivered flag set (spec: basic.recover / channel close requeue).
   */
  requeue(entries: QueueEntry[]): void {
    if (this.deleted) return;
    entries.sort((a, b) => a.seq - b.seq);
    if (this.lanes.length === 1) {
      this.lanes[0]!.requeue(entries.map((e) => e.requeued()));
    } else {
      for (let i = 0; i < this.lanes.length; i++) {
        const own = entries.filter((e) => e.lane === i).map((e) => e.requeued());
        if (own.length > 0) this.lanes[i]!.requeue(own);
      }
    }
    if (this.mayExpire) this.scheduleExpiry();
    this.scheduleDrain();
  }

  /** Remove every ready message; returns how many. Unacknowledged messages are untouched. */
  purge(): number {
    let n = 0;
    for (const lane of this.lanes) n += lane.purge((e) => this.release(e));
    return n;
  }

  // ---------------------------------------------------------------- consumers

  addConsumer(c: Consumer): void {
    c.order = this.nextConsumerOrder++;
    // Kept in descending priority order, a newcomer after those of its own priority.
    const list = this.consumers;
    let at = list.length;
    while (at > 0 && list[at - 1]!.priority < c.priority) at--;
    list.splice(at, 0, c);
    this.prioritised = list[0]!.priority !== list[list.length - 1]!.priority;
    this.hadConsumers = true;
    if (c.exclusive) this.exclusiveConsumer = c;
    if (this.features.singleActiveConsumer && this.activeConsumer === null) this.activeConsumer = c;
    this.resetUnusedTimer();
    this.scheduleDrain();
  }

  removeConsumer(c: Consumer): void {
    const i = this.consumers.indexOf(c);
    if (i < 0) return;
    this.consumers.splice(i, 1);
    if (this.rr > i) this.rr--;
    const list = this.consumers;
    this.prioritised = list.length > 0 && list[0]!.priority !== list[list.length - 1]!.priority;
    if (this.exclusiveConsumer === c) this.exclusiveConsumer = null;
    if (this.activeConsumer === c) {
      // Fail over to the longest-waiting consumer.
      let next: Consumer | null = null;
      for (const other of list) if (next === null || other.order < next.order) next = other;
      this.activeConsumer = next;
      this.scheduleDrain();
    }
    if (this.consumers.length === 0 && this.autoDelete && this.hadConsumers && !this.deleted) {
      this.events.onLastConsumerGone(this);
      return;
    }
    this.resetUnusedTimer();
  }

  // ---------------------------------------------------------------- delivery

  /** Ask for a drain soon; cheap to call repeatedly (acks, qos, socket drain, new consumer). */
  scheduleDrain(): void {
    if (this.drainScheduled || this.deleted) return;
    if (this.consumers.length === 0 || this.messageCount === 0) return;
    this.drainScheduled = true;
    process.nextTick(drainQueue, this);
  }

  /** Deliver ready messages while some consumer has credit. */
  drain(): void {
    this.drainScheduled = false;
    if (this.deleted) return;
    const now = this.mayExpire ? Date.now() : 0;
    let budget = DRAIN_BUDGET;
    while (this.messageCount > 0) {
      if (budget-- === 0) {
        // Yield to I/O so a deep queue cannot starve other connections.
        this.drainScheduled = true;
        setImmediate(drainQueue, this);
        return;
      }
      const c = this.nextConsumer();
      if (c === null) return;
      const entry = this.takeReady(now);
      if (entry === undefined) return;
      this.deliverTo(c, entry);
    }
  }

  private deliverTo(c: Consumer, entry: QueueEntry): void {
    this.stats.delivered++;
    if (c.noAck) this.stats.deliveredNoAck++;
    if (entry.redelivered) this.stats.redelivered++;
    if (entry.ref !== null) this.lanes[entry.lane]!.openedStore?.noteDelivered(entry.seq);
    c.deliver(entry);
  }

  /** Round-robin over consumers, skipping those without credit. */
  private nextConsumer(): Consumer | null {
    const list = this.consumers;
    const n = list.length;
    if (n === 0) return null;
    if (this.exclusiveConsumer !== null) {
      return this.exclusiveConsumer.canTake() ? this.exclusiveConsumer : null;
    }
    if (this.features.singleActiveConsumer) {
      const a = this.activeConsumer;
      return a !== null && a.canTake() ? a : null;
    }
    if (this.prioritised) return this.nextByPriority();
    for (let k = 0; k < n; k++) {
      const i = (this.rr + k) % n;
      const c = list[i]!;
      if (c.canTake()) {
        this.rr = (i + 1) % n;
        return c;
      }
    }
    return null;
  }

  /** The highest priority level with a consumer that has credit; round-robin within a level. */
  private nextByPriority(): Consumer | null {
    const list = this.consumers;
    const n = list.length;
    let i = 0;
    while (i < n) {
      const p = list[i]!.priority;
      let end = i + 1;
      while (end < n && list[end]!.priority === p) end++;
      const size = end - i;
      const start = this.rrByPriority.get(p) ?? 0;
      for (let k = 0; k < size; k++) {
        const c = list[i + ((start + k) % size)]!;
        if (c.canTake()) {
          this.rrByPriority.set(p, (start + k + 1) % size);
          return c;
        }
      }
      i = end;
    }
    return null;
  }

  // ---------------------------------------------------------------- timers

  /** Expire messages at the head of each lane when their time comes, consumers or not. */
  private scheduleExpiry(): void {
    if (this.deleted) return;
    let next = 0;
    for (const lane of this.lanes) {
      const e = lane.first();
      if (e !== undefined && e.expiresAt !== 0 && (next === 0 || e.expiresAt < next)) {
        next = e.expiresAt;
      }
    }
    if (next === 0) return;
    if (this.expiryTimer !== null) {
      if (this.expiryAt <= next) return;
      clearTimeout(this.expiryTimer);
    }
    this.expiryAt = next;
    this.expiryTimer = setTimeout(
      () => {
        this.expiryTimer = null;
        this.expireHeads();
      },
      timerDelay(next - Date.now()),
    );
    this.expiryTimer.unref();
  }

  private expireHeads(): void {
    if (this.deleted) return;
    const now = Date.now();
    for (const lane of this.lanes) {
      for (;;) {
        const e = lane.first();
        if (e === undefined || e.expiresAt === 0 || e.expiresAt > now) break;
        lane.shift();
        this.discard(e, 'expired');
      }
    }
    this.scheduleExpiry();
  }

  /** x-expires: (re)start the unused-queue countdown; it runs only while nobody consumes. */
  resetUnusedTimer(): void {
    const ms = this.features.expires;
    if (ms === null || this.deleted) return;
    if (this.unusedTimer !== null) clearTimeout(this.unusedTimer);
    this.unusedTimer = null;
    if (this.consumers.length > 0) return;
    this.armUnusedTimer(Date.now() + ms);
  }

  private armUnusedTimer(deadline: number): void {
    this.unusedTimer = setTimeout(
      () => {
        this.unusedTimer = null;
        if (this.deleted || this.consumers.length > 0) return;
        // An expiry beyond a timer's range (~24.8 days) takes more than one timer.
        if (Date.now() < deadline) this.armUnusedTimer(deadline);
        else this.events.unused(this);
      },
      timerDelay(deadline - Date.now()),
    );
    this.unusedTimer.unref();
  }

  /** The queue is being deleted: stop timers and remove what it has on disk. */
  destroy(): void {
    this.deleted = true;
    if (this.expiryTimer !== null) clearTimeout(this.expiryTimer);
    if (this.unusedTimer !== null) clearTimeout(this.unusedTimer);
    for (const lane of this.lanes) lane.destroy();
  }

  /** Broker shutdown: flush and close files, keep them. */
  close(): void {
    if (this.expiryTimer !== null) clearTimeout(this.expiryTimer);
    if (this.unusedTimer !== null) clearTimeout(this.unusedTimer);
    for (const lane of this.lanes) lane.close();
  }
}

function drainQueue(q: Queue): void {
  q.drain();
}

/** Longest delay setTimeout honours; a longer one fires at once (with a warning). */
const MAX_TIMER_MS = 0x7fff_ffff;

function timerDelay(ms: number): number {
  return Math.min(MAX_TIMER_MS, Math.max(0, ms));
}
