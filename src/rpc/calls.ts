import { RpcError, Status } from './status.js';

export type CallState = 'pending' | 'fulfilled' | 'rejected';

/**
 * A deferred synchronous call (seed 001): the caller goes on at once and collects the result
 * later, by awaiting `promise` (or the call itself: it is a thenable) or through `onSettled`.
 */
export class DeferredCall<R> implements PromiseLike<R> {
  readonly promise: Promise<R>;
  private stateValue: CallState = 'pending';
  private readonly controller: AbortController;

  /** @internal built by stubs' `defer()`. */
  constructor(run: (signal: AbortSignal) => Promise<R>, controller: AbortController) {
    this.controller = controller;
    this.promise = run(controller.signal).then(
      (v) => {
        this.stateValue = 'fulfilled';
        return v;
      },
      (err: unknown) => {
        this.stateValue = 'rejected';
        throw err;
      },
    );
    // The application may never look at the outcome; that is not an unhandled rejection.
    this.promise.catch(() => undefined);
  }

  get state(): CallState {
    return this.stateValue;
  }

  get settled(): boolean {
    return this.stateValue !== 'pending';
  }

  /** Run `callback` when the call settles: `(null, result)` or `(error)`. */
  onSettled(callback: (error: RpcError | Error | null, result?: R) => void): this {
    this.promise.then(
      (v) => callback(null, v),
      (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
    );
    return this;
  }

  /** Cancel the call; the server handler's signal fires. */
  cancel(reason?: unknown): void {
    this.controller.abort(reason);
  }

  then<A = R, B = never>(
    onFulfilled?: ((value: R) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.promise.then(onFulfilled, onRejected);
  }
}

export type JobStatus<R> =
  | { readonly state: 'running' }
  | { readonly state: 'done'; readonly result: R }
  | { readonly state: 'failed'; readonly error: RpcError };

/** @internal what a Job needs from its endpoint. */
export interface JobChannel<R> {
  poll(job: Job<R>, signal: AbortSignal | undefined): Promise<JobStatus<R>>;
  cancel(job: Job<R>): Promise<void>;
}

export interface JobWaitOptions {
  /** First delay between polls in ms (default 50); it doubles up to `maxInterval`. */
  interval?: number;
  /** Largest delay between polls (default 1000). */
  maxInterval?: number;
  /** Give up waiting after this many ms (the job goes on). */
  timeout?: number;
  signal?: AbortSignal;
}

/**
 * A long-running call the client polls for (seed 001, "client polling"): the server answered the
 * start at once with the job's id and runs the handler; `poll()` asks once, `result()` polls with
 * growing intervals until the job is done.
 */
export class Job<R> {
  readonly id: string;
  /** The queue of the instance that runs it (polls go there). */
  readonly queue: string;
  readonly instance: string;
  readonly epoch: string;
  private readonly channel: JobChannel<R>;

  /** @internal */
  constructor(id: string, queue: string, instance: string, epoch: string, channel: JobChannel<R>) {
    this.id = id;
    this.queue = queue;
    this.instance = instance;
    this.epoch = epoch;
    this.channel = channel;
  }

  poll(options: { signal?: AbortSignal } = {}): Promise<JobStatus<R>> {
    return this.channel.poll(this, options.signal);
  }

  async result(options: JobWaitOptions = {}): Promise<R> {
    const started = Date.now();
    let delay = options.interval ?? 50;
    const max = options.maxInterval ?? 1000;
    for (;;) {
      const st = await this.poll(options.signal === undefined ? {} : { signal: options.signal });
      if (st.state === 'done') return st.result;
      if (st.state === 'failed') throw st.error;
      if (options.timeout !== undefined && Date.now() - started + delay > options.timeout) {
        throw new RpcError(
          Status.DEADLINE_EXCEEDED,
          `job ${this.id} was still running after ${options.timeout} ms; poll again later`,
          { executed: 'unknown' },
        );
      }
      await sleep(delay, options.signal);
      delay = Math.min(max, delay * 2);
    }
  }

  /** Ask the server to stop the job (its handler's signal fires). */
  cancel(): Promise<void> {
    return this.channel.cancel(this);
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(new RpcError(Status.CANCELLED, 'waiting for the job was cancelled'));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new RpcError(Status.CANCELLED, 'waiting for the job was cancelled'));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
