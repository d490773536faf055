import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';

/**
 * What a handler's call passes on to the calls it makes: its deadline and cancellation. A stub
 * called while a handler runs (in its async context) gets no more time than the handler has left,
 * and is cancelled when the handler's call is.
 */
export interface Ambient {
  /** performance.now() at which the outer call's deadline passes; undefined: none. */
  readonly deadline: number | undefined;
  readonly signal: AbortSignal;
}

const storage = new AsyncLocalStorage<Ambient>();

export function ambient(): Ambient | undefined {
  return storage.getStore();
}

export function runWithAmbient<T>(a: Ambient, fn: () => T): T {
  return storage.run(a, fn);
}

/**
 * An AbortController made only when someone asks for its signal (a handler that looks at
 * `ctx.signal`, a nested call): most calls never do, and a controller per call costs.
 */
export class LazyAbort {
  private controller: AbortController | null = null;
  aborted = false;
  reason: unknown = undefined;

  get signal(): AbortSignal {
    if (this.controller === null) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
  }
}

/** Milliseconds left before `deadline` (performance.now() based), at least 0. */
export function remaining(deadline: number): number {
  return Math.max(0, deadline - performance.now());
}
