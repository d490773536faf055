/** What a `progress` event reports. */
export interface TransferProgress {
  /** The transfer's id. */
  readonly id: string;
  /** Bytes done: verified and handed over (receiver), or sent (sender). */
  readonly bytes: number;
  /** Total bytes, or -1 while unknown (a stream source). */
  readonly total: number;
  /** Recent rate in bytes per second (smoothed over about a second). */
  readonly rate: number;
  /** Milliseconds since the transfer started. */
  readonly elapsed: number;
}

/** At most one progress event per this many ms (plus the final one). */
export const PROGRESS_INTERVAL = 100;

/**
 * Turns a growing byte count into throttled progress reports with a smoothed rate: an
 * exponential moving average of the rate measured between reports, weighted by elapsed time so
 * that it settles within about a second whatever the report rate.
 */
export class ProgressMeter {
  readonly startedAt = performance.now();
  private lastAt = this.startedAt;
  private lastBytes = 0;
  private rate = 0;

  constructor(
    private readonly id: string,
    private readonly emit: (p: TransferProgress) => void,
  ) {}

  /** Report `bytes` if a report is due (or `final`). */
  update(bytes: number, total: number, final = false): void {
    const now = performance.now();
    const dt = now - this.lastAt;
    if (!final && dt < PROGRESS_INTERVAL) return;
    if (dt > 0) {
      const instant = ((bytes - this.lastBytes) * 1000) / dt;
      const w = Math.min(1, dt / 1000);
      this.rate =
        this.lastBytes === 0 && this.rate === 0 ? instant : this.rate + w * (instant - this.rate);
    }
    this.lastAt = now;
    this.lastBytes = bytes;
    const elapsed = now - this.startedAt;
    this.emit({
      id: this.id,
      bytes,
      total,
      rate: final ? (elapsed > 0 ? (bytes * 1000) / elapsed : 0) : this.rate,
      elapsed,
    });
  }

  get elapsed(): number {
    return performance.now() - this.startedAt;
  }
}

/** How a finished transfer went. */
export interface TransferSummary {
  readonly id: string;
  /** Payload bytes. */
  readonly bytes: number;
  /** SHA-256 of the payload (hex), checked end to end. */
  readonly sha256: string;
  /** Milliseconds from the first chunk request to completion. */
  readonly elapsed: number;
  /** Average bytes per second. */
  readonly rate: number;
  /** Chunk messages sent (sender) or accepted (receiver), duplicates and resends included. */
  readonly chunks: number;
  /** Chunks requested (receiver) or sent (sender) more than once. */
  readonly retries: number;
  /** Chunks that failed their CRC-32 and were requested again (receiver). */
  readonly corrupt: number;
  /** Times the transfer resumed after a connection dropped. */
  readonly resumes: number;
}
