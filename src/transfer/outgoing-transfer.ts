import { EventEmitter } from 'node:events';
import { ClientError, ClientErrorCode } from '../client/index.js';
import type { FieldTable } from '../client/index.js';
import { Deque } from '../util/deque.js';
import { crc32Hex } from './crc32.js';
import { TransferError, TransferErrorCode } from './errors.js';
import { ProgressMeter } from './progress.js';
import type { TransferProgress, TransferSummary } from './progress.js';
import { Header, MAX_WINDOW, MessageKind, chunkCount, stringHeader } from './protocol.js';
import type { TransferOffer } from './protocol.js';
import type { SourceReader } from './sources.js';
import { tickFor } from './transfer-host.js';
import type { TransferHost } from './transfer-host.js';

export interface OutgoingTransferEvents {
  /** Bytes sent so far (throttled; a last one on completion). */
  progress: [progress: TransferProgress];
}

export const OutgoingState = {
  /** Offered; no receiver has asked for anything yet. */
  Offered: 'offered',
  /** A receiver is pulling chunks. */
  Active: 'active',
  Done: 'done',
  Failed: 'failed',
} as const;
export type OutgoingState = (typeof OutgoingState)[keyof typeof OutgoingState];

/** @internal timing of one outgoing transfer. */
export interface OutgoingLimits {
  timeout: number;
  acceptTimeout: number;
}

/**
 * The sender's side of one transfer (the seed's "OngoingTransfer"), minus the drawback: it holds
 * no payload, only a reader that produces a chunk when a receiver asks for it. Requests are served
 * in the order they come, one chunk at a time, each written before the next is read, so what it
 * holds is one chunk plus what the connection has not yet written (and, for a stream source, the
 * look-behind window). Ends when the receiver says done, either side aborts, or the receiver is
 * silent for `timeout` (`acceptTimeout` before its first request).
 */
export class OutgoingTransfer extends EventEmitter<OutgoingTransferEvents> {
  readonly id: string;
  /** The transfer metadata a receiver needs (also what `send` put in the offer message). */
  readonly offer: TransferOffer;
  /** Resolves when the receiver has verified the whole payload; rejects with a TransferError. */
  readonly done: Promise<TransferSummary>;

  private stateValue: OutgoingState = OutgoingState.Offered;
  private readonly host: TransferHost;
  private readonly reader: SourceReader;
  private readonly limits: OutgoingLimits;
  /** The receiver's queue, from its first request. */
  private peer: string | null = null;
  private readonly pending = new Deque<number>(16);
  /** Pending chunk -> the latest request (by number) that asked for it. */
  private readonly pendingSet = new Map<number, number>();
  private requests = 0;
  /** Requests up to this number have seen the last chunk served after them. */
  private lastServedFor = 0;
  private serving = false;
  /** The receiver holds every chunk before this one. */
  private verifiedIndex = 0;
  private readonly createdAt = Date.now();
  private lastHeard = Date.now();
  private lastSent = Date.now();
  /** End offset of the furthest chunk sent. */
  private sentBytes = 0;
  private chunksSent = 0;
  private resent = 0;
  private meter: ProgressMeter;
  private resolveDone!: (s: TransferSummary) => void;
  private rejectDone!: (err: Error) => void;
  private error: TransferError | null = null;

  /** @internal use `endpoint.offer()` or `endpoint.send()`. */
  constructor(
    host: TransferHost,
    offer: TransferOffer,
    reader: SourceReader,
    limits: OutgoingLimits,
  ) {
    super();
    this.host = host;
    this.id = offer.id;
    this.offer = offer;
    this.reader = reader;
    this.limits = limits;
    this.meter = new ProgressMeter(offer.id, (p) => this.emit('progress', p));
    this.done = new Promise<TransferSummary>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // Callers that only watch events must not get an unhandled rejection.
    this.done.catch(() => undefined);
    host.watch(tickFor(limits.timeout, limits.acceptTimeout));
  }

  get state(): OutgoingState {
    return this.stateValue;
  }

  /** Bytes the source holds in memory for this transfer (a stream's look-behind). */
  get buffered(): number {
    return this.reader.buffered;
  }

  /** Stop the transfer: the receiver is told, and `done` rejects with WARREN_ERR_TRANSFER_ABORTED. */
  abort(reason = 'aborted by the sending application'): void {
    this.fail(
      new TransferError(
        TransferErrorCode.Aborted,
        this.id,
        `transfer ${this.id} was aborted: ${reason}`,
      ),
      true,
    );
  }

  // ------------------------------------------------------------------ from the receiver

