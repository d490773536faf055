import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { Deque } from '../util/deque.js';
import { TransferError, TransferErrorCode, invalidTransferArgument } from './errors.js';

/** A payload the caller can read at any offset, e.g. generated or held elsewhere. */
export interface RandomAccessSource {
  /** Total bytes. */
  readonly size: number;
  /** `length` bytes at `offset` (never past the end). May be called again for the same range. */
  read(offset: number, length: number): Promise<Uint8Array> | Uint8Array;
}

/**
 * What can be sent:
 * - a Buffer / Uint8Array (chunks are slices of it, never copied whole);
 * - `{ path }`, a file read chunk by chunk with positional reads;
 * - a RandomAccessSource;
 * - a Readable or any AsyncIterable of bytes, read once, in order, only as fast as the receiver
 *   pulls. A stream cannot be re-read, so the sender keeps what the receiver has requested but not
 *   yet verified (at most the sender's window of chunks); resuming after a reconnect works from
 *   anything in that window, but a new receiver cannot start the stream over.
 */
export type TransferSource =
  Uint8Array | { readonly path: string } | RandomAccessSource | AsyncIterable<Uint8Array | string>;

export interface ChunkRead {
  /** The chunk actually read (a read past the end gives the last chunk). */
  index: number;
  data: Buffer;
  /** This is the payload's last chunk. */
  eof: boolean;
}

/** @internal how an outgoing transfer reads its source: whole chunks, by index. */
export interface SourceReader {
  /** Total bytes, or -1 until a stream has ended. */
  readonly size: number;
  /** Chunks can be read again at any index (false for streams). */
  readonly seekable: boolean;
  /** A name to offer (the file's), if any. */
  readonly name: string | undefined;
  /** Chunk `index`; past the end, the last chunk. */
  readChunk(index: number): Promise<ChunkRead>;
  /** The receiver holds everything before chunk `index`: a stream may forget it. */
  release(index: number): void;
  /** SHA-256 (hex) of the whole payload; call once the last chunk was read. */
  sha256(): Promise<string>;
  /** Bytes held in memory for the transfer (a stream's look-behind). */
  readonly buffered: number;
  close(): Promise<void>;
}

export async function openSource(
  source: TransferSource,
  chunkSize: number,
  id: string,
): Promise<SourceReader> {
  if (source instanceof Uint8Array) {
    const buf = Buffer.isBuffer(source)
      ? source
      : Buffer.from(source.buffer, source.byteOffset, source.byteLength);
    return new SeekableReader(
      buf.length,
      chunkSize,
      undefined,
      (off, len) => buf.subarray(off, off + len),
      null,
    );
  }
  if (typeof source !== 'object' || source === null) {
    throw invalidTransferArgument(
      'a transfer source must be a Buffer, { path }, a RandomAccessSource or an async iterable of bytes',
    );
  }
  if (Symbol.asyncIterator in source) return new StreamReader(source, chunkSize, id);
  if ('path' in source && typeof source.path === 'string')
    return openFile(source.path, chunkSize, id);
  if ('read' in source && typeof source.read === 'function') {
    const size = source.size;
    if (!Number.isSafeInteger(size) || size < 0) {
      throw invalidTransferArgument(
        `a RandomAccessSource needs a size in bytes, got ${String(size)}`,
      );
    }
    return new SeekableReader(
      size,
      chunkSize,
      undefined,
      async (off, len) => {
        const d = await source.read(off, len);
        const b = Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.byteLength);
        if (b.length !== len) {
          throw new TransferError(
            TransferErrorCode.Source,
            id,
            `the source returned ${b.length} bytes at offset ${off} instead of ${len}`,
          );
        }
        return b;
      },
      null,
    );
  }
  throw invalidTransferArgument(
    'a transfer source must be a Buffer, { path }, a RandomAccessSource or an async iterable of bytes',
  );
}

