import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Channel, Connection, Consumer, FieldTable, Message } from '../client/index.js';
import { CallTable } from './call-table.js';
import type { CachedReply, CallTableOptions, ReplyAddress, TableEntry } from './call-table.js';
import { decodeValue, encodeValue } from './codec.js';
import type { DecodeContext, EncodeContext } from './codec.js';
import { LazyAbort, runWithAmbient } from './context.js';
import { isRemoteObject } from './contract.js';
import type {
  CallContext,
  Implementation,
  MethodSpec,
  Semantics,
  ServiceContract,
} from './contract.js';
import type { BodyCarrier } from './large-bodies.js';
import { errorBody, toRpcError } from './messages.js';
import { ObjectTable } from './objects.js';
import { RpcError, Reason, Status } from './status.js';
import { runSchema, schemaError } from './validate.js';
import {
  CONTENT_TYPE,
  H,
  JobState,
  Op,
  QUEUE_EXPIRES,
  REGISTRY_CONTENT_TYPE,
  WIRE_VERSION,
  int,
  str,
} from './wire.js';
import type { Announcement, Names } from './wire.js';

export interface ServeOptions {
  /**
   * This instance's id, stable across restarts if you give one (e.g. `orders-1`): its queue then
   * outlives a crash, and requests a restarted incarnation finds there from its predecessor are
   * refused as stale. Default: `<host>-<pid>-<random>`.
   */
  instanceId?: string | undefined;
  /** Calls handled at once (the consumers' prefetch; default 64). */
  concurrency?: number | undefined;
  /** Registration lease in ms (default 10 s); renewed every third of it. */
  lease?: number | undefined;
  /** Lease of remote objects this server exports, in ms (default 30 s). */
  objectLease?: number | undefined;
  /** The table of recent at-most-once calls (false: refuse at-most-once calls). */
  atMostOnce?: CallTableOptions | false | undefined;
  /** How long a finished job's result is kept for polling, in ms (default 10 min). */
  jobRetention?: number | undefined;
  /** Most jobs kept at once (default 10 000). */
  maxJobs?: number | undefined;
  /** How long close() waits for running handlers, in ms (default 5 s). */
  shutdownGrace?: number | undefined;
  /** Fault injection for tests: return true to drop a reply instead of sending it. */
  faults?: ServerFaults | undefined;
}

export interface ServerFaults {
  dropReply?(info: { method: string; callId: string; attempt: number; status: Status }): boolean;
}

/** What a host needs from its endpoint. */
export interface HostEnv {
  readonly conn: Connection;
  readonly names: Names;
  decodeContext(): DecodeContext;
  /** Send references held by this process (proxies) as they are. */
  proxyRef(v: object): unknown;
  readonly carrier: BodyCarrier | null;
}

interface Running {
  readonly controller: LazyAbort;
}

interface JobEntry {
  state: JobState;
  reply: CachedReply | null;
  readonly controller: LazyAbort;
  finishedAt: number;
}

const MAX_CANCELLED = 10_000;

/**
 * Serves calls: a service's methods (from its service queue and its own instance queue) and the
 * remote objects it exports. `serve()` returns one; an endpoint also makes one without a service
 * to host objects that it passes by reference as arguments.
 */
export class ServiceServer {
  readonly service: ServiceContract | null;
  readonly instanceId: string;
  /** Changes on every start: requests addressed to another epoch are refused (rebind). */
  readonly epoch: string;
  /** The shared queue of this service and version ('' for an object host). */
  readonly queue: string;
  /** This instance's own queue. */
  readonly instanceQueue: string;
  readonly objects: ObjectTable;
  /** Calls executed, duplicates answered from the table, requests refused. */
  readonly stats = { executed: 0, duplicates: 0, refused: 0 };

