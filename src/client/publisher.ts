import type { BasicProperties, BasicReturn } from '../protocol/index.js';
import { Deque } from '../util/deque.js';
import { guard } from './call-options.js';
import type { CallOptions } from './call-options.js';
import { ConfirmTracker, PendingPublish } from './confirm-tracker.js';
import type { ConfirmWaiter } from './confirm-tracker.js';
import { ClientError, ClientErrorCode, connectionLostError } from './errors.js';
import type { FrameOutput } from './frame-output.js';
import type { UnconfirmedPolicy } from './options.js';

const RESOLVED = Promise.resolve();

/**
 * The publishing side of a channel. Without confirms a publish is written at once (its promise is
 * the transport's backpressure); in confirm mode it is tracked until basic.ack/nack, at most
 * `window` at a time, the rest waiting in order. Publishes made while the channel is not open
 * (reconnecting) wait too, and are written when it reopens.
 */
export class Publisher {
  confirmMode = false;
  window = Infinity;
  policy: UnconfirmedPolicy;
  readonly tracker: ConfirmTracker;
  private readonly waiting = new Deque<PendingPublish>(64);
  private index = 0;
  private seq = 0;

  constructor(
    private readonly output: FrameOutput,
    private readonly channel: number,
    policy: UnconfirmedPolicy,
  ) {
    this.policy = policy;
    this.tracker = new ConfirmTracker(() => this.lowestUnsettled());
  }

  publish(
    open: boolean,
    exchange: string,
    routingKey: string,
    mandatory: boolean,
    props: BasicProperties,
    body: Buffer | string,
    wait: CallOptions | undefined,
  ): Promise<void> {
    const out = this.output;
    if (!this.confirmMode) {
      if (open && this.waiting.length === 0) {
        out.writePublish(this.channel, exchange, routingKey, mandatory, props, body);
        return out.writable ? RESOLVED : out.drained();
      }
      return this.enqueue(exchange, routingKey, mandatory, props, body, wait);
    }
    if (open && this.waiting.length === 0 && this.tracker.outstanding < this.window) {
      const p = new PendingPublish(++this.index, exchange, routingKey, mandatory, props, body);
      const promise = settled(p, wait);
      p.seq = ++this.seq;
      this.tracker.add(p);
      out.writePublish(this.channel, exchange, routingKey, mandatory, props, body);
      return promise;
    }
    return this.enqueue(exchange, routingKey, mandatory, props, body, wait);
  }

  private enqueue(
    exchange: string,
    routingKey: string,
    mandatory: boolean,
    props: BasicProperties,
    body: Buffer | string,
    wait: CallOptions | undefined,
  ): Promise<void> {
    const p = new PendingPublish(++this.index, exchange, routingKey, mandatory, props, body);
    const promise = settled(p, wait);
    this.waiting.push(p);
    return promise;
  }

  /** Write what waited (for room in the window, or for the channel to open). */
  pump(): void {
    const out = this.output;
    const q = this.waiting;
    while (q.length > 0) {
      if (q.peek()!.settled) {
        // Given up (signal or timeout) before it was sent: it never will be.
        q.shift();
        continue;
      }
      if (this.confirmMode) {
        if (this.tracker.outstanding >= this.window) break;
        const p = q.shift()!;
        p.seq = ++this.seq;
        this.tracker.add(p);
        out.writePublish(this.channel, p.exchange, p.routingKey, p.mandatory, p.properties, p.body);
      } else {
        const p = q.shift()!;
        out.writePublish(this.channel, p.exchange, p.routingKey, p.mandatory, p.properties, p.body);
        p.settled = true;
        p.resolve();
      }
    }
    this.tracker.wakeWaiters();
  }

  /** confirm.select was sent: the broker numbers publishes from 1 after it. */
  enterConfirmMode(window: number, policy: UnconfirmedPolicy | undefined): void {
    this.confirmMode = true;
    this.window = window;
    if (policy !== undefined) this.policy = policy;
    this.seq = 0;
  }

