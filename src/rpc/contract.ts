import type { FieldTable } from '../client/index.js';
import type { DeferredCall, Job } from './calls.js';
import type { RetryOptions } from './retry.js';
import type { AnySchema, InputOf, OutputOf } from './standard-schema.js';
import { isStandardSchema } from './standard-schema.js';
import { parseVersion } from './version-range.js';

/**
 * at-least-once: retried until a reply comes (or attempts run out); a call may execute more than
 * once. at-most-once: each call carries ⟨conversation, sequence number⟩ and goes to one server
 * instance, which executes it once and answers retries from a table of recent results.
 */
export type Semantics = 'at-least-once' | 'at-most-once';

/** One method of a contract: its argument and result schemas and call defaults. */
export interface MethodSpec<A extends AnySchema = AnySchema, R extends AnySchema = AnySchema> {
  readonly args: A;
  readonly result: R;
  /** Default semantics of calls to this method (default: at-least-once). */
  readonly semantics?: Semantics | undefined;
  /** No reply: calls resolve once the broker has the request. */
  readonly oneWay?: boolean | undefined;
  /** Default deadline of calls to this method, in ms. */
  readonly timeout?: number | undefined;
  readonly retry?: RetryOptions | false | undefined;
}

export type Methods = Record<string, MethodSpec>;

/** A service: what servers register and clients bind to, by name and version. */
export interface ServiceContract<M extends Methods = Methods> {
  readonly kind: 'service';
  readonly name: string;
  readonly version: string;
  readonly methods: M;
}

/** The interface of remote objects (no version: it travels inside a reference). */
export interface InterfaceContract<M extends Methods = Methods> {
  readonly kind: 'interface';
  readonly name: string;
  readonly methods: M;
}

export type Contract<M extends Methods = Methods> = ServiceContract<M> | InterfaceContract<M>;

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$/;
const METHOD_RE = /^[A-Za-z_][A-Za-z0-9_]{0,99}$/;

function checkMethods(where: string, methods: Methods): void {
  for (const [name, m] of Object.entries(methods)) {
    if (!METHOD_RE.test(name)) {
      throw new TypeError(
        `${where}: method name '${name}' must be an identifier (letters, digits, _)`,
      );
    }
    if (!isStandardSchema(m.args) || !isStandardSchema(m.result)) {
      throw new TypeError(
        `${where}.${name}: args and result must be Standard Schemas (s.*, zod, valibot, ...)`,
      );
    }
  }
}

/**
 * Define a service once; stubs and the server's implementation type follow from it.
 *
 *   const Calc = defineService({ name: 'calc', version: '1.0.0', methods: {
 *     add: { args: s.object({ a: s.number(), b: s.number() }), result: s.number() },
 *   }});
 */
export function defineService<const M extends Methods>(def: {
  name: string;
  version: string;
  methods: M;
}): ServiceContract<M> {
  if (!NAME_RE.test(def.name)) {
    throw new TypeError(
      `service name '${def.name}' must be 1-100 letters, digits, '_', '.', '-' (no leading '.' or '-')`,
    );
  }
  if (parseVersion(def.version) === null) {
    throw new TypeError(`service '${def.name}': version '${def.version}' is not MAJOR.MINOR.PATCH`);
  }
  checkMethods(def.name, def.methods);
  return Object.freeze({
    kind: 'service',
    name: def.name,
    version: def.version,
    methods: def.methods,
  });
}

/** Define the interface of remote objects (see `remote()` and `s.ref()`). */
export function defineInterface<const M extends Methods>(def: {
  name: string;
  methods: M;
}): InterfaceContract<M> {
  if (!NAME_RE.test(def.name)) throw new TypeError(`interface name '${def.name}' is not valid`);
  checkMethods(def.name, def.methods);
  const iface: InterfaceContract<M> = Object.freeze({
    kind: 'interface',
    name: def.name,
    methods: def.methods,
  });
  registerInterface(iface);
  return iface;
}

// ---------------------------------------------------------------- client side types

/** Options of one call; each overrides the method's and the binding's defaults. */
export interface CallOptions {
  /** Deadline in ms from now (default 30 s), sent as a relative timeout. */
  timeout?: number | undefined;
  /** Cancels the call; the server handler's signal fires too. */
  signal?: AbortSignal | undefined;
  semantics?: Semantics | undefined;
  retry?: RetryOptions | false | undefined;
  /** Send to this server instance (its id) instead of any. */
  instance?: string | undefined;
}

type ArgList<A> = undefined extends A
  ? [args?: A, options?: CallOptions]
  : [args: A, options?: CallOptions];

