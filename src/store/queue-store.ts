import {
  closeSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readSync,
  readdirSync,
  rmSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { SyncTarget } from './commit-scheduler.js';
import type { CommitScheduler } from './commit-scheduler.js';
import { crc32 } from './crc32.js';
import {
  RecordCheck,
  RecordFlag,
  SEGMENT_HEADER,
  checkRecord,
  readRecord,
  recordFlags,
  recordBodySize,
  recordLength,
  recordSeq,
  recordSize,
  resync,
  writeRecord,
} from './record.js';
import type { RecordFields } from './record.js';

export interface StoreLogger {
  info(message: string): void;
  warn(message: string): void;
}

/** One segment: a data file of records and an ack file of acknowledged record offsets. */
export class Segment {
  readonly id: number;
  readonly dataPath: string;
  readonly ackPath: string;
  readonly data: SyncTarget;
  ack: SyncTarget | null = null;
  /** Bytes in the data file (including writes still buffered in the store). */
  size: number;
  /** Records written and not yet released (acked or dropped). */
  live = 0;
  /** Offsets that must be skipped when reading the tail: acked or dead before a restart. */
  dead: Set<number> | null = null;
  /** Damaged byte ranges [start, end) found at recovery, skipped when reading. */
  damaged: [number, number][] = [];
  deleted = false;

  constructor(id: number, dir: string, fd: number, size: number) {
    this.id = id;
    this.dataPath = join(dir, segmentName(id, 'dat'));
    this.ackPath = join(dir, segmentName(id, 'ack'));
    this.data = new SyncTarget(fd, this.dataPath);
    this.size = size;
  }
}

/** Where a stored message is, so it can be acked or re-read. */
export interface StoredRef {
  readonly segment: Segment;
  readonly offset: number;
}

/** A record read back from the tail (or recovered). */
export interface TailRecord extends RecordFields {
  ref: StoredRef;
  /** Delivered (maybe) before a restart: to be delivered with the redelivered flag. */
  redelivered: boolean;
  persistent: boolean;
}

export interface QueueStoreOptions {
  segmentSize: number;
  commit: CommitScheduler;
  logger: StoreLogger;
  /** A write failed (ENOSPC, EIO): the broker raises its disk alarm. */
  onWriteError?: (err: NodeJS.ErrnoException) => void;
}

function damagedAt(seg: Segment, offset: number): [number, number] | undefined {
  return seg.damaged.find(([a, b]) => offset >= a && offset < b);
}

function segmentName(id: number, ext: string): string {
  return `${String(id).padStart(10, '0')}.${ext}`;
}

const ACK_RECORD = 8;
const ACK_MASK = 0xa5a5a5a5;
const MARKER_SLOT = 16;

/**
 * The on-disk part of one queue: append-only segment files of message records, per-segment ack
 * files, and a marker of the highest sequence number ever delivered.
 *
 * The queue's ready messages are an in-memory head followed by an on-disk tail: when memory is
 * short the queue stops keeping new messages in memory and only appends them here; the tail is
 * then every record from `cursor` to the end of the files, read back in order as the head
 * drains. So a deep queue costs disk, not heap.
 *
 * All writes are synchronous positional writes, batched per tick (`flush`), so data is in the
 * kernel before the broker tells anyone about it; durability against power loss comes from the
 * commit scheduler's fdatasync.
 */
export class QueueStore {
  readonly dir: string;
  private readonly options: QueueStoreOptions;
  private readonly segments: Segment[] = [];
  private current: Segment | null = null;
  private dirTarget: SyncTarget | null = null;
  private nextSegmentId = 1;

  /** Records encoded and not yet written: they go to `current` at `pendingOffset`. */
  private pendingBuf: Buffer = Buffer.allocUnsafe(0);
  private pendingLen = 0;
  private pendingOffset = 0;
  private pendingAcks = new Map<Segment, number[]>();

  /** Tail: records from (cursorSegment index, cursorOffset) to the end are not in memory. */
  private cursorIndex = 0;
  private cursorOffset = 0;
  tailCount = 0;
  tailBytes = 0;

  private deliveredMax = 0;
  private deliveredWritten = 0;
  private markerGen = 0;
  private marker: SyncTarget | null = null;
  /** Sequence numbers at or below this were seen before the restart. */
  private recoveredDeliveredMax = 0;
  private readBuf: Buffer = Buffer.allocUnsafe(256 * 1024);
  private peeking = false;
  private readonly flushFn = (): boolean => this.flush();
  private closed = false;
  stats = { bytesWritten: 0, recordsWritten: 0, bytesRead: 0, segmentsDeleted: 0 };

  constructor(dir: string, options: QueueStoreOptions) {
    this.dir = dir;
    this.options = options;
    options.commit.addFlusher(this.flushFn);
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** Bytes on disk in segment files. */
  get diskBytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.size;
    return n;
  }

  // ---------------------------------------------------------------- recovery

  /**
   * Open an existing queue directory: verify every record, cut a torn tail, skip damaged
   * regions, and make every live persistent record part of the tail. Returns the highest
   * sequence number found, so the queue continues after it.
   */
  recover(): {
    liveCount: number;
    liveBytes: number;
    liveBodyBytes: number;
    maxSeq: number;
    /** Blob references of live records whose body is external (one per record). */
    blobRefs: Buffer[];
  } {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return { liveCount: 0, liveBytes: 0, liveBodyBytes: 0, maxSeq: 0, blobRefs: [] };
    }
    this.readMarker();
    const ids = names
      .filter((n) => n.endsWith('.dat'))
      .map((n) => Number(n.slice(0, -4)))
      .filter((n) => Number.isInteger(n) && n > 0)
      .sort((a, b) => a - b);
    let maxSeq = this.recoveredDeliveredMax;
    let liveCount = 0;
    let liveBytes = 0;
    let liveBodyBytes = 0;
    const blobRefs: Buffer[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const isLast = i === ids.length - 1;
      const r = this.recoverSegment(id, isLast, blobRefs);
      if (r === null) continue;
      liveCount += r.live;
      liveBytes += r.liveBytes;
      liveBodyBytes += r.liveBodyBytes;
      if (r.maxSeq > maxSeq) maxSeq = r.maxSeq;
      this.nextSegmentId = id + 1;
    }
    // Remove ack files whose segment is gone (a crash between the two unlinks).
    for (const n of names) {
      if (n.endsWith('.ack') && !ids.includes(Number(n.slice(0, -4)))) {
        rmSync(join(this.dir, n), { force: true });
      }
    }
    this.cursorIndex = 0;
    this.cursorOffset = SEGMENT_HEADER.length;
    this.tailCount = liveCount;
    this.tailBytes = liveBytes;
    // Drop segments with nothing live, except the last one (it keeps taking writes).
    for (const s of [...this.segments]) {
      if (s.live === 0 && s !== this.segments[this.segments.length - 1]) this.deleteSegment(s);
    }
    this.current = this.segments[this.segments.length - 1] ?? null;
    if (this.current !== null && this.current.live === 0) this.scheduleTrim();
    return { liveCount, liveBytes, liveBodyBytes, maxSeq, blobRefs };
  }

  private recoverSegment(
    id: number,
    isLast: boolean,
    blobRefs: Buffer[],
  ): { live: number; liveBytes: number; liveBodyBytes: number; maxSeq: number } | null {
    const path = join(this.dir, segmentName(id, 'dat'));
    const fd = openSync(path, 'r+');
    const size = fstatSync(fd).size;
    const buf = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const n = readSync(fd, buf, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    let pos = SEGMENT_HEADER.length;
    if (got < SEGMENT_HEADER.length || !buf.subarray(0, 8).equals(SEGMENT_HEADER)) {
      // A damaged header must not cost the records after it: read from the first intact one.
      const first = got < SEGMENT_HEADER.length ? -1 : resync(buf, SEGMENT_HEADER.length, got);
      if (first < 0) {
        const message =
          `store: ${path} has no valid segment header (${got} bytes) and no intact record; ` +
          'ignoring the file';
        // An empty file is a segment created just before a crash, its header not yet written.
        if (got === 0) this.options.logger.info(message);
        else this.options.logger.warn(message);
        closeSync(fd);
        rmSync(path, { force: true });
        rmSync(join(this.dir, segmentName(id, 'ack')), { force: true });
        return null;
      }
      this.options.logger.warn(
        `store: ${path}: damaged segment header; repairing it and reading the records from ` +
          `offset ${first}`,
      );
      writeSync(fd, SEGMENT_HEADER, 0, SEGMENT_HEADER.length, 0);
      pos = first;
    }
    const seg = new Segment(id, this.dir, fd, got);
    if (pos > SEGMENT_HEADER.length) seg.damaged.push([SEGMENT_HEADER.length, pos]);
    const acked = this.readAcks(seg);
    const dead = new Set<number>();
    let live = 0;
    let liveBytes = 0;
    let liveBodyBytes = 0;
    let maxSeq = 0;
    while (pos < got) {
      const check = checkRecord(buf, pos, got, true);
      if (check === RecordCheck.Ok) {
        const len = recordLength(buf, pos);
        const seq = recordSeq(buf, pos);
        if (seq > maxSeq) maxSeq = seq;
        const persistent = (recordFlags(buf, pos) & RecordFlag.Persistent) !== 0;
        if (persistent && !acked.has(pos)) {
          live++;
          liveBytes += len;
          if ((recordFlags(buf, pos) & RecordFlag.External) !== 0) {
            const ref = readRecord(buf, pos).body;
            blobRefs.push(ref);
            liveBodyBytes += ref.readUInt32BE(8) * 0x1_0000_0000 + ref.readUInt32BE(12);
          } else {
            liveBodyBytes += recordBodySize(buf, pos);
          }
        } else {
          dead.add(pos);
        }
        pos += len;
        continue;
      }
      const next = resync(buf, pos + 1, got);
      if (next < 0 && (check === RecordCheck.Short || isLast)) {
        // A torn tail: a crash mid-write. Keep the intact prefix. (Intact records after a record
        // that looks short mean its length field is damaged: that is skipped below, not cut.)
        this.options.logger.warn(
          `store: ${path}: incomplete record at offset ${pos} (crash during a write); ` +
            `truncating ${got - pos} bytes, ${live} earlier records kept`,
        );
        ftruncateSync(fd, pos);
        seg.size = pos;
        break;
      }
      const skipTo = next < 0 ? got : next;
      this.options.logger.warn(
        `store: ${path}: damaged data at offset ${pos}; skipping ${skipTo - pos} bytes` +
          (next < 0 ? ' to the end of the segment' : ' to the next intact record'),
      );
      seg.damaged.push([pos, skipTo]);
      pos = skipTo;
    }
    seg.live = live;
    seg.dead = dead;
    this.segments.push(seg);
    return { live, liveBytes, liveBodyBytes, maxSeq };
  }

  private readAcks(seg: Segment): Set<number> {
    const acked = new Set<number>();
    let fd: number;
    try {
      fd = openSync(seg.ackPath, 'r+');
    } catch {
      return acked;
    }
    const size = fstatSync(fd).size;
    const buf = Buffer.allocUnsafe(size);
    readSync(fd, buf, 0, size, 0);
    const whole = size - (size % ACK_RECORD);
    let damaged = 0;
    for (let p = 0; p < whole; p += ACK_RECORD) {
      const off = buf.readUInt32BE(p);
      if ((buf.readUInt32BE(p + 4) ^ ACK_MASK) >>> 0 === off) acked.add(off);
      else damaged++;
    }
    if (damaged > 0) {
      this.options.logger.warn(
        `store: ${seg.ackPath}: ${damaged} damaged ack records ignored; ` +
          'their messages are delivered again, flagged redelivered',
      );
    }
    if (whole !== size) {
      this.options.logger.warn(
        `store: ${seg.ackPath}: incomplete ack record at offset ${whole} (crash during a ` +
          `write); truncating ${size - whole} bytes`,
      );
      ftruncateSync(fd, whole);
    }
    closeSync(fd);
    seg.ack = new SyncTarget(openSync(seg.ackPath, 'a'), seg.ackPath);
    return acked;
  }

  private readMarker(): void {
    let fd: number;
    try {
      fd = openSync(join(this.dir, 'delivered'), 'r+');
    } catch {
      return;
    }
    const buf = Buffer.alloc(MARKER_SLOT * 2);
    readSync(fd, buf, 0, buf.length, 0);
    let best = -1;
    for (let slot = 0; slot < 2; slot++) {
      const p = slot * MARKER_SLOT;
      if (crc32(buf.subarray(p, p + 12)) !== buf.readUInt32BE(p + 12)) continue;
      const gen = buf.readUInt32BE(p + 8);
      if (gen > best) {
        best = gen;
        this.recoveredDeliveredMax = buf.readUInt32BE(p) * 0x1_0000_0000 + buf.readUInt32BE(p + 4);
      }
    }
    this.markerGen = Math.max(best, 0);
    this.deliveredMax = this.recoveredDeliveredMax;
    this.deliveredWritten = this.recoveredDeliveredMax;
    this.marker = new SyncTarget(fd, join(this.dir, 'delivered'));
  }

  // ---------------------------------------------------------------- writing

  /**
   * Append a record. `toTail` says the queue keeps it only on disk (the tail); otherwise the
   * queue holds it in memory and the tail cursor moves past it.
   */
  append(fields: RecordFields, toTail: boolean): StoredRef {
    const size = recordSize(fields.exchange, fields.routingKey, fields.header, fields.body);
    const seg = this.segmentFor(size);
    const offset = seg.size;
    this.ensurePending(size);
    writeRecord(this.pendingBuf, this.pendingLen, fields);
    this.pendingLen += size;
    seg.size += size;
    seg.live++;
    if (toTail) {
      this.tailCount++;
      this.tailBytes += size;
    } else if (this.tailCount === 0) {
      this.cursorIndex = this.segments.length - 1;
      this.cursorOffset = seg.size;
    }
    this.scheduleFlush();
    return { segment: seg, offset };
  }

  private segmentFor(size: number): Segment {
    const cur = this.current;
    if (
      cur !== null &&
      (cur.size + size <= this.options.segmentSize || cur.size === SEGMENT_HEADER.length)
    ) {
      return cur;
    }
    this.flush();
    // Buffered records belong to the current segment: while the disk refuses them (full), it
    // grows past its size instead of rolling.
    if (cur !== null && this.pendingLen > 0) return cur;
    if (this.segments.length === 0) mkdirSync(this.dir, { recursive: true });
    const id = this.nextSegmentId++;
    const path = join(this.dir, segmentName(id, 'dat'));
    const fd = openSync(path, 'w+');
    const seg = new Segment(id, this.dir, fd, 0);
    this.segments.push(seg);
    this.current = seg;
    // The header is written with the first records, so a full disk fails (and retries) them all.
    this.ensurePending(SEGMENT_HEADER.length);
    SEGMENT_HEADER.copy(this.pendingBuf, this.pendingLen);
    this.pendingLen += SEGMENT_HEADER.length;
    seg.size = SEGMENT_HEADER.length;
    if (this.tailCount === 0) {
      this.cursorIndex = this.segments.length - 1;
      this.cursorOffset = seg.size;
    }
    this.options.commit.markDirty(seg.data);
    this.options.commit.markDirty(this.directory());
    return seg;
  }

  private directory(): SyncTarget {
    if (this.dirTarget === null) {
      this.dirTarget = new SyncTarget(openSync(this.dir, 'r'), this.dir, true);
    }
    return this.dirTarget;
  }

  private ensurePending(size: number): void {
    if (this.pendingLen === 0 && this.current !== null) {
      this.pendingOffset = this.current.size;
    }
    const need = this.pendingLen + size;
    if (need <= this.pendingBuf.length) return;
    const next = Buffer.allocUnsafe(Math.max(need, this.pendingBuf.length * 2, 64 * 1024));
    this.pendingBuf.copy(next, 0, 0, this.pendingLen);
    this.pendingBuf = next;
  }

  /** Release a stored record: write an ack for a persistent one, free the segment when empty. */
  release(ref: StoredRef, persistent: boolean): void {
    const seg = ref.segment;
    if (seg.deleted) return;
    if (persistent) {
      let list = this.pendingAcks.get(seg);
      if (list === undefined) {
        list = [];
        this.pendingAcks.set(seg, list);
      }
      list.push(ref.offset);
      this.scheduleFlush();
    }
    seg.live--;
    if (seg.live === 0) this.maybeDeleteSegment(seg);
  }

  /** Remember that a sequence number reached a consumer (for the redelivered flag after a crash). */
  noteDelivered(seq: number): void {
    if (seq > this.deliveredMax) {
      this.deliveredMax = seq;
      this.scheduleFlush();
    }
  }

  private flushScheduled = false;
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.options.commit.requestFlush(this.flushFn);
    process.nextTick(this.flushFn);
  }

  /**
   * Write buffered records, acks and the delivery marker to the kernel. False when a write
   * failed (disk full, I/O error): what was not written stays buffered, is retried, and no
   * commit counts it as durable meanwhile.
   */
  flush(): boolean {
    this.flushScheduled = false;
    if (this.closed) return true;
    try {
      this.writePending();
      this.writeAcks();
      if (this.deliveredMax > this.deliveredWritten) this.writeMarker();
    } catch (err) {
      this.writeFailed(err as NodeJS.ErrnoException);
      return false;
    }
    if (this.retryTimer !== null) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    return true;
  }

  private writePending(): void {
    if (this.pendingLen === 0 || this.current === null) return;
    const seg = this.current;
    const commit = this.options.commit;
    let off = 0;
    try {
      while (off < this.pendingLen) {
        off += writeSync(
          seg.data.fd,
          this.pendingBuf,
          off,
          this.pendingLen - off,
          this.pendingOffset + off,
        );
      }
    } finally {
      if (off > 0) {
        // Keep what was not written at the front of the buffer, for the retry.
        this.pendingBuf.copyWithin(0, off, this.pendingLen);
        this.pendingLen -= off;
        this.pendingOffset += off;
        this.stats.bytesWritten += off;
        commit.markDirty(seg.data);
      }
    }
    if (this.pendingBuf.length > 4 * 1024 * 1024) this.pendingBuf = Buffer.allocUnsafe(0);
  }

  private writeAcks(): void {
    if (this.pendingAcks.size === 0) return;
    const commit = this.options.commit;
    for (const [seg, offsets] of this.pendingAcks) {
      if (!seg.deleted) {
        if (seg.ack === null) {
          seg.ack = new SyncTarget(openSync(seg.ackPath, 'a'), seg.ackPath);
          commit.markDirty(this.directory());
        }
        const buf = Buffer.allocUnsafe(offsets.length * ACK_RECORD);
        for (let i = 0; i < offsets.length; i++) {
          buf.writeUInt32BE(offsets[i]!, i * ACK_RECORD);
          buf.writeUInt32BE((offsets[i]! ^ ACK_MASK) >>> 0, i * ACK_RECORD + 4);
        }
        const fd = seg.ack.fd;
        let done = 0;
        try {
          while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done);
        } finally {
          if (done < buf.length) {
            // Disk full: keep the acks not written for the retry, and cut a half-written one,
            // which would misalign every ack appended after it.
            const part = done % ACK_RECORD;
            if (part !== 0) ftruncateSync(fd, fstatSync(fd).size - part);
            offsets.splice(0, (done - part) / ACK_RECORD);
          }
          if (done > 0) commit.markDirty(seg.ack);
        }
      }
      this.pendingAcks.delete(seg);
    }
  }

  private retryTimer: NodeJS.Timeout | null = null;

  private writeFailed(err: NodeJS.ErrnoException): void {
    this.options.onWriteError?.(err);
    if (this.retryTimer !== null) return;
    this.options.logger.warn(
      `store: cannot write to ${this.dir}: ${err.code ?? err.message}; ` +
        'keeping the data in memory and retrying every second',
    );
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.flush()) this.options.logger.info(`store: writing to ${this.dir} again`);
      else this.options.commit.requestFlush(this.flushFn);
    }, 1000);
    this.retryTimer.unref();
    this.options.commit.requestFlush(this.flushFn);
  }

  private writeMarker(): void {
    if (this.marker === null) {
      mkdirSync(this.dir, { recursive: true });
      const path = join(this.dir, 'delivered');
      this.marker = new SyncTarget(openSync(path, 'w+'), path);
      this.options.commit.markDirty(this.directory());
    }
    const gen = ++this.markerGen;
    const buf = Buffer.allocUnsafe(MARKER_SLOT);
    buf.writeUInt32BE(Math.floor(this.deliveredMax / 0x1_0000_0000), 0);
    buf.writeUInt32BE(this.deliveredMax >>> 0, 4);
    buf.writeUInt32BE(gen, 8);
    buf.writeUInt32BE(crc32(buf.subarray(0, 12)), 12);
    // Two slots written alternately: a torn write leaves the other one valid.
    writeSync(this.marker.fd, buf, 0, MARKER_SLOT, (gen % 2) * MARKER_SLOT);
    this.deliveredWritten = this.deliveredMax;
    this.options.commit.markDirty(this.marker);
  }

  // ---------------------------------------------------------------- reading the tail

  /**
   * Read up to `maxCount` live records (or about `maxBytes`) from the tail, oldest first. They
   * leave the tail: the caller now holds them in memory.
   */
  readTail(maxCount: number, maxBytes: number): TailRecord[] {
    const out: TailRecord[] = [];
    if (this.tailCount === 0) return out;
    this.flush();
    let bytes = 0;
    while (out.length < maxCount && bytes < maxBytes && this.tailCount > 0) {
      const seg = this.segments[this.cursorIndex];
      if (seg === undefined) break;
      if (this.cursorOffset >= seg.size) {
        if (seg === this.current) {
          // Everything readable was read: counts that disagree come from damaged records.
          this.tailCount = 0;
          this.tailBytes = 0;
          break;
        }
        if (!this.peeking) seg.dead = null;
        this.cursorIndex++;
        this.cursorOffset = SEGMENT_HEADER.length;
        continue;
      }
      const skip = damagedAt(seg, this.cursorOffset);
      if (skip !== undefined) {
        this.cursorOffset = skip[1];
        continue;
      }
      const want = Math.min(Math.max(maxBytes - bytes, 64 * 1024), seg.size - this.cursorOffset);
      const buf = this.fill(seg, this.cursorOffset, want);
      // Nothing readable where records should be (files changed under us): stop, never spin.
      if (buf.length === 0) break;
      let pos = 0;
      while (pos < buf.length && out.length < maxCount) {
        if (seg.damaged.length > 0 && pos > 0 && damagedAt(seg, this.cursorOffset)) break;
        const check = checkRecord(buf, pos, buf.length, false);
        if (check === RecordCheck.Short) {
          if (pos === 0) {
            // One record larger than the read: read exactly it (skipping it if it is dead, like
            // any other).
            const len = buf.length >= 8 ? buf.readUInt32BE(4) + 12 : 12;
            const whole = this.fill(seg, this.cursorOffset, len);
            if (whole.length < len) return out;
            if (seg.dead === null || !seg.dead.has(this.cursorOffset)) {
              this.take(seg, whole, 0, out);
              bytes += len;
            }
            this.cursorOffset += len;
          }
          break;
        }
        if (check === RecordCheck.Bad) {
          // Damage that appeared after recovery (the disk changed under us): what follows in
          // this segment cannot be trusted. Skip the rest of it and say so.
          this.options.logger.warn(
            `store: ${seg.dataPath}: damaged record at offset ${this.cursorOffset} while reading; ` +
              `skipping the rest of the segment`,
          );
          seg.damaged.push([this.cursorOffset, seg.size]);
          break;
        }
        const len = recordLength(buf, pos);
        if (seg.dead === null || !seg.dead.has(this.cursorOffset)) {
          this.take(seg, buf, pos, out);
          bytes += len;
        }
        pos += len;
        this.cursorOffset += len;
        if (bytes >= maxBytes) break;
      }
    }
    return out;
  }

  private take(seg: Segment, buf: Buffer, pos: number, out: TailRecord[]): void {
    const r = readRecord(buf, pos);
    const persistent = (r.flags & RecordFlag.Persistent) !== 0;
    out.push({
      ...r,
      persistent,
      ref: { segment: seg, offset: this.cursorOffset },
      redelivered: r.seq <= this.recoveredDeliveredMax,
    });
    this.tailCount--;
    this.tailBytes -= recordLength(buf, pos);
  }

  private fill(seg: Segment, offset: number, len: number): Buffer {
    if (this.readBuf.length < len) this.readBuf = Buffer.allocUnsafe(len);
    // The end of the current segment may still be buffered (the disk refused it: full).
    const buffered = seg === this.current && this.pendingLen > 0;
    const fromFile = buffered ? Math.max(0, Math.min(len, this.pendingOffset - offset)) : len;
    let got = 0;
    while (got < fromFile) {
      const n = readSync(seg.data.fd, this.readBuf, got, fromFile - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    this.stats.bytesRead += got;
    if (buffered && got === fromFile && got < len) {
      const start = offset + got - this.pendingOffset;
      const n = Math.min(len - got, this.pendingLen - start);
      if (n > 0) got += this.pendingBuf.copy(this.readBuf, got, start, start + n);
    }
    return this.readBuf.subarray(0, got);
  }

  /** Up to `maxCount` tail records, oldest first, left in the tail (browsing). */
  peekTail(maxCount: number): TailRecord[] {
    const saved = [this.cursorIndex, this.cursorOffset, this.tailCount, this.tailBytes] as const;
    this.peeking = true;
    try {
      return this.readTail(maxCount, 16 * 1024 * 1024);
    } finally {
      this.peeking = false;
      [this.cursorIndex, this.cursorOffset, this.tailCount, this.tailBytes] = saved;
    }
  }

  /** Drop every tail record (purge), acking the persistent ones. Returns how many. */
  purgeTail(): number {
    let n = 0;
    while (this.tailCount > 0) {
      const batch = this.readTail(4096, 8 * 1024 * 1024);
      if (batch.length === 0) break;
      for (const r of batch) this.release(r.ref, r.persistent);
      n += batch.length;
    }
    return n;
  }

  // ---------------------------------------------------------------- space

  private maybeDeleteSegment(seg: Segment): void {
    if (seg.deleted) return;
    if (seg === this.current) {
      this.scheduleTrim();
      return;
    }
    const idx = this.segments.indexOf(seg);
    if (idx >= this.cursorIndex && this.tailCount > 0) {
      // Records of this segment may still be in the tail; they are live then, so live > 0.
      // Only reached when everything in it was released, so the cursor can skip it.
      if (idx === this.cursorIndex) {
        this.cursorIndex++;
        this.cursorOffset = SEGMENT_HEADER.length;
      }
    }
    this.deleteSegment(seg);
  }

  private trimTimer: NodeJS.Timeout | null = null;

  /**
   * A drained queue gives its disk back: the current segment, once nothing in it is live, is
   * deleted if it is still so a moment later (not at once: a queue that keeps emptying would
   * create and delete a file per message). The next append starts a new segment.
   */
  private scheduleTrim(): void {
    if (this.trimTimer !== null || this.closed) return;
    this.trimTimer = setTimeout(() => {
      this.trimTimer = null;
      const cur = this.current;
      if (this.closed || cur === null || cur.live > 0 || this.tailCount > 0) return;
      this.flush();
      if (this.pendingLen > 0) return;
      this.deleteSegment(cur);
      this.current = null;
    }, 1000);
    this.trimTimer.unref();
  }

  private deleteSegment(seg: Segment): void {
    const idx = this.segments.indexOf(seg);
    if (idx < 0) return;
    seg.deleted = true;
    this.pendingAcks.delete(seg);
    this.segments.splice(idx, 1);
    if (idx < this.cursorIndex) this.cursorIndex--;
    seg.data.close();
    seg.ack?.close();
    rmSync(seg.dataPath, { force: true });
    rmSync(seg.ackPath, { force: true });
    this.stats.segmentsDeleted++;
    this.options.commit.markDirty(this.directory());
  }

  /** Delete everything (the queue was deleted). */
  destroy(): void {
    for (const seg of this.segments) seg.deleted = true;
    this.pendingAcks.clear();
    this.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    if (this.trimTimer !== null) clearTimeout(this.trimTimer);
    this.options.commit.removeFlusher(this.flushFn);
    for (const s of this.segments) {
      s.data.close();
      s.ack?.close();
    }
    this.marker?.close();
    this.dirTarget?.close();
  }

  /** Remove a file left by an older layout, ignoring absence. */
  static unlinkQuiet(path: string): void {
    try {
      unlinkSync(path);
    } catch {
      // already gone
    }
  }
}
