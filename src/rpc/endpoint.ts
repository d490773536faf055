import { randomBytes } from 'node:crypto';
import { ClientError, ClientErrorCode, DIRECT_REPLY_TO } from '../client/index.js';
import type { Channel, Connection, Consumer, FieldTable, Message } from '../client/index.js';
import { Caller, LEASE_CORRELATION } from './caller.js';
import { encodeValue } from './codec.js';
import type { DecodeContext, EncodeContext } from './codec.js';
import { PROXY, isRemoteObject, isRemoteProxy, knownInterface } from './contract.js';
import type {
  BindingInfo,
  Implementation,
  InterfaceContract,
  RemoteProxy,
  RemoteRef,
  Semantics,
  ServiceClient,
  ServiceContract,
} from './contract.js';
import type { BodyCarrier } from './large-bodies.js';
import { LeaseKeeper, parseRef } from './objects.js';
import { RegistryWatcher } from './registry.js';
import { RetryBudget } from './retry.js';
import type { RetryBudgetOptions, RetryOptions } from './retry.js';
import { objectRouter, serviceRouter } from './routes.js';
import { ServiceServer } from './server.js';
import type { HostEnv, ServeOptions } from './server.js';
import { RpcError, Reason, Status } from './status.js';
import { stubMethod, stubMethods } from './stub.js';
import type { Invoke } from './stub.js';
import { VersionRange } from './version-range.js';
import { DEFAULT_NAMESPACE, H, WIRE_VERSION, names } from './wire.js';
import type { Names } from './wire.js';

export interface EndpointOptions {
  /** Prefix of every exchange and queue name, and the registry exchange (default 'warren.rpc'). */
  namespace?: string | undefined;
  /**
   * This client's identity for at-most-once calls. Give a stable one (e.g. the worker's name)
   * and a restarted client is recognised as the same client with a newer conversation, so the
   * server drops the old one's state at once. Default: random per endpoint.
   */
  clientId?: string | undefined;
  /** Default deadline of calls in ms (default 30 s). */
  timeout?: number | undefined;
  /** How long bind() and calls wait for a server to announce itself, in ms (default 2 s). */
  locateTimeout?: number | undefined;
  /** Default retry policy. */
  retry?: RetryOptions | false | undefined;
  /** Caps retries at a fraction of calls (false: no cap). */
  retryBudget?: RetryBudgetOptions | false | undefined;
  /**
   * Send request and reply bodies above a size threshold out of band, as pull-based chunked
   * transfers (warren/transfer): `{ threshold: 1 << 20 }`, or any `BodyCarrier`. Both sides need
   * it. Default: off (every body travels in its message).
   */
  largeBodies?: BodyCarrier | LargeBodyOptions | null | undefined;
  /** Fault injection for tests. */
  faults?: ClientFaults | undefined;
}

/** Options of the transfer-based large-body carrier. */
export interface LargeBodyOptions {
  /** Bodies above this many bytes go by transfer (default 1 MiB). */
  threshold?: number | undefined;
  /** How long (ms) a body waits for the peer to start pulling it (default 60 s). */
  acceptTimeout?: number | undefined;
  /** Silence (ms) after which a transfer in progress fails (default 60 s). */
  timeout?: number | undefined;
}

export interface ClientFaults {
  /** Return true to drop a reply as if the network had lost it. */
  dropReply?(info: { method: string; callId: string; status: number }): boolean;
}

export interface BindOptions {
  /** The server versions accepted (default `^<contract version>`). */
  version?: string | undefined;
  semantics?: Semantics | undefined;
  timeout?: number | undefined;
  retry?: RetryOptions | false | undefined;
  /** How long bind() waits for a compatible server to announce itself (ms). */
  locateTimeout?: number | undefined;
}

/** Thrown inside encoding when an argument is passed by reference before the host exists. */
const NEED_HOST = new Error('an object host is needed');

let lastConversationMs = 0;

/** A conversation id: the start time in ms (strictly increasing within a process) and a random part. */
export function newConversation(): string {
  const ms = Math.max(Date.now(), lastConversationMs + 1);
  lastConversationMs = ms;
  return `${ms}-${randomBytes(4).toString('hex')}`;
}

/**
 * RPC over one connection: bind to services and call them, serve services, hold and export
 * remote objects. One channel in confirm mode sends requests and receives replies (direct
 * reply-to where the broker has it), one more follows the registry. Get one with
 * `rpcEndpoint(conn)`; `bind()` and `serve()` use it too.
 */
