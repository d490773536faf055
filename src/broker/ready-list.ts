import type { Blob, BlobStore } from '../store/blob-store.js';
import type { RecordFields } from '../store/record.js';
import type { QueueStore, TailRecord } from '../store/queue-store.js';
import { Deque } from '../util/deque.js';
import { ENTRY_OVERHEAD } from './memory-budget.js';
import type { MemoryBudget } from './memory-budget.js';
import type { QueueEntry } from './queue-entry.js';

/** Refill the in-memory head from disk when it falls below this many entries. */
const REFILL_BELOW = 128;
const REFILL_COUNT = 1024;
const REFILL_BYTES = 4 * 1024 * 1024;

/**
 * The ready messages of one queue (or of one priority level of a priority queue), in order:
 * an in-memory head of entries followed by an on-disk tail that holds no memory per message.
 * Once anything is in the tail, every newer message goes there too, so order is kept; the
 * head is refilled from the tail as it drains.
 */
export class ReadyList {
  readonly head = new Deque<QueueEntry>();
  /** Body bytes of the head entries. */
  headBytes = 0;
  /** Body bytes of the tail records. */
  tailBodyBytes = 0;
  private store: QueueStore | null = null;
  private readonly openStore: (() => QueueStore) | null;
  private readonly budget: MemoryBudget;
  private readonly load: (r: TailRecord) => QueueEntry | null;
  private readonly blobs: BlobStore | null;
  /** Large bodies referenced by tail records (the tail holds a reference to each). */
  private readonly tailBlobs = new Map<Blob, number>();

  constructor(
    openStore: (() => QueueStore) | null,
    budget: MemoryBudget,
    load: (r: TailRecord) => QueueEntry | null,
    blobs: BlobStore | null = null,
  ) {
    this.openStore = openStore;
    this.budget = budget;
    this.load = load;
    this.blobs = blobs;
  }

  /** The lane's store, opened on first use (a queue that never pages never touches disk). */
  disk(): QueueStore | null {
    if (this.store === null && this.openStore !== null) this.store = this.openStore();
    return this.store;
  }

  get hasDisk(): boolean {
    return this.openStore !== null;
  }

  get openedStore(): QueueStore | null {
    return this.store;
  }

  get length(): number {
    return this.head.length + (this.store?.tailCount ?? 0);
  }

  get tailCount(): number {
    return this.store?.tailCount ?? 0;
  }

  get bodyBytes(): number {
    return this.headBytes + this.tailBodyBytes;
  }

  /** Recover what the store holds from before a restart; it all starts in the tail. */
  recover(): { count: number; maxSeq: number } {
    const store = this.disk();
    if (store === null) return { count: 0, maxSeq: 0 };
    const r = store.recover();
    this.tailBodyBytes = r.liveBodyBytes;
    for (const ref of r.blobRefs) {
      const blob = this.blobs?.recoverRef(ref);
      if (blob !== undefined) this.tailBlobs.set(blob, (this.tailBlobs.get(blob) ?? 0) + 1);
    }
    return { count: r.liveCount, maxSeq: r.maxSeq };
  }

  /** Whether a new message should bypass memory and go to the tail. */
  shouldPage(minHeadBytes: number): boolean {
    if (this.openStore === null) return false;
    if (this.tailCount > 0) return true;
    return this.budget.exceeded && this.headBytes >= minHeadBytes;
  }

  push(entry: QueueEntry): void {
    this.head.push(entry);
    this.account(entry, 1);
  }

  /** Keep a message on disk only (the tail takes over the queue's reference to a blob). */
  appendToTail(fields: RecordFields, blob: Blob | null = null): void {
    this.disk()!.append(fields, true);
    if (blob !== null) {
      this.tailBodyBytes += blob.size;
      this.tailBlobs.set(blob, (this.tailBlobs.get(blob) ?? 0) + 1);
    } else {
      this.tailBodyBytes += fields.body.length;
    }
  }

  /** The next ready entry, without removing it (refilling the head from disk if needed). */
  first(): QueueEntry | undefined {
    if (this.head.length === 0) this.refill();
    return this.head.peek();
  }

  shift(): QueueEntry | undefined {
    if (this.head.length < REFILL_BELOW) this.refill();
    const e = this.head.shift();
    if (e !== undefined) this.account(e, -1);
    return e;
  }

  /** Put requeued entries back by sequence number (they are older than everything in the tail). */
  requeue(entries: QueueEntry[]): void {
    let idx = this.head.length;
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i]!;
      if (idx > this.head.length) idx = this.head.length;
      while (idx > 0 && this.head.at(idx - 1)!.seq > e.seq) idx--;
      this.head.insert(idx, e);
      this.account(e, 1);
    }
  }

  /** Remove everything; head entries are handed to `drop`, tail records released on disk. */
  purge(drop: (e: QueueEntry) => void): number {
    let n = 0;
    for (const e of this.head.drain()) {
      this.account(e, -1);
      drop(e);
      n++;
    }
    this.headBytes = 0;
    if (this.store !== null) n += this.store.purgeTail();
    this.tailBodyBytes = 0;
    this.releaseTailBlobs();
    return n;
  }

  private releaseTailBlobs(): void {
    for (const [blob, count] of this.tailBlobs) for (let i = 0; i < count; i++) blob.release();
    this.tailBlobs.clear();
  }

  /** Up to `count` ready messages, left in place. */
  peek(count: number): QueueEntry[] {
    const out: QueueEntry[] = [];
    const n = Math.min(count, this.head.length);
    for (let i = 0; i < n; i++) out.push(this.head.at(i)!);
    if (out.length < count && this.store !== null && this.store.tailCount > 0) {
      for (const r of this.store.peekTail(count - out.length)) {
        const e = this.load(r);
        if (e !== null) out.push(e);
      }
    }
    return out;
  }

  private refill(): void {
    const store = this.store;
    if (store === null || store.tailCount === 0) return;
    for (const r of store.readTail(REFILL_COUNT, REFILL_BYTES)) {
      const e = this.load(r);
      if (e === null) {
        // Its large body is gone (damaged store): the message cannot be delivered.
        store.release(r.ref, r.persistent);
        continue;
      }
      const blob = e.message.blob;
      if (blob !== null) {
        this.tailBodyBytes -= blob.size;
        const left = (this.tailBlobs.get(blob) ?? 1) - 1;
        if (left === 0) this.tailBlobs.delete(blob);
        else this.tailBlobs.set(blob, left);
      } else {
        this.tailBodyBytes -= r.body.length;
      }
      this.head.push(e);
      this.account(e, 1);
    }
    if (store.tailCount === 0) this.tailBodyBytes = 0;
  }

  private account(e: QueueEntry, sign: 1 | -1): void {
    const m = e.message;
    this.headBytes += sign * m.bodySize;
    this.budget.used += sign * (m.memorySize + ENTRY_OVERHEAD);
  }

  close(): void {
    this.store?.close();
  }

  destroy(): void {
    for (const e of this.head) {
      this.account(e, -1);
      e.message.blob?.release();
    }
    this.head.clear();
    this.releaseTailBlobs();
    this.headBytes = 0;
    this.tailBodyBytes = 0;
    this.store?.destroy();
    if (this.store === null && this.openStore !== null) {
      // Nothing was opened in this run, but a directory may remain from an earlier one.
      this.openStore().destroy();
    }
  }
}
