import { Deque } from '../util/deque.js';
import type { Stamp, Update } from './messages.js';

/** Anti-entropy compares replicas bucket by bucket: keys hash into this many. */
export const BUCKETS = 4096;
const BUCKET_MASK = BUCKETS - 1;

/**
 * One key's current version: a value, or a death certificate (`value` null) that keeps a delete
 * from being undone by an older write arriving late, until the retention period has passed.
 */
export class Entry implements Stamp {
  constructor(
    public value: Buffer | null,
    public hlc: number,
    public origin: string,
    public seq: number,
  ) {}
}

/** Whether version a (hlc, origin) is later than b: timestamps first, then worker ids. */
export function newer(a: { hlc: number; origin: string }, b: { hlc: number; origin: string }) {
  return a.hlc > b.hlc || (a.hlc === b.hlc && a.origin > b.origin);
}

/** Keys are byte strings; the map holds them as latin1 strings (one char per byte). */
export const keyString = (key: Uint8Array): string =>
  Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
export const keyBytes = (key: string): Buffer => Buffer.from(key, 'latin1');

const FNV_PRIME = 16777619;

function fnvString(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), FNV_PRIME);
  return h;
}

function fnvInt(h: number, v: number): number {
  h = Math.imul(h ^ (v & 0xff), FNV_PRIME);
  h = Math.imul(h ^ ((v >>> 8) & 0xff), FNV_PRIME);
  h = Math.imul(h ^ ((v >>> 16) & 0xff), FNV_PRIME);
  return Math.imul(h ^ (v >>> 24), FNV_PRIME);
}

/** The anti-entropy bucket of a key. */
export function bucketOf(key: string): number {
  return (fnvString(0x811c9dc5, key) >>> 0) & BUCKET_MASK;
}

/** Two independent 32-bit hashes of (key, version), XORed into the key's bucket digest. */
function entryHash(key: string, e: Entry, lane: 0 | 1): number {
  let h = lane === 0 ? 0x9dc5811c : 0x050c5d1f;
  h = fnvString(h, key);
  h = fnvInt(h, e.hlc >>> 0);
  h = fnvInt(h, Math.floor(e.hlc / 0x1_0000_0000));
  h = fnvString(h, e.origin);
  return fnvInt(h, e.value === null ? 1 : 0) >>> 0;
}

/**
 * A worker's replica: the key-value map (the seed's HashMap) with a version on every entry, so
 * that replicas that apply the same writes in any order, any number of times, end up equal
 * (last writer wins by hybrid-clock timestamp, then worker id). Alongside, a digest per bucket
 * of keys (XOR of the entries' hashes, updated in O(1) per write) that anti-entropy compares, and
 * a queue of death certificates to collect once the retention period has passed.
 */
export class KvStore {
  private readonly map = new Map<string, Entry>();
  private readonly digests = new Uint32Array(2 * BUCKETS);
  private readonly certificates = new Deque<{ key: string; hlc: number }>(64);
  private dead = 0;
  private valueBytes = 0;
  private readonly origins = new Map<string, string>();

  /** Live keys. */
  get size(): number {
    return this.map.size - this.dead;
  }

  /** Death certificates held. */
  get deadCount(): number {
    return this.dead;
  }

  /** Entries, live and dead. */
  get entryCount(): number {
    return this.map.size;
  }

  /** Bytes of values held. */
  get bytes(): number {
    return this.valueBytes;
  }

  get(key: string): Entry | undefined {
    return this.map.get(key);
  }

  /**
   * Apply a version of a key if it is later than the one held. Returns true if it was applied.
   * With a `horizon` (a timestamp), a version older than it is dropped unless the key is held:
   * its death certificate may already have been collected, and a delete must not be undone.
   */
  merge(key: string, value: Buffer | null, s: Stamp, horizon = 0): boolean {
    const old = this.map.get(key);
    if (old !== undefined) {
      if (!newer(s, old)) return false;
      this.unhash(key, old);
      if (old.value === null) this.dead--;
      else this.valueBytes -= old.value.length;
      old.value = value;
      old.hlc = s.hlc;
      old.origin = this.intern(s.origin);
      old.seq = s.seq;
      this.added(key, old);
      return true;
    }
    if (s.hlc < horizon) return false;
    const e = new Entry(value, s.hlc, this.intern(s.origin), s.seq);
    this.map.set(key, e);
    this.added(key, e);
    return true;
  }

  private added(key: string, e: Entry): void {
    this.rehash(key, e);
    if (e.value === null) {
      this.dead++;
      this.certificates.push({ key, hlc: e.hlc });
    } else {
      this.valueBytes += e.value.length;
    }
  }

  /** Stop interning a departed worker's id (entries keep their own reference to it). */
  forgetOrigin(origin: string): void {
    this.origins.delete(origin);
  }

  /** Worker ids interned, for tests and statistics. */
  get originCount(): number {
    return this.origins.size;
  }

  private intern(origin: string): string {
    const o = this.origins.get(origin);
    if (o !== undefined) return o;
    this.origins.set(origin, origin);
    return origin;
  }