/** A method of a stub: call it, or use one of the other call styles. */
export interface MethodStub<A, R> {
  /** Synchronous: resolves with the result. */
  (...a: ArgList<A>): Promise<R>;
  /** Deferred synchronous: returns at once; the result comes later (promise or callback). */
  defer(...a: ArgList<A>): DeferredCall<R>;
  /** One-way: no reply; resolves once the broker has taken the request. */
  send(...a: ArgList<A>): Promise<void>;
  /** A long-running job on one server instance, to poll for its result. */
  start(...a: ArgList<A>): Promise<Job<R>>;
}

type StubMethods<M extends Methods> = {
  readonly [K in keyof M]: M[K]['oneWay'] extends true
    ? MethodStub<InputOf<M[K]['args']>, void>
    : MethodStub<InputOf<M[K]['args']>, OutputOf<M[K]['result']>>;
};

/** What a bound client sees of the servers. */
export interface BindingInfo {
  readonly service: string;
  readonly range: string;
  /** Live instances matching the range, best version first. */
  instances(): readonly { instance: string; version: string; epoch: string }[];
  /** Look the service up again now (after a rebind error this happens by itself). */
  rebind(): Promise<void>;
}

/** A typed client stub: one function per method, plus `$` for the binding. */
export type ServiceClient<C extends ServiceContract> = StubMethods<C['methods']> & {
  readonly $: BindingInfo;
};

/** What a remote reference says: where the object lives and what it is. */
export interface RemoteRef {
  /** The queue its host consumes. */
  readonly queue: string;
  readonly id: string;
  readonly iface: string;
  /** The host's epoch: an object does not survive its host's restart. */
  readonly epoch: string;
  /** Lease length in ms; the holder renews at half of it. */
  readonly lease: number;
}

/** A typed proxy of a remote object. Dispose it (`await using`, or `$release()`) when done. */
export type RemoteProxy<I extends InterfaceContract> = StubMethods<I['methods']> & {
  readonly $ref: RemoteRef;
  /** Stop holding the object; the host collects it when no holder is left. */
  $release(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
};

// ---------------------------------------------------------------- server side types

/** What a handler knows about the call it serves. */
export interface CallContext {
  readonly service: string;
  readonly method: string;
  /** The call's correlation id. */
  readonly callId: string;
  /** Fires when the caller cancels, the deadline passes or the server shuts down. */
  readonly signal: AbortSignal;
  /** Milliseconds left before the caller's deadline (Infinity: none). */
  remaining(): number;
  readonly semantics: Semantics;
  /** The caller's client id and conversation (empty strings if it sent none). */
  readonly clientId: string;
  readonly conversation: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** The serving instance. */
  readonly instance: string;
  readonly headers: FieldTable;
}

/** A handler's return type: the result schema's input (what it accepts to send). */
type HandlerResult<S> = S extends AnySchema ? InputOf<S> | Promise<InputOf<S>> : never;

/** The implementation a server provides for a contract. */
export type Implementation<C extends Contract> = {
  readonly [K in keyof C['methods']]: (
    args: OutputOf<C['methods'][K]['args']>,
    ctx: CallContext,
  ) => HandlerResult<C['methods'][K]['result']>;
};

export const EXPORTED: unique symbol = Symbol.for('warren.rpc.exported');

/** An object to pass by reference: its receiver gets a proxy (see `remote()`). */
export interface RemoteObject<I extends InterfaceContract> {
  readonly [EXPORTED]: { readonly iface: I; readonly impl: Implementation<I> };
}

/**
 * Pass `impl` by reference instead of by value: return it from a handler or pass it as an
 * argument, and the other side gets a `RemoteProxy<I>` whose calls run here. The object lives
 * while a holder's lease lasts; `impl[Symbol.asyncDispose]`, if present, runs when it is collected.
 */
export function remote<I extends InterfaceContract>(
  iface: I,
  impl: Implementation<I> & Partial<AsyncDisposable>,
): RemoteObject<I> {
  return { [EXPORTED]: { iface, impl } };
}

export function isRemoteObject(v: unknown): v is RemoteObject<InterfaceContract> {
  return typeof v === 'object' && v !== null && EXPORTED in v;
}

export const PROXY: unique symbol = Symbol.for('warren.rpc.proxy');

/** Whether `v` is a proxy of a remote object (of interface `iface`, if given). */
export function isRemoteProxy(
  v: unknown,
  iface?: InterfaceContract,
): v is RemoteProxy<InterfaceContract> {
  if (typeof v !== 'object' || v === null || !(PROXY in v)) return false;
  return iface === undefined || (v as unknown as { $ref: RemoteRef }).$ref.iface === iface.name;
}

const interfaces = new Map<string, InterfaceContract>();

/** @internal the interface of a reference that arrives, by name (defineInterface registers it). */
export function knownInterface(name: string): InterfaceContract | undefined {
  return interfaces.get(name);
}

/** @internal */
export function registerInterface(iface: InterfaceContract): void {
  interfaces.set(iface.name, iface);
}
