/** The worker was stopped (its start aborted, or stop() called) before it was up. */
export class WorkerStoppedError extends Error {
  readonly code = 'WARREN_ERR_KV_STOPPED';
  constructor(reason: string) {
    super(`the worker stopped before it was up: ${reason}`);
    this.name = 'WorkerStoppedError';
  }
}
