/**
 * The replication stream. Every write a worker accepts is published to a fanout exchange that
 * copies it into every worker's replica queue, so once the broker confirms the publish no single
 * worker's death can lose it; each worker reads its own queue, which outlives its connection by
 * `replicaExpires` ms. Writes of one origin arrive in order; what the queue fails to deliver
 * (a purge, a deletion, writes made before the queue existed) shows up as a gap in the watermarks
 * and is left to anti-entropy.
 *
 * This side publishes the worker's writes until the broker confirms them, consumes its replica
 * queue (acknowledging in batches, optionally applying late for tests), subscribes again when
 * the queue is lost, and can wait until the queue has delivered everything published to it before
 * now: it sends itself a marker through the queue and waits for it to come back.
 */
import { randomBytes } from 'node:crypto';
import type { Channel, Connection, Message } from '../client/index.js';
import { Deque } from '../util/deque.js';
import type { KvNames } from './contracts.js';
import { WireType, decodeMarker, decodePeerNotify, encodeMarker } from './messages.js';
import type { Update } from './messages.js';
import { sleep } from './waits.js';
import { WorkerStoppedError } from './worker-stopped-error.js';

export interface ReplicaStreamOptions {
  /** The worker this stream belongs to: its queue is `names.replica(id)`. */
  id: string;
  names: KvNames;
  /** Ms the replica queue outlives the worker's connection. */
  replicaExpires: number;
  /** Testing: apply replicated writes this many ms late. */
  replicationDelay: number;
  /** A replicated write, this worker's own included, in the order the queue delivers it. */
  onUpdate: (u: Update) => void;
  /** The replica queue was lost, and is subscribed to again: whatever it held is gone. */
  onLost: () => Promise<void>;
  /** Whether the worker is stopping: retries give up, and nothing new starts. */
  isStopping: () => boolean;
  log: (line: string) => void;
}

/** A marker sent through the replica queue, waiting to come back. */
interface PendingMarker {
  readonly done: () => void;
  readonly fail: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

const ACK_BATCH = 32;

export class ReplicaStream {
  private readonly o: ReplicaStreamOptions;
  private conn!: Connection;
  private outCh!: Channel;
  private inCh!: Channel;
  private readonly markers = new Map<string, PendingMarker>();
  private unacked: Message | null = null;
  private unackedCount = 0;
  private ackTimer: NodeJS.Timeout | null = null;
  private readonly delayed = new Deque<{ at: number; m: Message }>(16);
  private delayTimer: NodeJS.Timeout | null = null;

  constructor(o: ReplicaStreamOptions) {
    this.o = o;
  }

  /** Declare the exchange and subscribe: from then on every write anyone accepts arrives here. */
  async open(conn: Connection): Promise<void> {
    this.conn = conn;
    this.outCh = await conn.channel({ confirm: { window: 4096, unconfirmed: 'retry' } });
    this.inCh = await conn.channel({ prefetch: 256 });
    await this.outCh.exchangeDeclare(this.o.names.replicate, 'fanout');
    await this.consume();
  }

  /** Publish a replication message until the broker confirms it (or the worker stops). */
  async publish(body: Buffer): Promise<void> {
    // Bounded by stop(): a publish the broker refused is tried again, so no write number is
    // skipped for good (peers would see a gap).
    for (let attempt = 0; ; attempt++) {
      try {
        await this.outCh.publish(this.o.names.replicate, '', body);
        return;
      } catch (err) {
        if (this.o.isStopping()) throw err;
        if (attempt === 0)
          this.o.log(`replication publish failed, retrying: ${(err as Error).message}`);
        await sleep(100);
        if (!this.outCh.isOpen) {
          this.outCh = await this.conn.channel({
            confirm: { window: 4096, unconfirmed: 'retry' },
          });
        }
      }
    }
  }