export class RpcEndpoint {
  readonly connection: Connection;
  readonly names: Names;
  readonly clientId: string;
  /** Time-based id of this endpoint's incarnation (see CallTable). */
  readonly conversation: string;
  readonly budget: RetryBudget | null;
  readonly leases: LeaseKeeper;

  private readonly channel: Channel;
  private replyTo: string;
  private readonly replyConsumer: Consumer;
  private readonly registry: RegistryWatcher;
  private readonly caller: Caller;
  private readonly timeout: number;
  private readonly locateTimeout: number;
  private readonly retry: RetryOptions | false | undefined;
  private readonly carrier: BodyCarrier | null;
  private readonly faults: ClientFaults | undefined;
  private readonly servers = new Set<ServiceServer>();
  private localHost: Promise<ServiceServer> | null = null;
  private localHostReady: ServiceServer | null = null;
  private closed = false;
  private readonly decodeCtx: DecodeContext;
  private readonly env: HostEnv;

  private readonly onDisconnect = (): void => this.caller.connectionLost();
  private readonly onReconnected = (): void => this.caller.connectionBack();
  private readonly onConnClose = (err: Error | null): void => {
    // Closed for good: nothing more can be sent or received through this endpoint.
    this.closed = true;
    this.leases.stop();
    this.registry.stop();
    this.caller.connectionClosed(
      err ?? new ClientError(ClientErrorCode.ConnectionClosed, 'the connection was closed'),
    );
  };
  private readonly onRenamed = (from: string, to: string): void => {
    if (from === this.replyTo) this.replyTo = to;
  };

  private constructor(
    conn: Connection,
    n: Names,
    channel: Channel,
    replyTo: string,
    consumer: Consumer,
    registry: RegistryWatcher,
    o: EndpointOptions,
    carrier: BodyCarrier | null,
  ) {
    this.connection = conn;
    this.names = n;
    this.channel = channel;
    this.replyTo = replyTo;
    this.replyConsumer = consumer;
    this.registry = registry;
    this.clientId = o.clientId ?? `c-${randomBytes(8).toString('base64url')}`;
    this.conversation = newConversation();
    this.timeout = o.timeout ?? 30_000;
    this.locateTimeout = o.locateTimeout ?? 2000;
    this.retry = o.retry;
    this.budget = o.retryBudget === false ? null : new RetryBudget(o.retryBudget ?? {});
    this.carrier = carrier;
    this.faults = o.faults;
    this.leases = new LeaseKeeper(
      `${this.clientId}/${this.conversation}`,
      (queue, op, ids, epoch) => this.sendLease(queue, op, ids, epoch),
    );
    this.decodeCtx = { ref: (json) => this.proxyFromJson(json) };
    this.env = {
      conn,
      names: n,
      decodeContext: () => this.decodeCtx,
      proxyRef: (v) => this.proxyRef(v),
      carrier: this.carrier,
    };
    conn.on('disconnect', this.onDisconnect);
    conn.on('reconnected', this.onReconnected);
    conn.on('close', this.onConnClose);
    conn.on('queueRenamed', this.onRenamed);
    this.caller = new Caller({
      connection: conn,
      names: n,
      clientId: this.clientId,
      conversation: this.conversation,
      channel,
      replyTo: () => this.replyTo,
      carrier,
      faults: this.faults,
      decodeCtx: this.decodeCtx,
      isClosed: () => this.closed,
      timeout: this.timeout,
      locateTimeout: this.locateTimeout,
      retry: this.retry,
      budget: this.budget,
      encodeArgs: (args, where) => this.encodeArgs(args, where),
      onLeaseReply: (m) => this.onLeaseReply(m),
    });
    registry.on('gone', (e) => this.caller.onInstanceGone(e));
  }

  /** @internal use rpcEndpoint(). */
  static async open(conn: Connection, o: EndpointOptions = {}): Promise<RpcEndpoint> {
    const n = names(o.namespace ?? DEFAULT_NAMESPACE);
    // Requests are published mandatory in confirm mode: a request no queue takes is known at once.
    // Unconfirmed publishes fail on a drop rather than being re-sent: retries are decided here.
    const ch = await conn.channel({ confirm: { unconfirmed: 'fail' } });
    let registry: RegistryWatcher | null = null;
    try {
      let replyTo = DIRECT_REPLY_TO;
      if (conn.capabilities.direct_reply_to !== true) {
        replyTo = (await ch.queueDeclare('', { exclusive: true, autoDelete: true })).queue;
      }
      let ep: RpcEndpoint | null = null;
      const consumer = await ch.consume(replyTo, (m) => ep?.caller.onReply(m), { noAck: true });
      registry = await RegistryWatcher.open(conn, n);
      ep = new RpcEndpoint(
        conn,
        n,
        ch,
        replyTo,
        consumer,
        registry,
        o,
        await carrierFor(conn, o.largeBodies),
      );
      ch.on('return', () => undefined);
      return ep;
    } catch (err) {
      await registry?.close();
      await ch.close().catch(() => undefined);
      throw err;
    }
  }