  private readonly env: HostEnv;
  private readonly impl: Implementation<ServiceContract> | null;
  private readonly channel: Channel;
  private readonly table: CallTable | null;
  private readonly lease: number;
  private readonly jobs = new Map<string, JobEntry>();
  private readonly jobRetention: number;
  private readonly maxJobs: number;
  private readonly grace: number;
  private readonly faults: ServerFaults | undefined;
  private readonly running = new Map<string, Running>();
  /** Error replies that say the call did nothing: not kept in the at-most-once table. */
  private readonly notExecuted = new WeakSet<CachedReply>();
  private readonly cancelled = new Map<string, number>();
  private readonly consumers: Consumer[] = [];
  private readonly encodeCtx: EncodeContext;
  private announceTimer: NodeJS.Timeout | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private closing = false;
  private closed: Promise<void> | null = null;
  private active = 0;
  private idle: (() => void) | null = null;
  private readonly onReconnected = (): void => void this.announce(Op.Announce);

  private constructor(
    env: HostEnv,
    channel: Channel,
    service: ServiceContract | null,
    impl: Implementation<ServiceContract> | null,
    instanceId: string,
    queue: string,
    instanceQueue: string,
    o: ServeOptions,
  ) {
    this.env = env;
    this.channel = channel;
    this.service = service;
    this.impl = impl;
    this.instanceId = instanceId;
    this.epoch = makeEpoch();
    this.queue = queue;
    this.instanceQueue = instanceQueue;
    this.lease = o.lease ?? 10_000;
    this.objects = new ObjectTable(() => this.instanceQueue, this.epoch, o.objectLease ?? 30_000);
    this.table = o.atMostOnce === false ? null : new CallTable(o.atMostOnce ?? {});
    this.jobRetention = o.jobRetention ?? 600_000;
    this.maxJobs = o.maxJobs ?? 10_000;
    this.grace = o.shutdownGrace ?? 5000;
    this.faults = o.faults;
    this.encodeCtx = {
      ref: (v) => (isRemoteObject(v) ? this.objects.export(v) : env.proxyRef(v)),
    };
  }

  /** @internal use `serve()` or `endpoint.serve()`. */
  static async start(
    env: HostEnv,
    service: ServiceContract | null,
    impl: Implementation<ServiceContract> | null,
    o: ServeOptions = {},
  ): Promise<ServiceServer> {
    const concurrency = o.concurrency ?? 64;
    const ch = await env.conn.channel({ prefetch: concurrency });
    try {
      const n = env.names;
      const instanceId = o.instanceId ?? defaultInstanceId();
      let queue = '';
      let instanceQueue: string;
      await ch.exchangeDeclare(n.exchange, 'topic', { durable: false });
      if (service !== null) {
        checkImplementation(service, impl!);
        queue = n.serviceQueue(service.name, service.version);
        instanceQueue = n.instanceQueue(service.name, service.version, instanceId);
        await ch.queueDeclare(queue, { expires: QUEUE_EXPIRES });
        // Not exclusive: the queue outlives a crash, so a restarted incarnation (same instance
        // id) finds its predecessor's requests and refuses them as stale.
        await ch.queueDeclare(instanceQueue, { expires: QUEUE_EXPIRES });
        await ch.queueBind(instanceQueue, n.exchange, n.queryKey(service.name));
        await ch.queueBind(instanceQueue, n.exchange, n.cancelKey(service.name));
      } else {
        instanceQueue = `${n.exchange}.obj.${instanceId}`;
        await ch.queueDeclare(instanceQueue, { exclusive: true, autoDelete: true });
      }
      const server = new ServiceServer(env, ch, service, impl, instanceId, queue, instanceQueue, o);
      server.consumers.push(
        await ch.consume(instanceQueue, (m) => server.onMessage(m, true), {
          exclusive: service !== null,
        }),
      );
      if (service !== null) {
        server.consumers.push(await ch.consume(queue, (m) => server.onMessage(m, false)));
        void server.announce(Op.Announce);
        server.announceTimer = setInterval(
          () => void server.announce(Op.Announce),
          server.lease / 3,
        );
        server.announceTimer.unref();
        env.conn.on('reconnected', server.onReconnected);
      }
      server.sweepTimer = setInterval(() => server.sweep(), 1000);
      server.sweepTimer.unref();
      ch.once('close', () => {
        // The channel is gone (closed, or its connection for good): nothing reaches this server.
        server.stopTimers();
        server.objects.close();
      });
      return server;
    } catch (err) {
      await ch.close().catch(() => undefined);
      throw err;
    }
  }

