/**
 * Milliseconds on the monotonic clock that every thread of the process shares, with sub-
 * microsecond resolution. `performance.now()` counts from each thread's own start, so a timestamp
 * taken in a publisher thread and read in a consumer thread needs this common base.
 */
const base = Number(process.hrtime.bigint()) / 1e6 - performance.now();

export function monoNow(): number {
  return base + performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Yield to the event loop so that sockets are read and written. */
export function yieldToIo(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