  /** confirm.select again on a new session. */
  restartNumbering(): void {
    this.seq = 0;
  }

  ack(tag: number, multiple: boolean): void {
    if (this.confirmMode) this.tracker.ack(tag, multiple);
  }

  nack(tag: number, multiple: boolean): void {
    if (this.confirmMode) this.tracker.nack(tag, multiple, nackError);
  }

  /** basic.return of a mandatory publish: in confirm mode its promise rejects on the confirm. */
  returned(r: BasicReturn, body: Buffer): void {
    if (!this.confirmMode) return;
    const p = this.tracker.findReturned(r.exchange, r.routingKey, body);
    if (p !== null) p.returned = unroutableError(r);
  }

  /** The oldest publish index not yet settled, written or waiting; -1 if none. */
  lowestUnsettled(): number {
    const written = this.tracker.oldestIndex;
    if (written !== -1) return written;
    for (const p of this.waiting) if (!p.settled) return p.index;
    return -1;
  }

  get pending(): boolean {
    return this.lowestUnsettled() !== -1;
  }

  /** Resolve once everything published so far is settled; reject if any of it failed. */
  waitForConfirms(options?: CallOptions): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const w: ConfirmWaiter = { upTo: this.index, failure: null, resolve, reject };
      const disarm = guard(options, 'waitForConfirms', (err) => {
        this.tracker.removeWaiter(w);
        reject(err);
      });
      w.resolve = () => {
        disarm();
        resolve();
      };
      w.reject = (err) => {
        disarm();
        reject(err);
      };
      this.tracker.addWaiter(w);
    });
  }

  /**
   * The session dropped. Unconfirmed publishes are published again after the reconnect
   * (`retry`, ahead of what waited) or fail with WARREN_ERR_CONNECTION_LOST (`fail`).
   */
  sessionLost(cause: Error): void {
    const unconfirmed = this.tracker.takeAll();
    if (this.policy === 'retry') {
      for (let i = unconfirmed.length - 1; i >= 0; i--) {
        const p = unconfirmed[i]!;
        p.seq = 0;
        this.waiting.unshift(p);
      }
    } else {
      for (const p of unconfirmed) {
        this.tracker.fail(p, connectionLostError('the publish was confirmed', cause));
      }
    }
    this.tracker.wakeWaiters();
  }

  /** The channel closed: everything unsettled fails with `err`, waiters with `waiterErr`. */
  failAll(err: Error, waiterErr: Error): void {
    for (const p of this.tracker.takeAll()) this.tracker.fail(p, err);
    for (const p of this.waiting.drain()) this.tracker.fail(p, err);
    this.tracker.rejectWaiters(waiterErr);
  }
}

function settled(p: PendingPublish, wait: CallOptions | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    p.resolve = resolve;
    p.reject = reject;
    if (wait === undefined || (wait.signal === undefined && wait.timeout === undefined)) return;
    let done = false;
    const disarm = guard(wait, 'publish', (err) => {
      if (done) return;
      done = true;
      // Not sent yet: it never will be. Sent: its confirm still settles the tracker, unseen.
      if (p.seq === 0) p.settled = true;
      reject(err);
    });
    p.resolve = () => {
      if (done) return;
      done = true;
      disarm();
      resolve();
    };
    p.reject = (err) => {
      if (done) return;
      done = true;
      disarm();
      reject(err);
    };
  });
}

function nackError(p: PendingPublish): ClientError {
  return new ClientError(
    ClientErrorCode.PublishNacked,
    `the broker refused the message published to exchange '${p.exchange}' with routing key '${p.routingKey}' (basic.nack); publish it again or check the broker's limits`,
  );
}

function unroutableError(r: BasicReturn): ClientError {
  return new ClientError(
    ClientErrorCode.Unroutable,
    `the broker returned the mandatory message published to exchange '${r.exchange}' with routing key '${r.routingKey}': ${r.replyText}; declare and bind a queue for it`,
  );
}
