/**
 * The waits the worker's parts share: between retries, for a step of a shutdown that must not
 * hang, and for a peer to appear in the RPC registry.
 */
import { Reason, isRpcError } from '../rpc/index.js';

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Wait for `p`, but at most `ms`, ignoring its failure. */
export async function bounded(p: Promise<unknown> | undefined, ms = 3000): Promise<void> {
  if (p === undefined) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p.catch(() => undefined),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
  ]);
  clearTimeout(timer);
}

/**
 * Call a peer by its instance id, waiting for it to appear in the RPC registry: a peer heard of by
 * gossip may not have been announced to this process yet, and an instance-addressed call fails at
 * once with CANNOT_LOCATE_SERVER until it has (the binder waits only for some instance).
 */
export async function located<T>(call: () => Promise<T>, timeoutMs = 5000): Promise<T> {
  const until = Date.now() + timeoutMs;
  // Bounded by the deadline.
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (!isRpcError(err) || err.reason !== Reason.CannotLocateServer || Date.now() > until) {
        throw err;
      }
      await sleep(100);
    }
  }
}
