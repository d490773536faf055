import { Status } from './status.js';

/** How a call is retried. Every field has a default; pass only what you change. */
export interface RetryPolicy {
  /** Attempts in all, the first included (default 5). 1 disables retries. */
  maxAttempts: number;
  /** Delay before the first retry, in ms (default 25). */
  initialBackoff: number;
  /** Largest delay between attempts, in ms (default 2000). */
  maxBackoff: number;
  /** Factor the delay grows by after each attempt (default 2). */
  multiplier: number;
  /**
   * Fraction of each delay that is random (default 0.5: a delay d becomes d * (0.5 + random/2)),
   * so that clients failing together do not retry together.
   */
  jitter: number;
  /**
   * Statuses worth another attempt (default UNAVAILABLE and RESOURCE_EXHAUSTED). An at-most-once
   * call is only retried on an error that says the server did not execute it; a silence (no reply
   * within `attemptTimeout`) is retried for both semantics.
   */
  retryableStatuses: readonly Status[];
  /**
   * Resend when no reply came within this many ms (default: a third of the call's timeout).
   * At-least-once: another server may execute the call again; at-most-once: the same instance
   * answers from its table of recent calls.
   */
  attemptTimeout: number | undefined;
}

export type RetryOptions = Partial<RetryPolicy>;

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 5,
  initialBackoff: 25,
  maxBackoff: 2000,
  multiplier: 2,
  jitter: 0.5,
  retryableStatuses: [Status.UNAVAILABLE, Status.RESOURCE_EXHAUSTED],
  attemptTimeout: undefined,
};

export const NO_RETRY: RetryPolicy = { ...DEFAULT_RETRY, maxAttempts: 1 };

export function resolveRetry(...layers: (RetryOptions | false | undefined)[]): RetryPolicy {
  let p: RetryPolicy = DEFAULT_RETRY;
  for (const l of layers) {
    if (l === undefined) continue;
    if (l === false) p = NO_RETRY;
    else p = { ...p, ...stripUndefined(l) };
  }
  if (!(p.maxAttempts >= 1) || !Number.isInteger(p.maxAttempts)) {
    throw new TypeError(`retry.maxAttempts must be an integer >= 1, got ${p.maxAttempts}`);
  }
  if (!(p.initialBackoff >= 0 && p.maxBackoff >= p.initialBackoff && p.multiplier >= 1)) {
    throw new TypeError(
      'retry needs initialBackoff >= 0, maxBackoff >= initialBackoff, multiplier >= 1',
    );
  }
  if (!(p.jitter >= 0 && p.jitter <= 1)) throw new TypeError('retry.jitter must be from 0 to 1');
  return p;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/** The delay before attempt `attempt` (2 for the first retry), jittered. */
export function backoff(
  p: RetryPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const base = Math.min(p.maxBackoff, p.initialBackoff * p.multiplier ** Math.max(0, attempt - 2));
  return Math.round(base * (1 - p.jitter + p.jitter * random()));
}

export interface RetryBudgetOptions {
  /** Retries earned by each call's first attempt (default 0.2: retries add at most 20% load). */
  ratio?: number;
  /** Retries allowed per second whatever the traffic, so a quiet client can still retry (default 10). */
  minPerSecond?: number;
  /** Most retries that can be saved up (default 20). */
  burst?: number;
}

/**
 * A token bucket that caps retries at a fraction of calls: each first attempt deposits `ratio`
 * tokens, time deposits `minPerSecond`, each retry withdraws one. When a service fails, retries
 * stop after the saved-up ones are spent, instead of multiplying the load on it.
 */
export class RetryBudget {
  private readonly ratio: number;
  private readonly perMs: number;
  private readonly burst: number;
  private tokens: number;
  private last: number;
  /** Retries refused since the budget was created. */
  refused = 0;

  constructor(o: RetryBudgetOptions = {}, now: () => number = Date.now) {
    this.ratio = o.ratio ?? 0.2;
    this.perMs = (o.minPerSecond ?? 10) / 1000;
    this.burst = o.burst ?? 20;
    this.tokens = this.burst;
    this.now = now;
    this.last = now();
  }

  private readonly now: () => number;

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + (t - this.last) * this.perMs);
    this.last = t;
  }

  /** A call's first attempt. */
  onCall(): void {
    this.tokens = Math.min(this.burst, this.tokens + this.ratio);
  }

  /** Take a token for a retry; false when none is left. */
  tryRetry(): boolean {
    this.refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    this.refused++;
    return false;
  }

  get available(): number {
    this.refill();
    return this.tokens;
  }
}
