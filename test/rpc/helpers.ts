import type { BrokerTarget } from '../client/brokers.js';
import { rpcEndpoint } from '../../src/rpc/index.js';
import type { EndpointOptions, RpcEndpoint } from '../../src/rpc/index.js';

/**
 * An RPC world for one test: a namespace of its own (its registry exchange is deleted after the
 * test with the target's other names) and endpoints, each on its own connection as separate
 * processes would have.
 */
export interface World {
  readonly ns: string;
  endpoint(options?: EndpointOptions & { reconnect?: boolean }): Promise<RpcEndpoint>;
}

export function world(t: BrokerTarget): World {
  const ns = t.name('rpc');
  return {
    ns,
    async endpoint(options = {}) {
      const { reconnect, ...rest } = options;
      const conn = await t.connect(reconnect === false ? { reconnect: false } : {});
      return rpcEndpoint(conn, { namespace: ns, ...rest });
    },
  };
}

/** A promise with its resolve function, for handlers that wait for the test. */
export function gate<T = void>(): { promise: Promise<T>; open: (v: T) => void } {
  let open!: (v: T) => void;
  const promise = new Promise<T>((r) => (open = r));
  return { promise, open };
}

/** Resolve when `signal` fires, with its reason. */
export function aborted(signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    else signal.addEventListener('abort', () => resolve(signal.reason), { once: true });
  });
}