  /** At-most-once calls remembered now. */
  get remembered(): number {
    return this.table?.size ?? 0;
  }

  /** What this instance announces on the registry exchange. */
  announcement(): Announcement {
    const s = this.service!;
    return {
      service: s.name,
      version: s.version,
      instance: this.instanceId,
      epoch: this.epoch,
      queue: this.queue,
      instanceQueue: this.instanceQueue,
      lease: this.lease,
      retention: this.table?.retention ?? 0,
      methods: Object.keys(s.methods),
    };
  }

  private announce(op: typeof Op.Announce | typeof Op.Withdraw, replyTo?: string): Promise<void> {
    if (this.service === null) return Promise.resolve();
    const n = this.env.names;
    const body = JSON.stringify(this.announcement());
    const props = {
      contentType: REGISTRY_CONTENT_TYPE,
      headers: { [H.op]: op, [H.version]: WIRE_VERSION },
    };
    const p =
      replyTo !== undefined
        ? this.channel.publish('', replyTo, body, props)
        : this.channel.publish(n.exchange, n.announceKey(this.service.name), body, props);
    return p.catch(() => undefined);
  }

  private stopTimers(): void {
    if (this.announceTimer !== null) clearInterval(this.announceTimer);
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.announceTimer = null;
    this.sweepTimer = null;
    this.env.conn.off('reconnected', this.onReconnected);
  }

  private sweep(): void {
    const now = Date.now();
    this.table?.sweep(now);
    for (const [id, j] of this.jobs) {
      if (j.state === JobState.Done && now - j.finishedAt > this.jobRetention) this.jobs.delete(id);
    }
  }

  // ------------------------------------------------------------------ incoming

  private onMessage(m: Message, addressed: boolean): void {
    this.active++;
    this.dispatch(m, addressed)
      .catch(() => undefined)
      .finally(() => {
        this.active--;
        if (this.active === 0) this.idle?.();
      });
  }

  private async dispatch(m: Message, addressed: boolean): Promise<void> {
    const h = m.properties.headers ?? {};
    const op = str(h, H.op) ?? Op.Call;
    switch (op) {
      case Op.Call:
        await this.handleCall(m, h, addressed);
        return;
      case Op.Cancel: {
        const id = m.properties.correlationId;
        if (id !== undefined) this.cancel(id);
        m.ack();
        return;
      }
      case Op.Query:
        if (m.properties.replyTo !== undefined)
          await this.announce(Op.Announce, m.properties.replyTo);
        m.ack();
        return;
      case Op.Lease:
      case Op.Release:
        this.handleLease(m, h, op);
        return;
      case Op.JobPoll:
      case Op.JobCancel:
        await this.handleJob(m, h, op);
        return;
      default:
        await this.refuse(
          m,
          new RpcError(Status.UNIMPLEMENTED, `unknown operation '${op}'`, {
            reason: Reason.Malformed,
            executed: 'no',
          }),
        );
    }
  }

  private cancel(callId: string): void {
    const r = this.running.get(callId);
    if (r !== undefined) {
      r.controller.abort(
        new RpcError(Status.CANCELLED, 'the caller cancelled the call', { executed: 'unknown' }),
      );
      return;
    }
    // The request may still be queued behind others: remember to skip it.
    this.cancelled.set(callId, Date.now());
    if (this.cancelled.size > MAX_CANCELLED) {
      const first = this.cancelled.keys().next();
      if (first.done !== true) this.cancelled.delete(first.value);
    }
  }

