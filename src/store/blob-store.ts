import { randomBytes } from 'node:crypto';
import { mkdirSync, openSync, readSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { SyncTarget } from './commit-scheduler.js';
import type { CommitScheduler } from './commit-scheduler.js';
import { crc32 } from './crc32.js';
import type { StoreLogger } from './queue-store.js';

/** Size of a blob reference in a segment record: id (8) | size (8) | crc32 (4). */
export const BLOB_REF_SIZE = 20;

/**
 * A large message body kept in its own file, so it is never held in memory whole: written frame
 * by frame as it arrives, read back slice by slice as it is delivered. Reference-counted by the
 * queues (and outgoing streams) that hold it; the file goes when the last reference does.
 */
export class Blob {
  readonly id: string;
  readonly path: string;
  readonly size: number;
  readonly crc: number;
  private readonly target: SyncTarget;
  private readonly owner: BlobStore;
  private refs: number;

  constructor(
    owner: BlobStore,
    id: string,
    path: string,
    target: SyncTarget,
    size: number,
    crc: number,
    refs: number,
  ) {
    this.owner = owner;
    this.id = id;
    this.path = path;
    this.target = target;
    this.size = size;
    this.crc = crc;
    this.refs = refs;
  }

  get references(): number {
    return this.refs;
  }

  retain(): void {
    this.refs++;
  }

  release(): void {
    if (--this.refs === 0) this.owner.delete(this);
  }

  /** Read `length` bytes at `offset` into `into` at `at`. */
  readInto(offset: number, length: number, into: Buffer, at: number): void {
    let got = 0;
    while (got < length) {
      const n = readSync(this.target.fd, into, at + got, length - got, offset + got);
      if (n === 0) throw new Error(`blob ${this.id} is shorter than ${this.size} bytes`);
      got += n;
    }
  }

  /** The whole body in memory (management's get/peek only: deliveries stream it). */
  readAll(limit = this.size): Buffer {
    const n = Math.min(limit, this.size);
    const out = Buffer.allocUnsafe(n);
    this.readInto(0, n, out, 0);
    return out;
  }

  /** The reference stored in a segment record in place of the body. */
  encodeRef(): Buffer {
    const b = Buffer.allocUnsafe(BLOB_REF_SIZE);
    b.write(this.id, 0, 'hex');
    b.writeUInt32BE(Math.floor(this.size / 0x1_0000_0000), 8);
    b.writeUInt32BE(this.size >>> 0, 12);
    b.writeUInt32BE(this.crc, 16);
    return b;
  }

  /** @internal */
  closeFile(): void {
    this.target.close();
  }
}

/** A blob being written as its frames arrive. */
export class BlobWriter {
  readonly size: number;
  private written = 0;
  private crc = 0;
  private readonly id: string;
  private readonly path: string;
  private readonly target: SyncTarget;
  private readonly owner: BlobStore;
  private finished = false;

  constructor(owner: BlobStore, id: string, path: string, target: SyncTarget, size: number) {
    this.owner = owner;
    this.id = id;
    this.path = path;
    this.target = target;
    this.size = size;
  }

  get received(): number {
    return this.written;
  }

  /** Append the next part of the body (written to the kernel before returning). */
  write(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      off += writeSync(this.target.fd, chunk, off, chunk.length - off, this.written + off);
    }
    this.crc = crc32(chunk, this.crc);
    this.written += chunk.length;
  }

  /** The complete blob, holding one reference (the publisher's, released after routing). */
  finish(): Blob {
    this.finished = true;
    this.owner.commit.markDirty(this.target);
    const blob = new Blob(this.owner, this.id, this.path, this.target, this.size, this.crc, 1);
    this.owner.register(blob);
    return blob;
  }

  /** The publish did not complete (channel closed): remove the partial file. */
  abort(): void {
    if (this.finished) return;
    this.finished = true;
    this.target.close();
    rmSync(this.path, { force: true });
  }
}

/** The blob files of a data directory (blobs/<id>). */
export class BlobStore {
  readonly dir: string;
  readonly commit: CommitScheduler;
  private readonly logger: StoreLogger;
  private readonly blobs = new Map<string, Blob>();
  private dirTarget: SyncTarget | null = null;

  constructor(dir: string, commit: CommitScheduler, logger: StoreLogger) {
    this.dir = dir;
    this.commit = commit;
    this.logger = logger;
  }

  get count(): number {
    return this.blobs.size;
  }

  create(size: number): BlobWriter {
    mkdirSync(this.dir, { recursive: true });
    const id = randomBytes(8).toString('hex');
    const path = join(this.dir, id);
    const target = new SyncTarget(openSync(path, 'w+'), path);
    this.commit.markDirty(this.directory());
    return new BlobWriter(this, id, path, target, size);
  }

  /** @internal */
  register(blob: Blob): void {
    this.blobs.set(blob.id, blob);
  }

  /** @internal */
  delete(blob: Blob): void {
    this.blobs.delete(blob.id);
    blob.closeFile();
    rmSync(blob.path, { force: true });
    this.commit.markDirty(this.directory());
  }

  get(id: string): Blob | undefined {
    return this.blobs.get(id);
  }

  /**
   * A blob referenced by a recovered record, opened on first reference (further references
   * retain it). Undefined when its file is missing or of the wrong size: the record is lost.
   */
  recoverRef(ref: Buffer): Blob | undefined {
    const id = ref.toString('hex', 0, 8);
    const existing = this.blobs.get(id);
    if (existing !== undefined) {
      existing.retain();
      return existing;
    }
    const size = ref.readUInt32BE(8) * 0x1_0000_0000 + ref.readUInt32BE(12);
    const path = join(this.dir, id);
    let actual: number;
    try {
      actual = statSync(path).size;
    } catch {
      this.logger.warn(`store: large message body ${path} is missing; its message is lost`);
      return undefined;
    }
    if (actual < size) {
      this.logger.warn(
        `store: large message body ${path} has ${actual} of ${size} bytes; its message is lost`,
      );
      return undefined;
    }
    const blob = new Blob(
      this,
      id,
      path,
      new SyncTarget(openSync(path, 'r'), path),
      size,
      ref.readUInt32BE(16),
      1,
    );
    this.blobs.set(id, blob);
    return blob;
  }

  /** Delete blob files no recovered record refers to (a crash before routing or after acks). */
  removeUnreferenced(): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    for (const n of names) {
      if (!this.blobs.has(n)) rmSync(join(this.dir, n), { force: true });
    }
  }

  private directory(): SyncTarget {
    if (this.dirTarget === null) {
      mkdirSync(this.dir, { recursive: true });
      this.dirTarget = new SyncTarget(openSync(this.dir, 'r'), this.dir, true);
    }
    return this.dirTarget;
  }

  close(): void {
    for (const b of this.blobs.values()) b.closeFile();
    this.dirTarget?.close();
  }
}