  // ================================================================== binding

  /**
   * Bind to a service: find a live server whose version is in the range (default: the contract's
   * major version) and return a typed stub. Fails with UNAVAILABLE / CANNOT_LOCATE_SERVER when
   * none announces itself within `locateTimeout`. Later calls follow the registry: new instances
   * share the load, dead ones are dropped, a restarted one is used at its new epoch.
   */
  async bind<C extends ServiceContract>(
    contract: C,
    o: BindOptions = {},
  ): Promise<ServiceClient<C>> {
    const range = new VersionRange(o.version ?? `^${contract.version}`);
    const router = serviceRouter(this.registry, this.names, contract, range, o);
    await this.registry.watch(contract.name);
    await router.locate(o.locateTimeout ?? this.locateTimeout, undefined);
    if (router.route(false, undefined) === null) throw router.cannotLocate();
    const invoke: Invoke = (method, spec, args, options, style) =>
      this.caller.invoke(router, method, spec, args, options, style);
    const stub = stubMethods(contract.methods, invoke);
    const info: BindingInfo = {
      service: contract.name,
      range: range.text,
      instances: () =>
        this.registry.candidates(contract.name, range).map((e) => ({
          instance: e.ann.instance,
          version: e.ann.version,
          epoch: e.ann.epoch,
        })),
      rebind: async () => {
        this.registry.query(contract.name);
        await router.locate(o.locateTimeout ?? this.locateTimeout, undefined);
        if (router.route(false, undefined) === null) throw router.cannotLocate();
      },
    };
    return Object.assign(stub, { $: info }) as ServiceClient<C>;
  }

  // ================================================================== calls

  // ================================================================== remote objects

  private proxyRef(v: object): unknown {
    if (!isRemoteProxy(v)) return undefined;
    const ref = v.$ref;
    this.leases.sent(ref);
    return ref;
  }

  private proxyFromJson(json: unknown): unknown {
    const ref = parseRef(json);
    if (ref === null)
      throw new RpcError(Status.INTERNAL, 'malformed remote reference', {
        reason: Reason.Malformed,
      });
    return this.proxy(ref);
  }

  /** A typed proxy for a reference (normally made for you when a reference arrives). */
  proxy<I extends InterfaceContract>(ref: RemoteRef, iface?: I): RemoteProxy<I> {
    const known = iface ?? knownInterface(ref.iface);
    const router = objectRouter(ref, () => this.leases.forget(ref));
    const invoke: Invoke = (method, spec, args, options, style) =>
      this.caller.invoke(router, method, spec, args, options, style);
    let released = false;
    const base: Record<string | symbol, unknown> =
      known !== undefined ? stubMethods(known.methods, invoke) : {};
    const release = (): Promise<void> => {
      if (!released) {
        released = true;
        this.leases.release(ref, proxy);
      }
      return Promise.resolve();
    };
    Object.assign(base, {
      $ref: ref,
      $release: release,
      [Symbol.asyncDispose]: release,
      [PROXY]: true,
    });
    // An interface this process never defined: any method name works, results are unchecked.
    const proxy: object =
      known !== undefined
        ? base
        : new Proxy(base, {
            get(target, p) {
              if (typeof p === 'string' && !(p in target) && p !== 'then') {
                target[p] = stubMethod(p, undefined, invoke);
              }
              return target[p];
            },
          });
    this.leases.acquire(ref, proxy);
    return proxy as RemoteProxy<I>;
  }

  private sendLease(queue: string, op: 'lease' | 'release', ids: string[], epoch: string): void {
    if (this.closed && op === 'lease') return;
    const props: {
      correlationId: string;
      contentType: string;
      headers: FieldTable;
      replyTo?: string;
    } = {
      correlationId: LEASE_CORRELATION,
      contentType: 'application/json',
      headers: { [H.version]: WIRE_VERSION, [H.op]: op, [H.epoch]: epoch },
    };
    if (op === 'lease') props.replyTo = this.replyTo;
    this.channel
      .publish('', queue, JSON.stringify({ holder: this.leases.holder, objects: ids }), props)
      .catch(() => undefined);
  }

  private onLeaseReply(m: Message): void {
    let body: { missing?: unknown; queue?: unknown };
    try {
      body = m.json();
    } catch {
      return;
    }
    if (!Array.isArray(body.missing) || typeof body.queue !== 'string') return;
    for (const id of body.missing) {
      if (typeof id === 'string')
        this.leases.forget({ queue: body.queue, id, iface: '', epoch: '', lease: 1 });
    }
  }