  /** @internal a chunk request: `count` chunks from byte `offset`; the receiver holds all before `verified`. */
  onRequest(offset: number, count: number, verified: number, replyTo: string): void {
    if (this.isOver) return;
    const C = this.offer.chunkSize;
    if (this.peer === null) {
      this.peer = replyTo;
      this.stateValue = OutgoingState.Active;
      // Time and rate count from the first request, not from the offer.
      this.meter = new ProgressMeter(this.id, (p) => this.emit('progress', p));
    } else if (this.peer !== replyTo) {
      // One receiver per transfer: a second one (a duplicate receive of the same offer) is refused.
      void this.host
        .control(replyTo, MessageKind.Abort, this.id, {
          [Header.Code]: TransferErrorCode.Aborted,
          [Header.Reason]: 'another receiver is already pulling this transfer',
        })
        .catch(() => undefined);
      return;
    }
    this.lastHeard = Date.now();
    if (offset % C !== 0 || count < 1 || count > MAX_WINDOW || verified < 0) {
      this.protocolFailure(
        `bad request (offset ${offset}, count ${count}, verified ${verified}) for chunks of ${C} bytes`,
      );
      return;
    }
    const first = offset / C;
    // A request from before a reconnect can arrive late, with an older `verified`: keep the newest.
    const verifiedIndex = Math.max(this.verifiedIndex, Math.floor(verified / C));
    this.verifiedIndex = verifiedIndex;
    this.reader.release(verifiedIndex);
    if (!this.reader.seekable && first + count - 1 >= verifiedIndex + this.offer.window) {
      // A stream keeps at most `window` chunks; a receiver asking beyond would make it buffer more.
      this.protocolFailure(
        `chunks ${first}..${first + count - 1} requested with only ${verifiedIndex} verified; the sender's window is ${this.offer.window} chunks`,
      );
      return;
    }
    // Past the end (a receiver that does not know the size yet) means the last chunk.
    const lastKnown = this.reader.size >= 0 ? chunkCount(this.reader.size, C) - 1 : Infinity;
    const to = Math.min(first + count - 1, lastKnown);
    const seq = ++this.requests;
    // Chunks the receiver has verified are not sent again (a stream could not, anyway).
    for (let i = Math.max(verifiedIndex, Math.min(first, lastKnown)); i <= to; i++) {
      if (this.pendingSet.has(i)) {
        this.pendingSet.set(i, seq);
        continue;
      }
      if (this.pendingSet.size >= MAX_WINDOW) break;
      this.pendingSet.set(i, seq);
      this.pending.push(i);
    }
    if (!this.serving) void this.serve();
  }

  /** @internal the receiver verified everything. */
  onDone(headers: FieldTable): void {
    if (this.isOver) return;
    this.lastHeard = Date.now();
    void this.finish(stringHeader(headers, Header.Sha256, this.id));
  }

  /** @internal the receiver aborted. */
  onAbort(code: TransferErrorCode, reason: string): void {
    if (this.isOver) return;
    this.fail(
      new TransferError(code, this.id, `the receiver aborted transfer ${this.id}: ${reason}`),
      false,
    );
  }

  /** @internal any message from the receiver. */
  onPing(): void {
    this.lastHeard = Date.now();
  }

  /** @internal our connection came back: the receiver may have lost chunks we wrote before the drop. */
  onReconnected(): void {
    if (this.stateValue !== OutgoingState.Active || this.peer === null) return;
    this.sendControl(MessageKind.Ping, { [Header.Resume]: true });
  }

  /** @internal the endpoint's timer. */
  tick(now: number): void {
    if (this.isOver) return;
    if (this.stateValue === OutgoingState.Offered) {
      if (now - this.createdAt > this.limits.acceptTimeout) {
        this.fail(
          new TransferError(
            TransferErrorCode.Timeout,
            this.id,
            `no receiver started transfer ${this.id} within ${this.limits.acceptTimeout} ms; is anything consuming the queue? (acceptTimeout raises the limit)`,
          ),
          false,
        );
      }
      return;
    }
    if (now - this.lastHeard > this.limits.timeout) {
      this.fail(
        new TransferError(
          TransferErrorCode.Timeout,
          this.id,
          `the receiver of transfer ${this.id} was silent for ${this.limits.timeout} ms; it probably went away (timeout raises the limit)`,
        ),
        true,
      );
      return;
    }
    // A slow source: tell the receiver we are alive, so it does not give up on us.
    if (this.serving && now - this.lastSent > this.limits.timeout / 3) {
      this.sendControl(MessageKind.Ping, {});
    }
  }

  /** @internal the endpoint or connection closed. */
  close(err: TransferError): void {
    this.fail(err, true);
  }

  // ------------------------------------------------------------------ serving

  private get isOver(): boolean {
    return this.stateValue === OutgoingState.Done || this.stateValue === OutgoingState.Failed;
  }