  private handleLease(m: Message, h: FieldTable, op: string): void {
    m.ack();
    let body: { holder?: unknown; objects?: unknown };
    try {
      body = m.json();
    } catch {
      return;
    }
    if (typeof body.holder !== 'string' || !Array.isArray(body.objects)) return;
    const ids = body.objects.filter((x): x is string => typeof x === 'string');
    const epochOk = str(h, H.epoch) === undefined || str(h, H.epoch) === this.epoch;
    if (op === Op.Release) {
      if (epochOk) this.objects.remove(body.holder, ids);
      return;
    }
    const missing = epochOk ? this.objects.add(body.holder, ids, Date.now()) : ids;
    const replyTo = m.properties.replyTo;
    if (replyTo !== undefined && missing.length > 0) {
      this.channel
        .publish('', replyTo, JSON.stringify({ missing, queue: this.instanceQueue }), {
          correlationId: m.properties.correlationId,
          contentType: REGISTRY_CONTENT_TYPE,
          headers: {
            [H.op]: Op.Lease,
            [H.status]: Status.NOT_FOUND,
            [H.instance]: this.instanceId,
          },
        })
        .catch(() => undefined);
    }
  }

  private async handleJob(m: Message, h: FieldTable, op: string): Promise<void> {
    const id = str(h, H.jobId) ?? '';
    const j = this.jobs.get(id);
    const replyTo = m.properties.replyTo;
    const to: ReplyAddress | null =
      replyTo === undefined ? null : { replyTo, correlationId: m.properties.correlationId };
    if (j === undefined) {
      await this.refuse(
        m,
        new RpcError(
          Status.NOT_FOUND,
          `no job '${id}' on instance ${this.instanceId} (finished too long ago, or the instance restarted)`,
          {
            reason: Reason.UnknownJob,
            executed: 'unknown',
          },
        ),
      );
      return;
    }
    if (op === Op.JobCancel) {
      j.controller.abort(
        new RpcError(Status.CANCELLED, 'the job was cancelled', { executed: 'unknown' }),
      );
      if (to !== null)
        await this.send(to, {
          headers: this.headers(Status.OK, { [H.jobState]: j.state }),
          body: EMPTY,
        });
    } else if (to !== null) {
      const reply = j.reply ?? {
        headers: this.headers(Status.OK, { [H.jobState]: JobState.Running }),
        body: EMPTY,
      };
      await this.send(to, reply);
    }
    m.ack();
  }

  private headers(status: Status, extra?: FieldTable): FieldTable {
    const hd: FieldTable = { [H.status]: status, [H.instance]: this.instanceId };
    if (extra !== undefined) Object.assign(hd, extra);
    return hd;
  }

  private errorReply(err: RpcError): CachedReply {
    const reply = {
      headers: this.headers(err.status),
      body: encodeValue(errorBody(err), this.encodeCtx),
    };
    if (err.executed === 'no') this.notExecuted.add(reply);
    return reply;
  }

  private async refuse(m: Message, err: RpcError): Promise<void> {
    this.stats.refused++;
    const replyTo = m.properties.replyTo;
    if (replyTo !== undefined) {
      await this.send({ replyTo, correlationId: m.properties.correlationId }, this.errorReply(err));
    }
    m.ack();
  }

  private async send(to: ReplyAddress, reply: CachedReply): Promise<void> {
    const props: { correlationId?: string; contentType: string; headers: FieldTable } = {
      contentType: CONTENT_TYPE,
      headers: reply.headers,
    };
    if (to.correlationId !== undefined) props.correlationId = to.correlationId;
    await this.channel.publish('', to.replyTo, reply.body, props).catch(() => undefined);
  }

