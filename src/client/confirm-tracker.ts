import type { BasicProperties } from '../protocol/index.js';
import { Deque } from '../util/deque.js';

/**
 * One publish from the moment `publish()` is called until it is written (non-confirm channel) or
 * confirmed. It keeps its arguments so that it can be published again after a reconnect.
 */
export class PendingPublish {
  /** Position among all publishes of the channel, never reused; orders waitForConfirms. */
  readonly index: number;
  /** Publish sequence number in the current confirm session (0 until written). */
  seq: number;
  settled: boolean;
  readonly exchange: string;
  readonly routingKey: string;
  readonly mandatory: boolean;
  readonly properties: BasicProperties;
  readonly body: Buffer | string;
  /** basic.return came for it (mandatory and unroutable): its confirm fails with this error. */
  returned: Error | null;
  resolve: () => void;
  reject: (err: Error) => void;

  constructor(
    index: number,
    exchange: string,
    routingKey: string,
    mandatory: boolean,
    properties: BasicProperties,
    body: Buffer | string,
  ) {
    this.index = index;
    this.seq = 0;
    this.settled = false;
    this.exchange = exchange;
    this.routingKey = routingKey;
    this.mandatory = mandatory;
    this.properties = properties;
    this.body = body;
    this.returned = null;
    this.resolve = noop;
    this.reject = noop;
  }
}

function noop(): void {}

export interface ConfirmWaiter {
  upTo: number;
  failure: Error | null;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Publishes written in confirm mode and not yet confirmed, in sequence-number order. Sequence
 * numbers are consecutive, so the entry for a tag is found by subtracting the head's number:
 * confirms cost O(1) each (a `multiple` ack O(entries it settles)), never a scan.
 */
export class ConfirmTracker {
  private readonly inflight = new Deque<PendingPublish>(64);
  private waiters: ConfirmWaiter[] = [];
  /** Unsettled publishes in `inflight`; settled ones may linger behind an unsettled head. */
  outstanding = 0;
  private readonly lowest: () => number;

  constructor(lowest: () => number) {
    this.lowest = lowest;
  }

  get isEmpty(): boolean {
    return this.inflight.length === 0;
  }

  /** Index of the oldest unsettled written publish, or -1. */
  get oldestIndex(): number {
    const head = this.inflight.peek();
    return head === undefined ? -1 : head.index;
  }

  add(p: PendingPublish): void {
    this.inflight.push(p);
    this.outstanding++;
  }

  /** basic.ack from the broker. Returns false when the tag matches nothing outstanding. */
  ack(tag: number, multiple: boolean): boolean {
    return this.settle(tag, multiple, null);
  }

  /** basic.nack from the broker: the publishes it names fail with `err`. */
  nack(tag: number, multiple: boolean, err: (p: PendingPublish) => Error): boolean {
    return this.settle(tag, multiple, err);
  }

  private settle(
    tag: number,
    multiple: boolean,
    err: ((p: PendingPublish) => Error) | null,
  ): boolean {
    const q = this.inflight;
    const head = q.peek();
    if (head === undefined || tag < head.seq) return false;
    if (multiple) {
      for (let p = q.peek(); p !== undefined && p.seq <= tag; p = q.peek()) {
        q.shift();
        if (!p.settled) this.finish(p, err);
      }
    } else {
      const p = q.at(tag - head.seq);
      if (p === undefined || p.seq !== tag) return false;
      if (!p.settled) this.finish(p, err);
      for (let h = q.peek(); h !== undefined && h.settled; h = q.peek()) q.shift();
    }
    if (this.waiters.length > 0) this.wakeWaiters();
    return true;
  }

  private finish(p: PendingPublish, err: ((p: PendingPublish) => Error) | null): void {
    p.settled = true;
    this.outstanding--;
    if (err === null && p.returned === null) {
      p.resolve();
      return;
    }
    const e = err === null ? p.returned! : err(p);
    for (const w of this.waiters) if (w.failure === null && p.index <= w.upTo) w.failure = e;
    p.reject(e);
  }

  /**
   * The unsettled mandatory publish a basic.return is about: the oldest one with the same
   * exchange, routing key and body not already returned. Returns are rare, so this scan happens
   * per return, never per confirm.
   */
  findReturned(exchange: string, routingKey: string, body: Buffer): PendingPublish | null {
    for (const p of this.inflight) {
      if (p.settled || !p.mandatory || p.returned !== null) continue;
      if (p.exchange !== exchange || p.routingKey !== routingKey) continue;
      const same =
        typeof p.body === 'string' ? body.toString('utf8') === p.body : body.equals(p.body);
      if (same) return p;
    }
    return null;
  }

  /** Remove every unsettled publish (the connection or channel went away), oldest first. */
  takeAll(): PendingPublish[] {
    const out: PendingPublish[] = [];
    for (let p = this.inflight.shift(); p !== undefined; p = this.inflight.shift()) {
      if (!p.settled) out.push(p);
    }
    this.outstanding = 0;
    return out;
  }

  /** Fail one publish taken out with `takeAll` and tell the waiters that cover it. */
  fail(p: PendingPublish, e: Error): void {
    if (p.settled) return;
    p.settled = true;
    for (const w of this.waiters) if (w.failure === null && p.index <= w.upTo) w.failure = e;
    p.reject(e);
  }

  /**
   * Settle `w` once every publish up to `w.upTo` (an index) is settled; `lowest` (given to the
   * constructor) tells the oldest index still unsettled anywhere, written or waiting to be.
   */
  addWaiter(w: ConfirmWaiter): void {
    this.waiters.push(w);
    this.wakeWaiters();
  }

  /** Re-check waiters; called after confirms and by the channel when its queue moves. */
  wakeWaiters(): void {
    if (this.waiters.length === 0) return;
    const low = this.lowest();
    const keep: ConfirmWaiter[] = [];
    for (const w of this.waiters) {
      if (low !== -1 && low <= w.upTo) {
        keep.push(w);
      } else if (w.failure !== null) {
        w.reject(w.failure);
      } else {
        w.resolve();
      }
    }
    this.waiters = keep;
  }

  /** Reject every waiter (the channel closed). */
  rejectWaiters(err: Error): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w.reject(w.failure ?? err);
  }

  /** Remove a waiter that gave up (timeout or abort). */
  removeWaiter(w: ConfirmWaiter): void {
    this.waiters = this.waiters.filter((x) => x !== w);
  }
}