  private async serve(): Promise<void> {
    this.serving = true;
    try {
      // Bounded: each pass takes one pending chunk; pending holds at most MAX_WINDOW.
      for (let i = this.pending.shift(); i !== undefined; i = this.pending.shift()) {
        const seq = this.pendingSet.get(i)!;
        this.pendingSet.delete(i);
        if (this.isOver) return;
        // Verified by the receiver since it was asked for (a duplicate request after a reconnect).
        if (i < this.verifiedIndex) continue;
        // Past the end of a stream (the receiver did not know the size): one copy of the last
        // chunk answers every request made before it was sent.
        const size = this.reader.size;
        if (
          size >= 0 &&
          i > chunkCount(size, this.offer.chunkSize) - 1 &&
          seq <= this.lastServedFor
        ) {
          continue;
        }
        const r = await this.reader.readChunk(i);
        if (this.isOver) return;
        const offset = r.index * this.offer.chunkSize;
        const headers: FieldTable = {
          [Header.Offset]: offset,
          [Header.Crc32]: crc32Hex(r.data),
        };
        if (r.eof) {
          this.lastServedFor = this.requests;
          headers[Header.Last] = true;
          headers[Header.Size] = offset + r.data.length;
          headers[Header.Sha256] = await this.reader.sha256();
          if (this.isOver) return;
        }
        if (offset < this.sentBytes) this.resent++;
        this.chunksSent++;
        this.lastSent = Date.now();
        try {
          await this.host.chunk(this.peer!, this.id, headers, r.data);
        } catch (err) {
          throw new TransferError(
            TransferErrorCode.Closed,
            this.id,
            `transfer ${this.id} could not publish a chunk: ${(err as Error).message}`,
            { cause: err },
          );
        }
        const end = offset + r.data.length;
        if (end > this.sentBytes) {
          this.sentBytes = end;
          this.meter.update(end, this.reader.size);
        }
      }
    } catch (err) {
      this.fail(sourceError(this.id, err), true);
    } finally {
      this.serving = false;
    }
  }

  private async finish(receiverSha: string | undefined): Promise<void> {
    let sha: string;
    try {
      sha = await this.reader.sha256();
    } catch (err) {
      this.fail(sourceError(this.id, err), false);
      return;
    }
    if (this.isOver) return;
    if (receiverSha !== undefined && receiverSha !== sha) {
      this.fail(
        new TransferError(
          TransferErrorCode.Checksum,
          this.id,
          `the receiver of transfer ${this.id} reported SHA-256 ${receiverSha}, the payload sent has ${sha}`,
        ),
        false,
      );
      return;
    }
    this.stateValue = OutgoingState.Done;
    const bytes = this.reader.size;
    this.meter.update(bytes, bytes, true);
    const elapsed = this.meter.elapsed;
    this.cleanup();
    this.resolveDone({
      id: this.id,
      bytes,
      sha256: sha,
      elapsed,
      rate: elapsed > 0 ? (bytes * 1000) / elapsed : 0,
      chunks: this.chunksSent,
      retries: this.resent,
      corrupt: 0,
      resumes: 0,
    });
  }

  private protocolFailure(text: string): void {
    this.fail(
      new TransferError(
        TransferErrorCode.Protocol,
        this.id,
        `transfer protocol violation by the receiver of transfer ${this.id}: ${text}`,
      ),
      true,
    );
  }

  /** End with `err`; `tell` sends the receiver an abort (not when it told us). */
  private fail(err: TransferError, tell: boolean): void {
    if (this.isOver) return;
    this.stateValue = OutgoingState.Failed;
    this.error = err;
    if (tell && this.peer !== null) {
      this.sendControl(MessageKind.Abort, {
        [Header.Code]: err.code,
        [Header.Reason]: err.message,
      });
    }
    this.cleanup();
    this.rejectDone(err);
  }

  private cleanup(): void {
    this.pending.clear();
    this.pendingSet.clear();
    this.host.release(this.id, 'outgoing');
    void this.reader.close().catch(() => undefined);
  }

  private sendControl(
    kind: (typeof MessageKind)[keyof typeof MessageKind],
    headers: FieldTable,
  ): void {
    const peer = this.peer;
    if (peer === null) return;
    this.lastSent = Date.now();
    this.host.control(peer, kind, this.id, headers).catch((err: unknown) => {
      if (err instanceof ClientError && err.code === ClientErrorCode.Unroutable) {
        this.fail(
          new TransferError(
            TransferErrorCode.PeerGone,
            this.id,
            `the receiver of transfer ${this.id} is gone (its queue '${peer}' no longer exists)`,
          ),
          false,
        );
      }
    });
  }

  /** The error the transfer failed with, if it did. */
  get failure(): TransferError | null {
    return this.error;
  }
}

/** A TransferError as it is, anything else (a failing RandomAccessSource) as a Source error. */
function sourceError(id: string, err: unknown): TransferError {
  return err instanceof TransferError
    ? err
    : new TransferError(
        TransferErrorCode.Source,
        id,
        `transfer ${id} failed reading its source: ${(err as Error).message}`,
        { cause: err },
      );
}
