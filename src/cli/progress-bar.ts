import type { TransferProgress } from '../transfer/index.js';

/** 1536 -> '1.5 KiB'. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${Math.ceil(s)}s`;
  const m = Math.floor(s / 60);
  return m < 60
    ? `${m}m${String(Math.ceil(s % 60)).padStart(2, '0')}s`
    : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** What a progress bar writes to: a terminal (redrawn in place) or anything else (plain lines). */
export interface ProgressOutput {
  write(text: string): unknown;
  readonly isTTY?: boolean | undefined;
  readonly columns?: number | undefined;
}

/** Plain lines come at most this often (ms) when the output is not a terminal. */
const LINE_INTERVAL = 1000;

/**
 * Shows a transfer's progress: on a terminal, one line redrawn in place
 * (`name [#####.....]  42%  1.2 GiB / 2.9 GiB  210 MiB/s  ETA 8s`); otherwise a plain line about
 * once a second, so logs stay readable.
 */
export class ProgressBar {
  private lastLine = 0;
  private drawn = false;

  constructor(
    private readonly out: ProgressOutput,
    private readonly label: string,
  ) {}

  update(p: TransferProgress): void {
    if (this.out.isTTY === true) {
      this.out.write(`\r${this.render(p)}\x1b[K`);
      this.drawn = true;
      return;
    }
    const now = Date.now();
    if (now - this.lastLine < LINE_INTERVAL) return;
    this.lastLine = now;
    this.out.write(`${this.plain(p)}\n`);
  }

  /** Leave the bar's line (call before printing anything else). */
  finish(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }

  private plain(p: TransferProgress): string {
    const total = p.total >= 0 ? ` of ${formatBytes(p.total)} (${percent(p)}%)` : '';
    return `${this.label}: ${formatBytes(p.bytes)}${total}, ${formatBytes(p.rate)}/s`;
  }

  private render(p: TransferProgress): string {
    const cols = this.out.columns;
    const width = cols !== undefined && cols > 0 ? Math.max(40, cols) : 80;
    const stats =
      p.total >= 0
        ? ` ${String(percent(p)).padStart(3)}%  ${formatBytes(p.bytes)} / ${formatBytes(p.total)}  ${formatBytes(p.rate)}/s  ETA ${formatSeconds(p.rate > 0 ? (p.total - p.bytes) / p.rate : Infinity)}`
        : `  ${formatBytes(p.bytes)}  ${formatBytes(p.rate)}/s`;
    const label = this.label.length > 24 ? `${this.label.slice(0, 23)}…` : this.label;
    const room = width - label.length - stats.length - 4;
    if (p.total < 0 || room < 10) return `${label}${stats}`.slice(0, width - 1);
    const filled = Math.round((room * p.bytes) / Math.max(1, p.total));
    return `${label} [${'#'.repeat(filled)}${'.'.repeat(room - filled)}]${stats}`;
  }
}

function percent(p: TransferProgress): number {
  return p.total > 0 ? Math.floor((100 * p.bytes) / p.total) : 100;
}
