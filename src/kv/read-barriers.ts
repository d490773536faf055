import type { WorkerRequest } from './messages.js';
import type { Watermarks } from './watermarks.js';

/** What a read's session has seen: per origin, the last of its writes (see Watermarks). */
type After = WorkerRequest['after'];

/** A read waiting for its session's writes to reach this replica. */
interface Waiter {
  readonly after: After;
  readonly run: () => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * Reads held back for read-your-writes. A read carries, per origin, the last write its session
 * saw; a replica that does not hold every one of them yet parks the read, indexed by the origins
 * it waits on, until their watermarks advance (`wake`, called by Watermarks) or a short wait runs
 * out.
 */
export class ReadBarriers {
  private readonly waiters = new Map<string, Set<Waiter>>();

  constructor(private readonly marks: Watermarks) {}

  /** Whether this replica holds every write `after` names. */
  covered(after: After): boolean {
    for (const [origin, seq] of after) if (!this.marks.covers(origin, seq)) return false;
    return true;
  }

  /** Run `met` once `after` is covered, or `timedOut` after `waitMs`, whichever comes first. */
  park(after: After, waitMs: number, met: () => void, timedOut: () => void): void {
    const waiter: Waiter = {
      after,
      run: () => {
        clearTimeout(waiter.timer);
        this.unpark(waiter);
        met();
      },
      timer: setTimeout(() => {
        this.unpark(waiter);
        timedOut();
      }, waitMs),
    };
    for (const [origin, seq] of after) {
      if (this.marks.covers(origin, seq)) continue;
      let set = this.waiters.get(origin);
      if (set === undefined) {
        set = new Set();
        this.waiters.set(origin, set);
      }
      set.add(waiter);
    }
  }

  /** An origin's mark advanced: run the reads it was holding back. */
  wake(origin: string): void {
    const set = this.waiters.get(origin);
    if (set === undefined) return;
    for (const w of [...set]) if (this.covered(w.after)) w.run();
  }

  /** Drop every parked read without answering it (the worker is stopping). */
  clear(): void {
    for (const set of this.waiters.values()) for (const w of set) clearTimeout(w.timer);
    this.waiters.clear();
  }

  private unpark(w: Waiter): void {
    for (const [origin] of w.after) {
      const set = this.waiters.get(origin);
      if (set === undefined) continue;
      set.delete(w);
      if (set.size === 0) this.waiters.delete(origin);
    }
  }
}
