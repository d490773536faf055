import { RpcError, Status } from '../../src/rpc/index.js';
import type { CallContext, Implementation } from '../../src/rpc/index.js';
import type { Calc } from './contracts.js';
import { aborted, gate } from './helpers.js';

/** What a Calc server observed: for the tests to assert on. */
export interface CalcState {
  executions: Map<string, number>;
  /** Contexts of `slow` calls as they start, by key. */
  started: Map<string, CallContext>;
  /** Why a `slow` call's signal fired, by key. */
  cancelled: Map<string, unknown>;
  /** Let a `slow` call return. */
  release(key: string): void;
  logs: string[];
  /** Instance ids that served `slow` / `bump` calls, in order. */
  servedBy: string[];
}

export function calcImpl(): { impl: Implementation<typeof Calc>; state: CalcState } {
  const gates = new Map<string, ReturnType<typeof gate<string>>>();
  const gateFor = (key: string) => {
    let g = gates.get(key);
    if (g === undefined) gates.set(key, (g = gate<string>()));
    return g;
  };
  const state: CalcState = {
    executions: new Map(),
    started: new Map(),
    cancelled: new Map(),
    release: (key) => gateFor(key).open(`done ${key}`),
    logs: [],
    servedBy: [],
  };
  const impl: Implementation<typeof Calc> = {
    add: ({ a, b }) => a + b,
    div: ({ a, b }) => {
      if (b === 0) {
        throw new RpcError(Status.INVALID_ARGUMENT, 'division by zero', {
          reason: 'DIVIDE_BY_ZERO',
          details: { a, b },
        });
      }
      return a / b;
    },
    echo: (v) => v,
    async slow({ key }, ctx) {
      state.started.set(key, ctx);
      state.servedBy.push(ctx.instance);
      const r = await Promise.race([gateFor(key).promise, aborted(ctx.signal).then(() => null)]);
      if (r === null) {
        state.cancelled.set(key, ctx.signal.reason);
        throw ctx.signal.reason;
      }
      return r;
    },
    bump({ key }, ctx) {
      const n = (state.executions.get(key) ?? 0) + 1;
      state.executions.set(key, n);
      state.servedBy.push(ctx.instance);
      return n;
    },
    log(line) {
      state.logs.push(line);
    },
    ping: () => 'pong' as const,
  };
  return { impl, state };
}
