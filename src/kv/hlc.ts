/** Timestamps count this many ticks per millisecond: the low digits are the logical counter. */
export const TICKS_PER_MS = 1000;

/**
 * A hybrid logical clock in one number: milliseconds since the epoch times 1000, plus a counter
 * in the low digits. Every timestamp it issues is later than every one it issued or observed, and
 * never earlier than the wall clock, so timestamps order writes causally (a write made after
 * seeing another gets a later timestamp) and, between causally unrelated writes, roughly by real
 * time. Below 2^53 until the year 2255, so plain doubles hold it exactly.
 */
export class HybridClock {
  private last = 0;

  /**
   * @param wall the physical clock (ms)
   * @param maxDrift timestamps observed further ahead of the wall clock than this (ms) are not
   *   adopted, so one peer with a wild clock cannot drag every clock into the future.
   */
  constructor(
    private readonly wall: () => number = Date.now,
    private readonly maxDrift = 60_000,
  ) {}

  /** A new timestamp, later than every one issued or observed. */
  now(): number {
    const pt = this.wall() * TICKS_PER_MS;
    this.last = pt > this.last ? pt : this.last + 1;
    return this.last;
  }

  /** Take note of a timestamp from elsewhere; false if it was too far ahead to adopt. */
  observe(ts: number): boolean {
    if (ts <= this.last) return true;
    if (ts > (this.wall() + this.maxDrift) * TICKS_PER_MS) return false;
    this.last = ts;
    return true;
  }

  /** The latest timestamp issued or observed. */
  get current(): number {
    return this.last;
  }
}

/** The wall-clock milliseconds of a timestamp. */
export function hlcMillis(ts: number): number {
  return Math.floor(ts / TICKS_PER_MS);
}