  private async handleCall(m: Message, h: FieldTable, addressed: boolean): Promise<void> {
    const callId = m.properties.correlationId ?? '';
    const replyTo = m.properties.replyTo;
    const method = str(h, H.method) ?? '';
    const objectId = str(h, H.object);
    const epoch = str(h, H.epoch);
    let spec: MethodSpec | undefined;
    let handler: unknown;
    let target: object | null = null;
    let where: string;
    if (objectId !== undefined) {
      const o =
        epoch === undefined || epoch === this.epoch ? this.objects.get(objectId) : undefined;
      where = `${o?.iface.name ?? 'object'}.${method}`;
      if (o === undefined) {
        await this.refuse(
          m,
          new RpcError(
            Status.NOT_FOUND,
            `remote object ${objectId} no longer exists on ${this.instanceId} (its leases ran out, it was released, or its host restarted)`,
            { reason: Reason.ObjectGone, executed: 'no' },
          ),
        );
        return;
      }
      spec = own(o.iface.methods, method);
      target = o.impl;
      handler = spec === undefined ? undefined : (o.impl as Record<string, unknown>)[method];
    } else {
      const s = this.service;
      where = `${s?.name ?? '?'}.${method}`;
      if (s === null || (str(h, H.service) ?? s.name) !== s.name) {
        await this.refuse(
          m,
          new RpcError(Status.NOT_FOUND, `no service '${str(h, H.service)}' here`, {
            executed: 'no',
          }),
        );
        return;
      }
      if (epoch !== undefined && epoch !== this.epoch) {
        await this.refuse(
          m,
          new RpcError(
            Status.ABORTED,
            `${where}: the request was addressed to epoch ${epoch} of instance ${this.instanceId}, which has restarted (now epoch ${this.epoch}); whether the old incarnation executed it is unknown. Rebind and decide whether to call again`,
            { reason: Reason.StaleEpoch, rebind: true, executed: 'unknown' },
          ),
        );
        return;
      }
      spec = own(s.methods, method);
      target = this.impl;
      handler = spec === undefined ? undefined : (this.impl as Record<string, unknown>)[method];
    }
    if (spec === undefined || typeof handler !== 'function') {
      await this.refuse(
        m,
        new RpcError(Status.UNIMPLEMENTED, `${where} is not a method of this server`, {
          reason: Reason.UnknownMethod,
          executed: 'no',
        }),
      );
      return;
    }
    const timeout = int(h, H.timeout);
    if ((timeout !== undefined && timeout <= 0) || this.cancelled.delete(callId)) {
      // The caller has stopped waiting: doing nothing is within both semantics.
      this.stats.refused++;
      m.ack();
      return;
    }
    if (this.closing) {
      if (addressed) {
        await this.refuse(
          m,
          new RpcError(Status.UNAVAILABLE, `${this.instanceId} is shutting down`, {
            reason: Reason.ShuttingDown,
            executed: 'no',
          }),
        );
      } else {
        m.nack({ requeue: true });
      }
      return;
    }
    const address: ReplyAddress | null =
      replyTo === undefined ? null : { replyTo, correlationId: m.properties.correlationId };
    const seq = int(h, H.seq);
    const client = str(h, H.client) ?? '';
    const conversation = str(h, H.conversation) ?? '';
    const attempt = int(h, H.attempt) ?? 1;
    let entry: TableEntry | null = null;
    if (seq !== undefined) {
      if (this.table === null) {
        await this.refuse(
          m,
          new RpcError(
            Status.FAILED_PRECONDITION,
            `${this.instanceId} does not serve at-most-once calls`,
            { executed: 'no' },
          ),
        );
        return;
      }
      const adm = this.table.admit(
        client,
        conversation,
        seq,
        int(h, H.floor) ?? 0,
        address,
        Date.now(),
      );
      switch (adm.kind) {
        case 'done':
          this.stats.duplicates++;
          if (address !== null) await this.deliver([address], adm.reply, where, callId, attempt);
          m.ack();
          return;
        case 'running':
          this.stats.duplicates++;
          m.ack();
          return;
        case 'finished':
          this.stats.duplicates++;
          m.ack();
          return;
        case 'stale-conversation':
          await this.refuse(
            m,
            new RpcError(
              Status.ABORTED,
              `${where}: conversation ${conversation} of client ${client} is older than one this server has seen since; that client has restarted`,
              { reason: Reason.StaleConversation, executed: 'no' },
            ),
          );
          return;
        case 'full':
          await this.refuse(
            m,
            new RpcError(
              Status.RESOURCE_EXHAUSTED,
              `${this.instanceId}: the at-most-once table is full; retry later`,
              {
                reason: Reason.TableFull,
                executed: 'no',
              },
            ),
          );
          return;
        case 'new':
          entry = adm.entry;
      }
    }
    const semantics: Semantics = seq !== undefined ? 'at-most-once' : 'at-least-once';
    const controller = new LazyAbort();
    const deadline = timeout === undefined ? undefined : performance.now() + timeout;
    const ctx: CallContext = {
      service: this.service?.name ?? '',
      method,
      callId,
      get signal() {
        return controller.signal;
      },
      remaining: () =>
        deadline === undefined ? Infinity : Math.max(0, deadline - performance.now()),
      semantics,
      clientId: client,
      conversation,
      attempt,
      instance: this.instanceId,
      headers: h,
    };
    const run = (): Promise<CachedReply> =>
      this.execute(m, spec, handler as Handler, target, ctx, controller, deadline, where);

    if (str(h, H.job) === 'start') {
      if (this.jobs.size >= this.maxJobs) {
        const err = new RpcError(
          Status.RESOURCE_EXHAUSTED,
          `${this.instanceId}: too many jobs; retry later`,
          { reason: Reason.TableFull, executed: 'no' },
        );
        await this.finish(m, entry, address, this.errorReply(err), where, callId, attempt);
        return;
      }
      const jobId = randomBytes(12).toString('base64url');
      const job: JobEntry = { state: JobState.Running, reply: null, controller, finishedAt: 0 };
      this.jobs.set(jobId, job);
      const started: CachedReply = {
        headers: this.headers(Status.OK, { [H.jobId]: jobId, [H.jobState]: JobState.Running }),
        body: EMPTY,
      };
      await this.finish(m, entry, address, started, where, callId, attempt);
      const done = await run();
      job.reply = {
        headers: { ...done.headers, [H.jobId]: jobId, [H.jobState]: JobState.Done },
        body: done.body,
      };
      job.state = JobState.Done;
      job.finishedAt = Date.now();
      return;
    }
    const reply = await run();
    await this.finish(m, entry, address, reply, where, callId, attempt);
  }

