import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { open, rename, unlink } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { constants as bufferConstants } from 'node:buffer';
import { ClientError, ClientErrorCode } from '../client/index.js';
import type { FieldTable } from '../client/index.js';
import { crc32Hex } from './crc32.js';
import { TransferError, TransferErrorCode, invalidTransferArgument } from './errors.js';
import { ProgressMeter } from './progress.js';
import type { TransferProgress, TransferSummary } from './progress.js';
import {
  Header,
  MessageKind,
  chunkCount,
  intHeader,
  protocolError,
  stringHeader,
} from './protocol.js';
import type { TransferMeta, TransferOffer } from './protocol.js';
import { tickFor } from './transfer-host.js';
import type { TransferHost } from './transfer-host.js';

export interface IncomingTransferEvents {
  /** Bytes verified and handed to the application so far (throttled; a last one on completion). */
  progress: [progress: TransferProgress];
  /** The transfer resumed after a connection drop, from this verified offset. */
  resume: [offset: number];
}

export const IncomingState = {
  /** Accepted; nothing requested until the application starts reading. */
  Idle: 'idle',
  Active: 'active',
  Done: 'done',
  Failed: 'failed',
} as const;
export type IncomingState = (typeof IncomingState)[keyof typeof IncomingState];

/** @internal */
export interface IncomingLimits {
  window: number;
  timeout: number;
  retryInterval: number;
  maxRetries: number;
}

interface Outstanding {
  /** When it was last requested (ms). */
  at: number;
  /** Copies that failed their CRC. */
  corrupt: number;
}

/**
 * The receiver's side of one transfer (the seed's "IncomingTransfer"). It keeps at most `window`
 * chunks requested ahead of what the application has consumed, verifies each chunk's CRC-32 as it
 * arrives (a bad one is requested again at once, a missing one after `retryInterval`), hands
 * chunks over in order, hashes them into the payload's SHA-256, and on the last one compares that
 * with the sender's and tells the sender it is done. Memory: at most `window` chunks.
 *
 * Read it one way: `stream()`, `buffer()`, `toFile(path)`, or `for await (const chunk of t)`.
 * Nothing is requested until it is read, so an application can look at the offer (size, name)
 * and `abort()` to decline.
 */