async function openFile(path: string, chunkSize: number, id: string): Promise<SourceReader> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw new TransferError(
      TransferErrorCode.Source,
      id,
      `cannot open '${path}': ${(err as Error).message}`,
      { cause: err },
    );
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw invalidTransferArgument(`'${path}' is not a regular file`);
    const size = st.size;
    const mtime = st.mtimeMs;
    return new SeekableReader(
      size,
      chunkSize,
      basename(path),
      async (off, len) => {
        const buf = Buffer.allocUnsafe(len);
        let got = 0;
        // Bounded: each pass reads at least one byte or stops.
        while (got < len) {
          const { bytesRead } = await fh.read(buf, got, len - got, off + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        if (got !== len) {
          throw new TransferError(
            TransferErrorCode.Source,
            id,
            `'${path}' became shorter while it was being sent (read ${off + got} of ${size} bytes)`,
          );
        }
        return buf;
      },
      {
        async check() {
          const now = await fh.stat();
          if (now.size !== size || now.mtimeMs !== mtime) {
            throw new TransferError(
              TransferErrorCode.Source,
              id,
              `'${path}' changed while it was being sent; send it again once it is complete`,
            );
          }
        },
        close: () => fh.close(),
      },
    );
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

/**
 * Hashes a payload in order. Chunks usually arrive in order, so each is hashed as it is read;
 * when a read skips ahead, the gap is read again when the digest is asked for.
 */
class SequentialHash {
  upTo = 0;
  private readonly hash: Hash = createHash('sha256');

  offer(offset: number, data: Buffer): void {
    if (offset !== this.upTo) return;
    this.hash.update(data);
    this.upTo += data.length;
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

interface FileHooks {
  check(): Promise<void>;
  close(): Promise<void>;
}

/** A source that can be read at any offset: a Buffer, a file, a RandomAccessSource. */
class SeekableReader implements SourceReader {
  readonly seekable = true;
  readonly buffered = 0;
  private readonly hash = new SequentialHash();
  private readonly lastIndex: number;

  constructor(
    readonly size: number,
    private readonly chunkSize: number,
    readonly name: string | undefined,
    private readonly read: (offset: number, length: number) => Promise<Buffer> | Buffer,
    private readonly file: FileHooks | null,
  ) {
    this.lastIndex = size === 0 ? 0 : Math.ceil(size / chunkSize) - 1;
  }

  async readChunk(index: number): Promise<ChunkRead> {
    const i = Math.min(index, this.lastIndex);
    const off = i * this.chunkSize;
    const len = Math.min(this.chunkSize, this.size - off);
    const data = len === 0 ? Buffer.alloc(0) : await this.read(off, len);
    this.hash.offer(off, data);
    return { index: i, data, eof: i === this.lastIndex };
  }

  release(): void {}

  private digest: Promise<string> | null = null;

  sha256(): Promise<string> {
    this.digest ??= this.computeDigest();
    return this.digest;
  }

  private async computeDigest(): Promise<string> {
    // Bounded: each pass hashes one more chunk.
    while (this.hash.upTo < this.size) {
      const off = this.hash.upTo;
      this.hash.offer(off, await this.read(off, Math.min(this.chunkSize, this.size - off)));
    }
    await this.file?.check();
    return this.hash.digest();
  }

  async close(): Promise<void> {
    await this.file?.close();
  }
}

/**
 * A stream read once, in order, as the receiver pulls. It keeps the chunks from the oldest one
 * the receiver has not verified up to the newest one read: the look-behind that lets a receiver
 * ask again for a chunk lost in a reconnect. Reads go one chunk (plus one piece, to learn whether
 * the stream ended) beyond the newest chunk requested.
 */
class StreamReader implements SourceReader {
  readonly seekable = false;
  readonly name = undefined;
  size = -1;
  /** Index of the first chunk in `chunks`. */
  private base = 0;
  private readonly chunks = new Deque<Buffer>(16);
  /** Bytes read from the stream that do not make a whole chunk yet. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private ended = false;
  private readonly hash = createHash('sha256');
  private readonly it: AsyncIterator<Uint8Array | string>;
  private pulling: Promise<void> | null = null;
  private heldBytes = 0;

  constructor(
    source: AsyncIterable<Uint8Array | string>,
    private readonly chunkSize: number,
    private readonly id: string,
  ) {
    this.it = source[Symbol.asyncIterator]();
  }

  get buffered(): number {
    return this.heldBytes + this.partialBytes;
  }

  /** Index one past the last whole chunk held. */
  private get top(): number {
    return this.base + this.chunks.length;
  }

  async readChunk(index: number): Promise<ChunkRead> {
    // Bounded by the stream's length: each pass reads one more piece or ends.
    while (
      !this.ended &&
      (this.top <= index || (this.top === index + 1 && this.partialBytes === 0))
    ) {
      await this.pull();
    }
    const last = this.lastIndex();
    const i = last === -1 ? index : Math.min(index, last);
    if (i < this.base) {
      throw new TransferError(
        TransferErrorCode.CannotRewind,
        this.id,
        `chunk ${i} of a stream source was already released (the receiver had verified it); a stream cannot be read again`,
      );
    }
    const data = this.chunks.at(i - this.base) ?? Buffer.alloc(0);
    return { index: i, data, eof: i === last };
  }

  /** Index of the last chunk once the stream ended, else -1. */
  private lastIndex(): number {
    if (!this.ended) return -1;
    return this.size === 0 ? 0 : Math.ceil(this.size / this.chunkSize) - 1;
  }

  release(index: number): void {
    const last = this.lastIndex();
    // The last chunk is kept: a receiver may ask past the end to learn where it is.
    const upTo = last === -1 ? index : Math.min(index, last);
    while (this.base < upTo && this.chunks.length > 0) {
      this.heldBytes -= this.chunks.shift()!.length;
      this.base++;
    }
  }

  private pull(): Promise<void> {
    this.pulling ??= this.pullOnce().finally(() => {
      this.pulling = null;
    });
    return this.pulling;
  }

  private async pullOnce(): Promise<void> {
    let r: IteratorResult<Uint8Array | string>;
    try {
      r = await this.it.next();
    } catch (err) {
      throw new TransferError(
        TransferErrorCode.Source,
        this.id,
        `the source stream failed: ${(err as Error).message}`,
        { cause: err },
      );
    }
    if (r.done === true) {
      this.ended = true;
      if (this.partialBytes > 0 || this.top === 0) this.pushChunk(this.takePartial());
      this.size = (this.top - 1) * this.chunkSize + (this.chunks.peekLast()?.length ?? 0);
      return;
    }
    const v = r.value;
    let piece = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    // Bounded by the piece's length: each pass takes at least one byte.
    while (piece.length > 0) {
      const room = this.chunkSize - this.partialBytes;
      const take = Buffer.from(piece.buffer, piece.byteOffset, Math.min(room, piece.length));
      piece = piece.subarray(take.length);
      // A whole chunk inside one piece is kept as a view; pieces of a chunk are joined (one copy).
      this.partial.push(take);
      this.partialBytes += take.length;
      if (this.partialBytes === this.chunkSize) this.pushChunk(this.takePartial());
    }
  }

  private takePartial(): Buffer {
    const b =
      this.partial.length === 1 ? this.partial[0]! : Buffer.concat(this.partial, this.partialBytes);
    this.partial = [];
    this.partialBytes = 0;
    return b;
  }

  private pushChunk(b: Buffer): void {
    this.hash.update(b);
    this.chunks.push(b);
    this.heldBytes += b.length;
  }

  private digest: string | null = null;

  sha256(): Promise<string> {
    this.digest ??= this.hash.digest('hex');
    return Promise.resolve(this.digest);
  }

  async close(): Promise<void> {
    this.chunks.clear();
    this.heldBytes = 0;
    this.partial = [];
    this.partialBytes = 0;
    if (!this.ended) {
      this.ended = true;
      // Stop a Readable (or generator) we will not read to the end.
      await this.it.return?.().catch(() => undefined);
    }
  }
}
