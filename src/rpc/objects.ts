import { randomBytes } from 'node:crypto';
import { EXPORTED } from './contract.js';
import type { Implementation, InterfaceContract, RemoteObject, RemoteRef } from './contract.js';

/** A remote object as its host keeps it. */
export interface HostedObject {
  readonly id: string;
  readonly iface: InterfaceContract;
  readonly impl: Implementation<InterfaceContract> & Partial<AsyncDisposable>;
  /** Reference listing: who holds it, and until when (Date.now()). */
  readonly holders: Map<string, number>;
}

const TRANSIT = 'transit:';

/**
 * The objects a host exports (seed 004, "Remote Object Table"), collected by reference listing
 * with leases: each holder is listed by id with the time its lease ends, so adding a holder twice
 * or removing it twice changes nothing; an object whose list empties (released, or every lease
 * ran out because its holders died) is dropped, and its `Symbol.asyncDispose` runs.
 *
 * An object returned to a caller is listed at once under the caller's holder id (requests say
 * who sent them). One sent where the host cannot tell the receiver is held by a transit lease of
 * one lease period, until its receiver lists itself (which it does as soon as it decodes the
 * reference), so it cannot be collected on the way.
 */
export class ObjectTable {
  readonly lease: number;
  private readonly objects = new Map<string, HostedObject>();
  private readonly idOf = new WeakMap<object, string>();
  private readonly epoch: string;
  private readonly queue: () => string;
  private readonly timer: NodeJS.Timeout;
  /** Objects collected since the table was made (for tests and metrics). */
  collected = 0;

  constructor(queue: () => string, epoch: string, lease: number) {
    this.queue = queue;
    this.epoch = epoch;
    this.lease = lease;
    this.timer = setInterval(() => this.sweep(Date.now()), Math.max(20, Math.min(1000, lease / 4)));
    this.timer.unref();
  }

  get size(): number {
    return this.objects.size;
  }

  /**
   * Export (or re-export) an object; the reference to put in a message. `recipient`, when the
   * host knows who receives it (the caller, for a reply), is listed as a holder at once;
   * otherwise a transit lease holds the object until its receiver lists itself.
   */
  export(o: RemoteObject<InterfaceContract>, recipient?: string): RemoteRef {
    const { iface, impl } = o[EXPORTED];
    let id = this.idOf.get(impl);
    let h = id === undefined ? undefined : this.objects.get(id);
    if (h === undefined) {
      id = randomBytes(9).toString('base64url');
      h = { id, iface, impl, holders: new Map() };
      this.objects.set(id, h);
      this.idOf.set(impl, id);
    }
    const holder = recipient ?? `${TRANSIT}${randomBytes(6).toString('base64url')}`;
    h.holders.set(holder, Date.now() + this.lease);
    return {
      queue: this.queue(),
      id: h.id,
      iface: iface.name,
      epoch: this.epoch,
      lease: this.lease,
    };
  }

  get(id: string): HostedObject | undefined {
    return this.objects.get(id);
  }

  /** Ids of the objects alive now. */
  ids(): string[] {
    return [...this.objects.keys()];
  }

  /** List `holder` on each object (idempotent); returns the ids that no longer exist. */
  add(holder: string, ids: readonly string[], now: number): string[] {
    const missing: string[] = [];
    for (const id of ids) {
      const h = this.objects.get(id);
      if (h === undefined) {
        missing.push(id);
        continue;
      }
      if (!h.holders.has(holder)) {
        // A receiver listing itself: the transit lease that covered its way here can go.
        for (const k of h.holders.keys()) {
          if (k.startsWith(TRANSIT)) {
            h.holders.delete(k);
            break;
          }
        }
      }
      h.holders.set(holder, now + this.lease);
    }
    return missing;
  }

  /** Remove `holder` from each object (idempotent); collects objects left without holders. */
  remove(holder: string, ids: readonly string[]): void {
    for (const id of ids) {
      const h = this.objects.get(id);
      if (h === undefined) continue;
      h.holders.delete(holder);
      if (h.holders.size === 0) this.collect(h);
    }
  }

  sweep(now: number): void {
    for (const h of [...this.objects.values()]) {
      for (const [holder, until] of h.holders) if (until <= now) h.holders.delete(holder);
      if (h.holders.size === 0) this.collect(h);
    }
  }

  private collect(h: HostedObject): void {
    if (this.objects.get(h.id) !== h) return;
    this.objects.delete(h.id);
    this.collected++;
    const dispose = h.impl[Symbol.asyncDispose];
    if (typeof dispose === 'function') {
      Promise.resolve()
        .then(() => dispose.call(h.impl))
        .catch(() => undefined);
    }
  }

  close(): void {
    clearInterval(this.timer);
    for (const h of [...this.objects.values()]) this.collect(h);
  }
}

interface Held {
  readonly ref: RemoteRef;
  /** Live proxies of this object in this process. */
  count: number;
  /** Date.now() when a reference to it was last sent on to someone else. */
  lastSent: number;
  releaseTimer: NodeJS.Timeout | null;
}

/** What the holder side sends: one-way `lease` / `release` messages to a host queue. */
export type LeaseSender = (
  queue: string,
  op: 'lease' | 'release',
  objects: string[],
  epoch: string,
) => void;