  /** Record (at-most-once), send the reply to every waiting attempt, then ack the request. */
  private async finish(
    m: Message,
    entry: TableEntry | null,
    address: ReplyAddress | null,
    reply: CachedReply,
    where: string,
    callId: string,
    attempt: number,
  ): Promise<void> {
    const to =
      entry !== null
        ? this.table!.complete(entry, reply, !this.notExecuted.has(reply))
        : address !== null
          ? [address]
          : [];
    await this.deliver(to, reply, where, callId, attempt);
    m.ack();
  }

  private async deliver(
    to: ReplyAddress[],
    reply: CachedReply,
    where: string,
    callId: string,
    attempt: number,
  ): Promise<void> {
    if (to.length === 0) return;
    const faults = this.faults;
    if (faults?.dropReply !== undefined) {
      const status = reply.headers[H.status] as Status;
      if (faults.dropReply({ method: where, callId, attempt, status })) return;
    }
    for (const a of to) await this.send(a, reply);
  }

  private async execute(
    m: Message,
    spec: MethodSpec,
    handler: Handler,
    target: object | null,
    ctx: CallContext,
    controller: LazyAbort,
    deadline: number | undefined,
    where: string,
  ): Promise<CachedReply> {
    const callId = ctx.callId;
    this.running.set(callId, { controller });
    let timer: NodeJS.Timeout | null = null;
    if (deadline !== undefined) {
      timer = setTimeout(
        () =>
          controller.abort(
            new RpcError(Status.DEADLINE_EXCEEDED, `${where}: the caller's deadline passed`, {
              executed: 'unknown',
            }),
          ),
        Math.max(0, deadline - performance.now()),
      );
    }
    try {
      let body: Buffer;
      const carrier = this.env.carrier;
      const transfer = m.properties.headers?.[H.transfer];
      if (transfer !== undefined && carrier !== null && typeof transfer === 'object') {
        body = await carrier.receive(transfer as FieldTable, controller.signal);
      } else {
        body = m.body;
      }
      let args: unknown;
      try {
        args = decodeValue(body, this.env.decodeContext());
      } catch (err) {
        return this.errorReply(toRpcError(err, undefined));
      }
      let v = runSchema(spec.args, args);
      if (v instanceof Promise) v = await v;
      if (!v.ok) {
        return this.errorReply(
          schemaError(
            Status.INVALID_ARGUMENT,
            Reason.InvalidArguments,
            `${where}: invalid arguments`,
            'args',
            v.issues,
          ),
        );
      }
      const parsed: unknown = v.value;
      this.stats.executed++;
      const ambient = {
        deadline,
        get signal() {
          return controller.signal;
        },
      };
      const result: unknown = await runWithAmbient(ambient, () =>
        handler.call(target, parsed, ctx),
      );
      return await this.resultReply(result, spec, where, ctx);
    } catch (err) {
      // Cancelled or past the deadline: that is the outcome, whatever the handler threw then
      // (a nested call it made fails with CANCELLED when its ambient deadline passes).
      const reason: unknown = controller.aborted ? controller.reason : undefined;
      return this.errorReply(reason instanceof RpcError ? reason : toRpcError(err, controller));
    } finally {
      if (timer !== null) clearTimeout(timer);
      this.running.delete(callId);
    }
  }