  private rehash(key: string, e: Entry): void {
    const b = bucketOf(key) * 2;
    this.digests[b] = this.digests[b]! ^ entryHash(key, e, 0);
    this.digests[b + 1] = this.digests[b + 1]! ^ entryHash(key, e, 1);
  }

  private unhash(key: string, e: Entry): void {
    this.rehash(key, e);
  }

  /**
   * Drop death certificates older than `horizon`. Returns how many were dropped. Certificates are
   * queued as they arrive, which is nearly timestamp order; one that arrived out of order waits
   * for those ahead of it.
   */
  collect(horizon: number): number {
    let n = 0;
    const q = this.certificates;
    // Bounded: each pass removes one queued certificate.
    while (q.length > 0 && q.peek()!.hlc < horizon) {
      const c = q.shift()!;
      const e = this.map.get(c.key);
      if (e === undefined || e.value !== null || e.hlc !== c.hlc) continue;
      this.unhash(c.key, e);
      this.map.delete(c.key);
      this.dead--;
      n++;
    }
    return n;
  }

  /** Every entry, live and dead, visited lazily (entries changed meanwhile show their new version). */
  *updates(filter?: (key: string) => boolean): Generator<Update> {
    for (const [key, e] of this.map) {
      if (filter !== undefined && !filter(key)) continue;
      yield {
        key: keyBytes(key),
        value: e.value,
        stamp: { hlc: e.hlc, origin: e.origin, seq: e.seq },
      };
    }
  }

  /** The bucket digests: BUCKETS pairs of big-endian 32-bit words. */
  digest(): Buffer {
    const b = Buffer.allocUnsafe(this.digests.length * 4);
    for (let i = 0; i < this.digests.length; i++) b.writeUInt32BE(this.digests[i]!, i * 4);
    return b;
  }

  /** Buckets whose digest differs from the peer's. */
  differingBuckets(peer: Buffer): number[] {
    if (peer.length !== this.digests.length * 4) {
      throw new RangeError(`a digest is ${this.digests.length * 4} bytes, got ${peer.length}`);
    }
    const out: number[] = [];
    for (let i = 0; i < BUCKETS; i++) {
      if (
        peer.readUInt32BE(i * 8) !== this.digests[i * 2] ||
        peer.readUInt32BE(i * 8 + 4) !== this.digests[i * 2 + 1]
      ) {
        out.push(i);
      }
    }
    return out;
  }

  /**
   * The versions held in some buckets, for a peer to compare: per entry keyLen (2), key,
   * hlc (8), originLen (1), origin.
   */
  summary(buckets: ReadonlySet<number>): Buffer {
    const parts: Buffer[] = [];
    for (const [key, e] of this.map) {
      if (!buckets.has(bucketOf(key))) continue;
      const b = Buffer.allocUnsafe(2 + key.length + 8 + 1 + e.origin.length);
      b.writeUInt16BE(key.length, 0);
      b.write(key, 2, 'latin1');
      b.writeDoubleBE(e.hlc, 2 + key.length);
      b[10 + key.length] = e.origin.length;
      b.write(e.origin, 11 + key.length, 'latin1');
      parts.push(b);
    }
    return Buffer.concat(parts);
  }

  /**
   * Compare a peer's summary of some buckets with this replica. `give`: keys this replica holds
   * a later version of (or the peer lacks); `take`: keys the peer holds a later version of (or
   * this replica lacks). Versions older than `horizon` are left alone both ways.
   */
  compare(
    buckets: ReadonlySet<number>,
    peerSummary: Buffer,
    horizon: number,
  ): { give: string[]; take: string[] } {
    const theirs = new Map<string, { hlc: number; origin: string }>();
    let pos = 0;
    // Bounded by the summary's length: each pass consumes one entry.
    while (pos < peerSummary.length) {
      const kl = peerSummary.readUInt16BE(pos);
      const key = peerSummary.toString('latin1', pos + 2, pos + 2 + kl);
      const hlc = peerSummary.readDoubleBE(pos + 2 + kl);
      const ol = peerSummary[pos + 10 + kl]!;
      const origin = peerSummary.toString('latin1', pos + 11 + kl, pos + 11 + kl + ol);
      pos += 11 + kl + ol;
      if (pos > peerSummary.length) throw new RangeError('a truncated summary');
      theirs.set(key, { hlc, origin });
    }
    const give: string[] = [];
    const take: string[] = [];
    for (const [key, e] of this.map) {
      if (!buckets.has(bucketOf(key))) continue;
      const t = theirs.get(key);
      if (t === undefined) {
        if (e.hlc >= horizon) give.push(key);
        continue;
      }
      theirs.delete(key);
      if (newer(e, t)) {
        if (e.hlc >= horizon) give.push(key);
      } else if (newer(t, e)) {
        if (t.hlc >= horizon) take.push(key);
      }
    }
    for (const [key, t] of theirs) if (t.hlc >= horizon) take.push(key);
    return { give, take };
  }

  /** Forget everything (a replica that was away too long starts over from an export). */
  clear(): void {
    this.map.clear();
    this.digests.fill(0);
    this.certificates.clear();
    this.dead = 0;
    this.valueBytes = 0;
    this.origins.clear();
  }
}