/**
 * The holder side of leases: the remote objects this process holds proxies of. It lists itself
 * with the host as soon as it receives a reference, renews every object at half its lease (one
 * message per host), and releases an object when its last proxy is disposed or garbage
 * collected. A release is held back while a reference to the object was sent on less than a
 * lease ago, so the receiver has time to list itself first (seed 004, "passing references").
 */
export class LeaseKeeper {
  readonly holder: string;
  private readonly send: LeaseSender;
  private readonly held = new Map<string, Held>();
  private readonly timer: NodeJS.Timeout;
  private readonly registry = new FinalizationRegistry<string>((key) => this.drop(key));
  private nextRenew = new Map<string, number>();

  constructor(holder: string, send: LeaseSender) {
    this.holder = holder;
    this.send = send;
    this.timer = setInterval(() => this.renew(Date.now()), 50);
    this.timer.unref();
  }

  get size(): number {
    return this.held.size;
  }

  /** A proxy for `ref` was made: hold the object (listing this holder at once if new). */
  acquire(ref: RemoteRef, proxy: object): void {
    const key = keyOf(ref);
    let h = this.held.get(key);
    if (h === undefined) {
      h = { ref, count: 0, lastSent: 0, releaseTimer: null };
      this.held.set(key, h);
      this.send(ref.queue, 'lease', [ref.id], ref.epoch);
      this.nextRenew.set(key, Date.now() + ref.lease / 2);
    }
    if (h.releaseTimer !== null) {
      clearTimeout(h.releaseTimer);
      h.releaseTimer = null;
    }
    h.count++;
    this.registry.register(proxy, key, proxy);
  }

  /** A proxy was disposed. */
  release(ref: RemoteRef, proxy: object): void {
    this.registry.unregister(proxy);
    this.drop(keyOf(ref));
  }

  /** A reference to `ref` was put in an outgoing message. */
  sent(ref: RemoteRef): void {
    const h = this.held.get(keyOf(ref));
    if (h !== undefined) h.lastSent = Date.now();
  }

  /** The host said the object is gone: stop renewing it. */
  forget(ref: RemoteRef): void {
    this.held.delete(keyOf(ref));
    this.nextRenew.delete(keyOf(ref));
  }

  isHeld(ref: RemoteRef): boolean {
    return this.held.has(keyOf(ref));
  }

  private drop(key: string): void {
    const h = this.held.get(key);
    if (h === undefined || h.count === 0) return;
    h.count--;
    if (h.count > 0) return;
    const wait = h.lastSent + h.ref.lease - Date.now();
    if (wait > 0) {
      h.releaseTimer = setTimeout(() => this.finish(key, h), wait);
      h.releaseTimer.unref();
      return;
    }
    this.finish(key, h);
  }

  private finish(key: string, h: Held): void {
    if (this.held.get(key) !== h || h.count > 0) return;
    this.held.delete(key);
    this.nextRenew.delete(key);
    this.send(h.ref.queue, 'release', [h.ref.id], h.ref.epoch);
  }

  private renew(now: number): void {
    const due = new Map<string, { epoch: string; ids: string[] }>();
    for (const [key, at] of this.nextRenew) {
      if (at > now) continue;
      const h = this.held.get(key);
      if (h === undefined) {
        this.nextRenew.delete(key);
        continue;
      }
      this.nextRenew.set(key, now + h.ref.lease / 2);
      const group = `${h.ref.queue}\n${h.ref.epoch}`;
      let g = due.get(group);
      if (g === undefined) {
        g = { epoch: h.ref.epoch, ids: [] };
        due.set(group, g);
      }
      g.ids.push(h.ref.id);
    }
    for (const [group, g] of due)
      this.send(group.slice(0, group.indexOf('\n')), 'lease', g.ids, g.epoch);
  }

  /** Stop renewing (the connection is gone for good). */
  stop(): void {
    clearInterval(this.timer);
    for (const h of this.held.values()) if (h.releaseTimer !== null) clearTimeout(h.releaseTimer);
  }

  /** Release everything (the endpoint is closing). */
  close(): void {
    clearInterval(this.timer);
    const groups = new Map<string, { epoch: string; ids: string[] }>();
    for (const h of this.held.values()) {
      if (h.releaseTimer !== null) clearTimeout(h.releaseTimer);
      const k = `${h.ref.queue}\n${h.ref.epoch}`;
      let g = groups.get(k);
      if (g === undefined) groups.set(k, (g = { epoch: h.ref.epoch, ids: [] }));
      g.ids.push(h.ref.id);
    }
    this.held.clear();
    this.nextRenew.clear();
    for (const [k, g] of groups) this.send(k.slice(0, k.indexOf('\n')), 'release', g.ids, g.epoch);
  }
}

function keyOf(ref: RemoteRef): string {
  return `${ref.queue}\n${ref.id}`;
}

export function parseRef(x: unknown): RemoteRef | null {
  if (typeof x !== 'object' || x === null) return null;
  const r = x as Record<string, unknown>;
  if (
    typeof r.queue !== 'string' ||
    typeof r.id !== 'string' ||
    typeof r.iface !== 'string' ||
    typeof r.epoch !== 'string' ||
    typeof r.lease !== 'number' ||
    !(r.lease > 0)
  ) {
    return null;
  }
  return { queue: r.queue, id: r.id, iface: r.iface, epoch: r.epoch, lease: r.lease };
}