  private async resultReply(
    result: unknown,
    spec: MethodSpec,
    where: string,
    ctx: CallContext,
  ): Promise<CachedReply> {
    if (spec.oneWay === true) return { headers: this.headers(Status.OK), body: EMPTY };
    let body: Buffer;
    // Objects returned by reference are listed under the caller's holder id straight away.
    const recipient = ctx.clientId !== '' ? `${ctx.clientId}/${ctx.conversation}` : undefined;
    try {
      body = encodeValue(result, {
        ref: (v) => (isRemoteObject(v) ? this.objects.export(v, recipient) : this.env.proxyRef(v)),
      });
    } catch (err) {
      const e = err as RpcError;
      return this.errorReply(
        new RpcError(
          Status.INTERNAL,
          `${where} returned a value that cannot be sent: ${e.message}`,
          { reason: Reason.Unencodable, executed: 'yes' },
        ),
      );
    }
    const carrier = this.env.carrier;
    if (carrier !== null && body.length > carrier.threshold) {
      const table = await carrier.send(body);
      return { headers: this.headers(Status.OK, { [H.transfer]: table }), body: EMPTY };
    }
    return { headers: this.headers(Status.OK), body };
  }

  // ------------------------------------------------------------------ shutdown

  /**
   * Stop: withdraw the registration, stop taking requests (queued ones stay for other instances),
   * wait up to the grace period for running handlers, then cancel what still runs.
   */
  close(): Promise<void> {
    this.closed ??= this.shutdown();
    return this.closed;
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    this.stopTimers();
    await this.announce(Op.Withdraw);
    await Promise.all(this.consumers.map((c) => c.cancel().catch(() => undefined)));
    if (this.active > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.grace);
        t.unref();
        this.idle = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    for (const r of this.running.values()) {
      r.controller.abort(
        new RpcError(Status.UNAVAILABLE, `${this.instanceId} shut down`, {
          reason: Reason.ShuttingDown,
          executed: 'unknown',
        }),
      );
    }
    this.objects.close();
    this.table?.clear();
    if (this.service !== null) {
      await this.channel.queueDelete(this.instanceQueue, { ifEmpty: true }).catch(() => 0);
    }
    await this.channel.close().catch(() => undefined);
  }
}

type Handler = (this: unknown, args: unknown, ctx: CallContext) => unknown;

const EMPTY = Buffer.alloc(0);

function own<T>(o: Record<string, T>, k: string): T | undefined {
  return Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined;
}

function checkImplementation(
  service: ServiceContract,
  impl: Implementation<ServiceContract>,
): void {
  for (const name of Object.keys(service.methods)) {
    if (typeof (impl as Record<string, unknown>)[name] !== 'function') {
      throw new TypeError(`serve(${service.name}): the implementation has no function '${name}'`);
    }
  }
}

let lastEpochMs = 0;

/** A new epoch: the start time (ms, unique within this process) and a random part. */
export function makeEpoch(): string {
  const ms = Math.max(Date.now(), lastEpochMs + 1);
  lastEpochMs = ms;
  return `${ms}-${randomBytes(4).toString('hex')}`;
}

function defaultInstanceId(): string {
  const host =
    hostname()
      .replace(/[^A-Za-z0-9_-]/g, '')
      .slice(0, 40) || 'host';
  return `${host}-${process.pid}-${randomBytes(3).toString('hex')}`;
}