  /** Wait until the replica queue has delivered everything published to it before now. */
  drain(timeout = 30_000): Promise<void> {
    if (this.o.isStopping()) return Promise.reject(new WorkerStoppedError('stopping'));
    const token = randomBytes(8).toString('hex');
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.markers.delete(token);
        reject(new Error(`the replica queue did not drain within ${timeout} ms`));
      }, timeout);
      // stop() fails it at once; the timer alone must not keep the process up.
      timer.unref();
      this.markers.set(token, {
        done: () => {
          clearTimeout(timer);
          resolve();
        },
        fail: (err) => {
          clearTimeout(timer);
          reject(err);
        },
        timer,
      });
      this.outCh
        .publish('', this.o.names.replica(this.o.id), encodeMarker(token))
        .catch((err: Error) => {
          this.markers.get(token)?.fail(err);
          this.markers.delete(token);
        });
    });
  }

  /** The worker is stopping: drop the writes held back, and fail the drains waiting. */
  stop(reason: string): void {
    if (this.delayTimer !== null) clearTimeout(this.delayTimer);
    this.delayed.clear();
    const markers = [...this.markers.values()];
    this.markers.clear();
    for (const m of markers) m.fail(new WorkerStoppedError(reason));
  }

  /** Delete the replica queue (the data lives on in the other replicas), if it was made. */
  deleteQueue(): Promise<number> | undefined {
    return this.inCh?.queueDelete(this.o.names.replica(this.o.id), { timeout: 2000 });
  }

  /** Acknowledge every message handled so far. */
  readonly flushAcks = (): void => {
    if (this.ackTimer !== null) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    const m = this.unacked;
    this.unacked = null;
    this.unackedCount = 0;
    try {
      m?.ack(true);
    } catch {
      // The channel went away; the broker redelivers.
    }
  };

  private async consume(): Promise<void> {
    const q = this.o.names.replica(this.o.id);
    if (!this.inCh.isOpen) this.inCh = await this.conn.channel({ prefetch: 256 });
    await this.inCh.queueDeclare(q, { expires: this.o.replicaExpires });
    await this.inCh.queueBind(q, this.o.names.replicate);
    const consumer = await this.inCh.consume(q, (m) => this.onMessage(m));
    void consumer.closed.then((err) => {
      if (err !== null && !this.o.isStopping()) void this.lost(err);
    });
  }

  /**
   * The broker cancelled the consumer (someone deleted the queue) or closed its channel: whatever
   * was in the queue is lost. Subscribe again, and let the worker catch up from a peer.
   */
  private async lost(err: Error): Promise<void> {
    this.o.log(`lost the replica queue (${err.message}); subscribing again`);
    this.unacked = null;
    this.unackedCount = 0;
    // Bounded by stop(): the broker may be briefly unreachable.
    for (let attempt = 1; !this.o.isStopping(); attempt++) {
      try {
        await this.consume();
        break;
      } catch (e) {
        this.o.log(`subscribing to the replica queue failed: ${(e as Error).message}`);
        await sleep(Math.min(5000, 200 * attempt));
      }
    }
    await this.o.onLost();
  }

  private onMessage(m: Message): void {
    // Markers too wait their turn behind delayed writes, or a drain would overtake them.
    if (
      this.o.replicationDelay > 0 &&
      (m.body[0] === WireType.PeerNotify || this.delayed.length > 0)
    ) {
      this.delayed.push({ at: Date.now() + this.o.replicationDelay, m });
      this.delayTimer ??= setTimeout(() => this.releaseDelayed(), this.o.replicationDelay);
      return;
    }
    this.apply(m);
  }

  /** Apply the delayed writes whose time has come (a ring buffer: bounded by the prefetch). */
  private releaseDelayed(): void {
    this.delayTimer = null;
    const now = Date.now();
    const q = this.delayed;
    // Bounded by the queue's length: each pass applies one message.
    while (q.length > 0 && q.peek()!.at <= now) this.apply(q.shift()!.m);
    if (q.length > 0) {
      const next = q.peek()!.at - now;
      this.delayTimer = setTimeout(() => this.releaseDelayed(), Math.max(1, next));
    }
  }

  private apply(m: Message): void {
    const body = m.body;
    try {
      if (body[0] === WireType.Marker) {
        const token = decodeMarker(body);
        const marker = this.markers.get(token);
        this.markers.delete(token);
        marker?.done();
      } else if (body[0] === WireType.PeerNotify) {
        this.o.onUpdate(decodePeerNotify(body));
      }
    } catch (err) {
      this.o.log(`ignored a malformed replication message: ${(err as Error).message}`);
    }
    this.ackLater(m);
  }

  private ackLater(m: Message): void {
    this.unacked = m;
    if (++this.unackedCount >= ACK_BATCH) this.flushAcks();
    else this.ackTimer ??= setTimeout(this.flushAcks, 5);
  }
}
