import { DeferredCall } from './calls.js';
import type { Job } from './calls.js';
import type { CallOptions, MethodSpec, Methods } from './contract.js';

export type CallStyle = 'call' | 'send' | 'start';

/** What a stub calls for every method call: the endpoint's invoker, bound to one target. */
export type Invoke = (
  method: string,
  spec: MethodSpec | undefined,
  args: unknown,
  options: CallOptions,
  style: CallStyle,
) => Promise<unknown>;

/**
 * The stub functions of a contract's methods (seed 001: "client stub"): each packs its arguments
 * into a request and unpacks the reply. Built from the contract at run time, so there is no code
 * generation step; the types come from the contract's schemas.
 */
export function stubMethods(methods: Methods, invoke: Invoke): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(methods)) out[name] = stubMethod(name, spec, invoke);
  return out;
}

export function stubMethod(name: string, spec: MethodSpec | undefined, invoke: Invoke): unknown {
  const call = (args?: unknown, options: CallOptions = {}): Promise<unknown> =>
    invoke(name, spec, args, options, spec?.oneWay === true ? 'send' : 'call');
  return Object.assign(call, {
    defer(args?: unknown, options: CallOptions = {}): DeferredCall<unknown> {
      const controller = new AbortController();
      const user = options.signal;
      const signal =
        user === undefined ? controller.signal : AbortSignal.any([user, controller.signal]);
      return new DeferredCall(
        () =>
          invoke(name, spec, args, { ...options, signal }, spec?.oneWay === true ? 'send' : 'call'),
        controller,
      );
    },
    send(args?: unknown, options: CallOptions = {}): Promise<void> {
      return invoke(name, spec, args, options, 'send') as Promise<void>;
    },
    start(args?: unknown, options: CallOptions = {}): Promise<Job<unknown>> {
      return invoke(name, spec, args, options, 'start') as Promise<Job<unknown>>;
    },
  });
}
