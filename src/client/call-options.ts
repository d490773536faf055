import { ClientError, ClientErrorCode, invalidArgument } from './errors.js';

/** Options every call that can wait accepts. */
export interface CallOptions {
  /** Abort the wait; the call rejects with WARREN_ERR_ABORTED. */
  signal?: AbortSignal | undefined;
  /** Give up after this many milliseconds; the call rejects with WARREN_ERR_TIMEOUT. */
  timeout?: number | undefined;
}

/** Undo what `guard` armed. */
export type Disarm = () => void;

const NOOP: Disarm = () => {};

/**
 * Arm a timeout and an abort listener around a wait. `fail` is called at most once, with an error
 * created here, when the call starts, so its stack points at the caller. Returns a function that
 * disarms both; when the signal is already aborted `fail` runs before this returns.
 */
export function guard(
  options: CallOptions | undefined,
  what: string,
  fail: (err: ClientError) => void,
): Disarm {
  if (options === undefined) return NOOP;
  const { signal, timeout } = options;
  if (signal === undefined && timeout === undefined) return NOOP;
  let timer: NodeJS.Timeout | null = null;
  let onAbort: (() => void) | null = null;
  let done = false;
  const disarm = (): void => {
    done = true;
    if (timer !== null) clearTimeout(timer);
    if (onAbort !== null) signal?.removeEventListener('abort', onAbort);
    timer = null;
    onAbort = null;
  };
  if (timeout !== undefined) {
    if (!Number.isFinite(timeout) || timeout < 0) {
      throw invalidArgument(
        `timeout must be a non-negative number of milliseconds, got ${timeout}`,
      );
    }
    const err = new ClientError(
      ClientErrorCode.Timeout,
      `${what} did not complete within ${timeout} ms; raise the timeout or check the broker`,
    );
    timer = setTimeout(() => {
      if (done) return;
      disarm();
      fail(err);
    }, timeout);
  }
  if (signal !== undefined) {
    const err = new ClientError(ClientErrorCode.Aborted, `${what} was aborted by its AbortSignal`);
    if (signal.aborted) {
      disarm();
      fail(withReason(err, signal));
      return NOOP;
    }
    onAbort = () => {
      if (done) return;
      disarm();
      fail(withReason(err, signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  }
  return disarm;
}

function withReason(err: ClientError, signal: AbortSignal): ClientError {
  if (signal.reason !== undefined) Object.defineProperty(err, 'cause', { value: signal.reason });
  return err;
}

/** A promise with its settle functions, for waits resolved from frame handlers. */
export class Deferred<T> {
  readonly promise: Promise<T>;
  resolve!: (value: T) => void;
  reject!: (err: Error) => void;

  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}

/** Wait for `ms`, or less if the signal fires; never rejects. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