export class IncomingTransfer
  extends EventEmitter<IncomingTransferEvents>
  implements AsyncIterableIterator<Buffer>
{
  readonly id: string;
  readonly offer: TransferOffer;
  /** Resolves once the whole payload is verified and handed over; rejects with a TransferError. */
  readonly done: Promise<TransferSummary>;

  private stateValue: IncomingState = IncomingState.Idle;
  private readonly host: TransferHost;
  private readonly limits: IncomingLimits;
  private readonly window: number;
  /** Requests coalesce until this many window slots are free. */
  private readonly batch: number;
  private readonly C: number;
  /** Next chunk index to hand to the application. */
  private nextIndex = 0;
  /** One past the highest chunk index requested. */
  private top = 0;
  /** Index of the last chunk, or -1 until known. */
  private lastIndex: number;
  private knownSize: number;
  private senderSha: string | undefined;
  private readonly held = new Map<number, Buffer>();
  private readonly outstanding = new Map<number, Outstanding>();
  private readonly hash = createHash('sha256');
  private bytes = 0;
  private lastHeard = Date.now();
  private lastSent = Date.now();
  private waiter: { resolve: () => void; reject: (err: Error) => void } | null = null;
  private claimed: string | null = null;
  private meter: ProgressMeter | null = null;
  private error: TransferError | null = null;
  private chunksAccepted = 0;
  private retries = 0;
  private corrupt = 0;
  private resumes = 0;
  private resolveDone!: (s: TransferSummary) => void;
  private rejectDone!: (err: Error) => void;

  /** @internal use `endpoint.receive()` or `endpoint.accept()`. */
  constructor(host: TransferHost, offer: TransferOffer, limits: IncomingLimits) {
    super();
    this.host = host;
    this.id = offer.id;
    this.offer = offer;
    this.limits = limits;
    this.C = offer.chunkSize;
    this.window = Math.max(1, Math.min(limits.window, offer.window));
    this.batch = Math.max(1, Math.floor(this.window / 4));
    this.knownSize = offer.size;
    this.lastIndex = offer.size >= 0 ? chunkCount(offer.size, offer.chunkSize) - 1 : -1;
    this.senderSha = offer.sha256;
    this.done = new Promise<TransferSummary>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    this.done.catch(() => undefined);
  }

  get state(): IncomingState {
    return this.stateValue;
  }

  /** Total bytes: from the offer, or once the last chunk came; -1 while unknown. */
  get size(): number {
    return this.knownSize;
  }

  get name(): string | undefined {
    return this.offer.name;
  }

  get contentType(): string | undefined {
    return this.offer.contentType;
  }

  get meta(): TransferMeta {
    return this.offer.meta ?? {};
  }

  /** Payload bytes verified and handed over so far. */
  get received(): number {
    return this.bytes;
  }

  /** Chunks held in memory (verified, not yet consumed) plus chunks requested and not yet here. */
  get inFlight(): number {
    return this.top - this.nextIndex;
  }

  /** Stop (or decline) the transfer: the sender is told and `done` rejects. */
  abort(reason = 'aborted by the receiving application'): void {
    this.fail(
      new TransferError(
        TransferErrorCode.Aborted,
        this.id,
        `transfer ${this.id} was aborted: ${reason}`,
      ),
      true,
    );
  }

  // ------------------------------------------------------------------ consuming

  /** The payload as a byte stream with backpressure (chunks are requested as it is read). */
  stream(): Readable {
    this.claim('stream()');
    const readable: Readable = new Readable({
      highWaterMark: this.C,
      read: () => {
        this.pull().then(
          (r) => {
            if (r.done === true) readable.push(null);
            else readable.push(r.value);
          },
          (err: Error) => readable.destroy(err),
        );
      },
      destroy: (err, cb) => {
        if (!this.isOver) {
          this.abort(
            err !== null
              ? `the stream failed: ${err.message}`
              : 'the stream was destroyed before the end',
          );
        }
        cb(err);
      },
    });
    return readable;
  }

  /** The whole payload in one Buffer (it must fit in memory: use stream() or toFile() otherwise). */
  async buffer(): Promise<Buffer> {
    this.claim('buffer()');
    if (this.knownSize > bufferConstants.MAX_LENGTH) {
      const err = invalidTransferArgument(
        `transfer ${this.id} has ${this.knownSize} bytes, more than a Buffer holds; use stream() or toFile()`,
      );
      this.abort(err.message);
      throw err;
    }
    if (this.knownSize >= 0) {
      const out = Buffer.allocUnsafe(this.knownSize);
      let pos = 0;
      for (let r = await this.pull(); r.done !== true; r = await this.pull()) {
        r.value.copy(out, pos);
        pos += r.value.length;
      }
      return out;
    }
    const parts: Buffer[] = [];
    let total = 0;
    for (let r = await this.pull(); r.done !== true; r = await this.pull()) {
      parts.push(r.value);
      total += r.value.length;
    }
    return Buffer.concat(parts, total);
  }

  /**
   * Write the payload to `path`, chunk by chunk as it verifies. It goes to a temporary file next
   * to `path` that is renamed once the whole payload's SHA-256 matched, and removed on failure.
   */
  async toFile(path: string): Promise<TransferSummary> {
    this.claim('toFile()');
    const part = `${path}.${this.id.slice(0, 12)}.part`;
    let fh;
    try {
      fh = await open(part, 'w');
    } catch (err) {
      const e = this.sinkError(`cannot create '${part}': ${(err as Error).message}`, err);
      this.fail(e, true);
      throw e;
    }
    try {
      let pos = 0;
      for (let r = await this.pull(); r.done !== true; r = await this.pull()) {
        const b = r.value;
        let off = 0;
        // Bounded: each pass writes at least one byte or throws.
        while (off < b.length) {
          const { bytesWritten } = await fh.write(b, off, b.length - off, pos + off);
          off += bytesWritten;
        }
        pos += b.length;
      }
      await fh.close();
      await rename(part, path);
    } catch (err) {
      await fh.close().catch(() => undefined);
      await unlink(part).catch(() => undefined);
      if (err instanceof TransferError) throw err;
      const e = this.sinkError(`writing '${path}' failed: ${(err as Error).message}`, err);
      this.fail(e, true);
      throw e;
    }
    return this.done;
  }

  [Symbol.asyncIterator](): this {
    this.claim('iteration');
    return this;
  }

  /** The next verified chunk, in order (never an empty one). */
  next(): Promise<IteratorResult<Buffer>> {
    return this.pull();
  }

  /** Leaving a for-await loop early aborts the transfer. */
  return(): Promise<IteratorResult<Buffer>> {
    if (!this.isOver) this.abort('the application stopped reading');
    return Promise.resolve({ value: undefined, done: true });
  }

  private claim(how: string): void {
    if (this.claimed !== null) {
      throw invalidTransferArgument(
        `transfer ${this.id} is already being read with ${this.claimed}; read it one way only`,
      );
    }
    this.claimed = how;
  }

  private async pull(): Promise<IteratorResult<Buffer>> {
    if (this.waiter !== null) {
      throw invalidTransferArgument(`transfer ${this.id} is already waiting for a chunk`);
    }
    this.start();
    // Each pass hands out a chunk, finishes, or waits for the next chunk to arrive.
    for (;;) {
      if (this.error !== null) throw this.error;
      if (this.stateValue === IncomingState.Done) return { value: undefined, done: true };
      const b = this.held.get(this.nextIndex);
      if (b !== undefined) {
        this.held.delete(this.nextIndex);
        this.nextIndex++;
        this.hash.update(b);
        this.bytes += b.length;
        this.meter?.update(this.bytes, this.knownSize);
        this.pump(false);
        if (b.length > 0) return { value: b, done: false };
        continue;
      }
      if (this.lastIndex !== -1 && this.nextIndex > this.lastIndex) {
        this.complete();
        continue;
      }
      await new Promise<void>((resolve, reject) => {
        this.waiter = { resolve, reject };
      });
      this.waiter = null;
    }
  }

  private start(): void {
    if (this.stateValue !== IncomingState.Idle) return;
    this.stateValue = IncomingState.Active;
    this.meter = new ProgressMeter(this.id, (p) => this.emit('progress', p));
    this.host.watch(tickFor(this.limits.timeout, this.limits.retryInterval, this.offer.timeout));
    this.pump(true);
  }

  /** Request more chunks if the window has room (coalesced unless `force`). */
  private pump(force: boolean): void {
    if (this.stateValue !== IncomingState.Active) return;
    const end =
      this.lastIndex === -1
        ? this.nextIndex + this.window
        : Math.min(this.nextIndex + this.window, this.lastIndex + 1);
    const free = end - this.top;
    if (free <= 0) return;
    const remaining = this.lastIndex === -1 ? Infinity : this.lastIndex + 1 - this.top;
    if (!force && free < this.batch && free < remaining && this.outstanding.size > 0) return;
    const now = Date.now();
    // The sender owes nothing while none is outstanding: its silence counts from now.
    if (this.outstanding.size === 0) this.lastHeard = now;
    const from = this.top;
    for (let i = from; i < end; i++) this.outstanding.set(i, { at: now, corrupt: 0 });
    this.top = end;
    this.request(from, end - from);
  }

  private request(from: number, count: number): void {
    let v = this.nextIndex;
    while (this.held.has(v)) v++;
    const verified = this.knownSize >= 0 ? Math.min(v * this.C, this.knownSize) : v * this.C;
    this.send(MessageKind.Request, {
      [Header.Offset]: from * this.C,
      [Header.Count]: count,
      [Header.Verified]: verified,
    });
  }

  /** Request again the outstanding chunks `pick` selects, as few messages as ranges. */
  private rerequest(now: number, pick: (o: Outstanding) => boolean): number {
    const idx: number[] = [];
    for (const [i, o] of this.outstanding) {
      if (!pick(o)) continue;
      o.at = now;
      idx.push(i);
    }
    if (idx.length === 0) return 0;
    idx.sort((a, b) => a - b);
    let start = idx[0]!;
    let prev = start;
    for (let k = 1; k <= idx.length; k++) {
      const i = idx[k];
      if (i === prev + 1) {
        prev = i;
        continue;
      }
      this.request(start, prev - start + 1);
      if (i !== undefined) start = prev = i;
    }
    return idx.length;
  }

  private complete(): void {
    const sha = this.hash.digest('hex');
    if (sha !== this.senderSha) {
      this.fail(
        new TransferError(
          TransferErrorCode.Checksum,
          this.id,
          `transfer ${this.id}: the payload received has SHA-256 ${sha}, the sender's is ${this.senderSha ?? '(none)'}; every chunk passed its CRC, so the source probably changed while it was sent`,
        ),
        true,
      );
      return;
    }
    this.stateValue = IncomingState.Done;
    this.send(MessageKind.Done, { [Header.Size]: this.bytes, [Header.Sha256]: sha });
    const meter = this.meter!;
    meter.update(this.bytes, this.bytes, true);
    const elapsed = meter.elapsed;
    this.cleanup();
    this.resolveDone({
      id: this.id,
      bytes: this.bytes,
      sha256: sha,
      elapsed,
      rate: elapsed > 0 ? (this.bytes * 1000) / elapsed : 0,
      chunks: this.chunksAccepted,
      retries: this.retries,
      corrupt: this.corrupt,
      resumes: this.resumes,
    });
  }

  // ------------------------------------------------------------------ from the sender

  /** @internal a chunk message. */
  onChunk(headers: FieldTable, body: Buffer): void {
    if (this.stateValue !== IncomingState.Active) return;
    const now = Date.now();
    this.lastHeard = now;
    let offset: number;
    let crc: string | undefined;
    try {
      offset = intHeader(headers, Header.Offset, this.id, 0, Number.MAX_SAFE_INTEGER);
      crc = stringHeader(headers, Header.Crc32, this.id);
      if (crc === undefined) throw protocolError(this.id, `a chunk has no ${Header.Crc32}`);
      if (offset % this.C !== 0) {
        throw protocolError(this.id, `chunk offset ${offset} is not a multiple of ${this.C}`);
      }
    } catch (err) {
      this.fail(err as TransferError, true);
      return;
    }
    const i = offset / this.C;
    // Already have it (a resend after a retry or a reconnect), or not asked for: ignore.
    if (i < this.nextIndex || this.held.has(i) || i >= this.top) return;
    if (crc32Hex(body) !== crc) {
      this.corrupt++;
      const o = this.outstanding.get(i) ?? { at: now, corrupt: 0 };
      o.corrupt++;
      o.at = now;
      this.outstanding.set(i, o);
      if (o.corrupt > this.limits.maxRetries) {
        this.fail(
          new TransferError(
            TransferErrorCode.Checksum,
            this.id,
            `chunk ${i} of transfer ${this.id} failed its CRC-32 ${o.corrupt} times; something between sender and receiver corrupts data`,
          ),
          true,
        );
        return;
      }
      this.retries++;
      this.request(i, 1);
      return;
    }
    try {
      this.checkShape(i, offset, headers, body);
    } catch (err) {
      this.fail(err as TransferError, true);
      return;
    }
    this.outstanding.delete(i);
    this.held.set(i, body);
    this.chunksAccepted++;
    if (i === this.nextIndex) this.wake();
  }

  /** Length, last flag, size and digest of a chunk that passed its CRC. */
  private checkShape(i: number, offset: number, headers: FieldTable, body: Buffer): void {
    const last = headers[Header.Last] === true;
    if (!last) {
      if (body.length !== this.C) {
        throw protocolError(
          this.id,
          `chunk ${i} has ${body.length} bytes, not ${this.C}, and is not the last`,
        );
      }
      if (i === this.lastIndex) {
        throw protocolError(
          this.id,
          `chunk ${i} should be the last (the payload has ${this.knownSize} bytes)`,
        );
      }
      return;
    }
    const size = intHeader(headers, Header.Size, this.id, 0, Number.MAX_SAFE_INTEGER);
    if (body.length > this.C || size !== offset + body.length) {
      throw protocolError(
        this.id,
        `the last chunk (${body.length} bytes at ${offset}) does not end at its ${Header.Size} ${size}`,
      );
    }
    if (this.knownSize >= 0 && size !== this.knownSize) {
      throw protocolError(
        this.id,
        `the payload ends at ${size} bytes, the offer said ${this.knownSize}`,
      );
    }
    const sha = stringHeader(headers, Header.Sha256, this.id);
    if (sha === undefined || !/^[0-9a-f]{64}$/.test(sha)) {
      throw protocolError(this.id, `the last chunk has no valid ${Header.Sha256}`);
    }
    if (this.senderSha !== undefined && sha !== this.senderSha) {
      throw new TransferError(
        TransferErrorCode.Checksum,
        this.id,
        `transfer ${this.id}: the sender's SHA-256 at the end (${sha}) differs from the one it offered (${this.senderSha})`,
      );
    }
    this.senderSha = sha;
    this.knownSize = size;
    this.lastIndex = i;
    for (const k of this.outstanding.keys()) if (k > i) this.outstanding.delete(k);
    for (const k of this.held.keys()) if (k > i) this.held.delete(k);
    if (this.top > i + 1) this.top = i + 1;
  }

  /** @internal the sender aborted. */
  onAbort(code: TransferErrorCode, reason: string): void {
    this.fail(
      new TransferError(code, this.id, `the sender aborted transfer ${this.id}: ${reason}`),
      false,
    );
  }

  /** @internal a ping from the sender; `resume`: it reconnected and may have lost chunks. */
  onPing(resume: boolean): void {
    this.lastHeard = Date.now();
    if (resume) this.resume();
  }

  /** @internal our connection came back. */
  onReconnected(): void {
    this.resume();
  }

  /** Ask again for everything outstanding: the drop may have lost requests or chunks. */
  private resume(): void {
    if (this.stateValue !== IncomingState.Active) return;
    const now = Date.now();
    this.lastHeard = now;
    this.resumes++;
    let v = this.nextIndex;
    while (this.held.has(v)) v++;
    this.emit('resume', Math.min(v * this.C, this.knownSize >= 0 ? this.knownSize : Infinity));
    this.rerequest(now, () => true);
  }

  /** @internal the endpoint's timer. */
  tick(now: number): void {
    if (this.stateValue !== IncomingState.Active) return;
    if (this.outstanding.size > 0) {
      if (now - this.lastHeard > this.limits.timeout) {
        this.fail(
          new TransferError(
            TransferErrorCode.Timeout,
            this.id,
            `the sender of transfer ${this.id} sent nothing for ${this.limits.timeout} ms; it probably went away (timeout raises the limit)`,
          ),
          true,
        );
        return;
      }
      this.retries += this.rerequest(now, (o) => now - o.at >= this.limits.retryInterval);
    }
    // While the application is not reading, nothing else tells the sender we are still here.
    if (now - this.lastSent > Math.min(this.limits.timeout, this.offer.timeout) / 3) {
      this.send(MessageKind.Ping, {});
    }
  }

  /** @internal the endpoint or connection closed. */
  close(err: TransferError): void {
    this.fail(err, true);
  }

  // ------------------------------------------------------------------ plumbing

  private get isOver(): boolean {
    return this.stateValue === IncomingState.Done || this.stateValue === IncomingState.Failed;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.resolve();
  }

  private send(kind: MessageKind, headers: FieldTable): void {
    this.lastSent = Date.now();
    const to = this.offer.sender;
    this.host.control(to, kind, this.id, headers).catch((err: unknown) => {
      if (err instanceof ClientError && err.code === ClientErrorCode.Unroutable) {
        this.fail(
          new TransferError(
            TransferErrorCode.PeerGone,
            this.id,
            `the sender of transfer ${this.id} is gone (its queue '${to}' no longer exists); ask for the payload again`,
          ),
          false,
        );
      }
    });
  }

  private sinkError(text: string, cause: unknown): TransferError {
    return new TransferError(TransferErrorCode.Sink, this.id, `transfer ${this.id}: ${text}`, {
      cause,
    });
  }

  private fail(err: TransferError, tell: boolean): void {
    if (this.isOver) return;
    this.stateValue = IncomingState.Failed;
    this.error = err;
    if (tell) {
      this.send(MessageKind.Abort, { [Header.Code]: err.code, [Header.Reason]: err.message });
    }
    this.cleanup();
    const w = this.waiter;
    this.waiter = null;
    w?.reject(err);
    this.rejectDone(err);
  }

  private cleanup(): void {
    this.held.clear();
    this.outstanding.clear();
    this.host.release(this.id, 'incoming');
  }

  /** The error the transfer failed with, if it did. */
  get failure(): TransferError | null {
    return this.error;
  }
}