  private async encodeArgs(args: unknown, where: string): Promise<Buffer> {
    const ctx: EncodeContext = {
      ref: (v) => {
        if (isRemoteObject(v)) {
          if (this.localHostReady === null) throw NEED_HOST;
          return this.localHostReady.objects.export(v);
        }
        return this.proxyRef(v);
      },
    };
    try {
      return encodeValue(args, ctx);
    } catch (err) {
      if (err !== NEED_HOST) throw withWhere(err, where);
    }
    await this.objectHost();
    try {
      return encodeValue(args, ctx);
    } catch (err) {
      throw withWhere(err, where);
    }
  }

  /** The host of objects this endpoint passes by reference as arguments (made on first use). */
  objectHost(): Promise<ServiceServer> {
    this.localHost ??= ServiceServer.start(this.env, null, null, {
      instanceId: `${this.clientId}-${randomBytes(4).toString('hex')}`,
    }).then((h) => {
      this.localHostReady = h;
      return h;
    });
    return this.localHost;
  }

  // ================================================================== serving

  /** Serve `contract` with `impl`: register with the binder and take calls until close(). */
  async serve<C extends ServiceContract>(
    contract: C,
    impl: Implementation<C>,
    o: ServeOptions = {},
  ): Promise<ServiceServer> {
    const s = await ServiceServer.start(this.env, contract, impl, o);
    this.servers.add(s);
    return s;
  }

  /** Close servers, release held objects, stop following the registry. The connection stays open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.caller.abortAll();
    await Promise.all([...this.servers].map((s) => s.close()));
    this.leases.close();
    if (this.localHost !== null) await (await this.localHost.catch(() => null))?.close();
    this.connection.off('disconnect', this.onDisconnect);
    this.connection.off('reconnected', this.onReconnected);
    this.connection.off('close', this.onConnClose);
    this.connection.off('queueRenamed', this.onRenamed);
    await this.registry.close();
    await this.replyConsumer.cancel().catch(() => undefined);
    await this.channel.close().catch(() => undefined);
    endpoints.get(this.connection)?.delete(this.names.exchange);
  }
}

async function carrierFor(
  conn: Connection,
  o: BodyCarrier | LargeBodyOptions | null | undefined,
): Promise<BodyCarrier | null> {
  if (o === null || o === undefined) return null;
  if ('send' in o && 'receive' in o) return o;
  // Loaded only when asked for: applications without large bodies do not load warren/transfer.
  const { transferCarrier } = await import('../transfer/index.js');
  return transferCarrier(conn, o);
}

function withWhere(err: unknown, where: string): unknown {
  if (err instanceof RpcError) {
    return new RpcError(err.status, `${where}: ${err.message}`, {
      reason: err.reason,
      issues: err.issues,
      executed: 'no',
    });
  }
  return err;
}

const endpoints = new WeakMap<Connection, Map<string, Promise<RpcEndpoint>>>();

/**
 * The RPC endpoint of a connection (one per connection and namespace, made on first use; options
 * apply when it is made).
 */
export function rpcEndpoint(conn: Connection, options: EndpointOptions = {}): Promise<RpcEndpoint> {
  const ns = options.namespace ?? DEFAULT_NAMESPACE;
  let m = endpoints.get(conn);
  if (m === undefined) {
    m = new Map();
    endpoints.set(conn, m);
  }
  let p = m.get(ns);
  if (p === undefined) {
    p = RpcEndpoint.open(conn, options);
    m.set(ns, p);
    p.catch(() => m.delete(ns));
  }
  return p;
}

/** Bind to a service over `conn` (see RpcEndpoint.bind). */
export async function bind<C extends ServiceContract>(
  conn: Connection,
  contract: C,
  options: BindOptions & { namespace?: string } = {},
): Promise<ServiceClient<C>> {
  const ep = await rpcEndpoint(
    conn,
    options.namespace === undefined ? {} : { namespace: options.namespace },
  );
  return ep.bind(contract, options);
}

/** Serve a service over `conn` (see RpcEndpoint.serve). */
export async function serve<C extends ServiceContract>(
  conn: Connection,
  contract: C,
  impl: Implementation<C>,
  options: ServeOptions & { namespace?: string } = {},
): Promise<ServiceServer> {
  const ep = await rpcEndpoint(
    conn,
    options.namespace === undefined ? {} : { namespace: options.namespace },
  );
  return ep.serve(contract, impl, options);
}
