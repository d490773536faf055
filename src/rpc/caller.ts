import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { ClientError, ClientErrorCode } from '../client/index.js';
import type { Channel, Connection, FieldTable, Message } from '../client/index.js';
import { Job } from './calls.js';
import type { JobStatus } from './calls.js';
import { decodeValue } from './codec.js';
import type { DecodeContext } from './codec.js';
import { ambient } from './context.js';
import type { CallOptions, MethodSpec, Semantics } from './contract.js';
import type { ClientFaults } from './endpoint.js';
import type { BodyCarrier } from './large-bodies.js';
import { errorFromReply } from './messages.js';
import type { InstanceEntry } from './registry.js';
import { backoff, resolveRetry } from './retry.js';
import type { RetryBudget, RetryOptions, RetryPolicy } from './retry.js';
import { jobRouter } from './routes.js';
import type { Route, Router } from './routes.js';
import { RpcError, Reason, Status } from './status.js';
import type { CallStyle } from './stub.js';
import { runSchema, schemaError } from './validate.js';
import { CONTENT_TYPE, H, JobState, Op, WIRE_VERSION, int, str } from './wire.js';
import type { Names } from './wire.js';

/** What the call engine uses of its endpoint. */
export interface CallerHost {
  readonly connection: Connection;
  readonly names: Names;
  readonly clientId: string;
  readonly conversation: string;
  /** Requests go out here (confirm mode); replies come in here. */
  readonly channel: Channel;
  /** Where replies come (it changes if a reply queue is renamed after a reconnect). */
  replyTo(): string;
  readonly carrier: BodyCarrier | null;
  readonly faults: ClientFaults | undefined;
  readonly decodeCtx: DecodeContext;
  /** The endpoint was closed, or its connection closed for good. */
  isClosed(): boolean;
  readonly timeout: number;
  readonly locateTimeout: number;
  readonly retry: RetryOptions | false | undefined;
  readonly budget: RetryBudget | null;
  encodeArgs(args: unknown, where: string): Promise<Buffer>;
  onLeaseReply(m: Message): void;
}

export const LEASE_CORRELATION = 'warren.rpc.lease';

export type CallEvent =
  | { kind: 'reply'; m: Message }
  | { kind: 'returned' }
  | { kind: 'lost' }
  | { kind: 'gone' }
  | { kind: 'abort' }
  | { kind: 'timer' };

/** One call from its first attempt to its outcome; events arrive from the reply consumer and timers. */
export class PendingCall {
  readonly id: string;
  route: Route | null = null;
  sent = false;
  readonly events: CallEvent[] = [];
  wake: (() => void) | null = null;

  constructor(id: string) {
    this.id = id;
  }

  push(e: CallEvent): void {
    this.events.push(e);
    this.wake?.();
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * The call engine (seed 001: the client stub's runtime): builds requests, picks a route per
 * attempt, waits for the reply or for what else can happen to a call (timeout, cancel, a returned
 * request, a dropped connection, a dead instance), and decides about retries by the call's
 * semantics, its retry policy and the retry budget.
 */
export class Caller {
  private readonly host: CallerHost;
  private readonly pending = new Map<string, PendingCall>();
  /** Sequence numbers of at-most-once calls not finished, in order (the first is the lowest). */
  private readonly inflight = new Map<number, true>();
  private seq = 0;
  private counter = 0;
  private readonly prefix = `${randomBytes(6).toString('base64url')}.`;
  private reconnectWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];

  constructor(host: CallerHost) {
    this.host = host;
  }

  /** The connection dropped: replies to requests already sent cannot come. */
  connectionLost(): void {
    for (const p of this.pending.values()) if (p.sent) p.push({ kind: 'lost' });
  }

  /** The connection is back: resend what waited for it. */
  connectionBack(): void {
    for (const x of this.reconnectWaiters.splice(0)) x.resolve();
  }

  /** The connection closed for good (or the endpoint did). */
  connectionClosed(err: Error): void {
    for (const x of this.reconnectWaiters.splice(0)) x.reject(err);
    for (const p of this.pending.values()) p.push({ kind: 'lost' });
  }

  /** Cancel every call in progress (the endpoint is closing). */
  abortAll(): void {
    for (const p of this.pending.values()) p.push({ kind: 'abort' });
  }

  private nextId(): string {
    return this.prefix + (++this.counter).toString(36);
  }

  private floor(): number {
    for (const s of this.inflight.keys()) return s - 1;
    return this.seq;
  }

  /** The call engine behind every stub method. */
  async invoke(
    router: Router,
    method: string,
    spec: MethodSpec | undefined,
    args: unknown,
    o: CallOptions,
    style: CallStyle,
  ): Promise<unknown> {
    if (this.host.isClosed())
      throw new RpcError(Status.UNAVAILABLE, 'the RPC endpoint is closed', { executed: 'no' });
    const where = `${router.label}.${method}`;
    const amb = ambient();
    const semantics: Semantics =
      o.semantics ?? spec?.semantics ?? router.defaults.semantics ?? 'at-least-once';
    const policy = resolveRetry(this.host.retry, router.defaults.retry, spec?.retry, o.retry);
    let timeout = o.timeout ?? spec?.timeout ?? router.defaults.timeout ?? this.host.timeout;
    const now = performance.now();
    if (amb?.deadline !== undefined) timeout = Math.min(timeout, Math.max(0, amb.deadline - now));
    const signal =
      amb === undefined
        ? o.signal
        : o.signal === undefined
          ? amb.signal
          : AbortSignal.any([o.signal, amb.signal]);
    if (signal?.aborted === true) throw cancelled(where, 'no');
    if (timeout <= 0) {
      throw new RpcError(
        Status.DEADLINE_EXCEEDED,
        `${where}: no time left before the caller's deadline`,
        { executed: 'no' },
      );
    }

    let body = await this.host.encodeArgs(args, where);
    const extra: FieldTable = {};
    if (this.host.carrier !== null && body.length > this.host.carrier.threshold) {
      extra[H.transfer] = await this.host.carrier.send(body);
      body = EMPTY;
    }

    const addressed =
      semantics === 'at-most-once' ||
      style === 'start' ||
      o.instance !== undefined ||
      router.ref !== undefined;
    let route = router.route(addressed, o.instance);
    if (route === null) {
      await router.locate(Math.min(this.host.locateTimeout, timeout), signal);
      route = router.route(addressed, o.instance);
      if (route === null) throw router.cannotLocate();
    }
    if (semantics === 'at-most-once') {
      if (route.retention === 0) {
        throw new RpcError(
          Status.FAILED_PRECONDITION,
          `${where}: the server does not keep at-most-once calls; call it at-least-once`,
          { executed: 'no' },
        );
      }
      // The server forgets a client's calls after its retention: never wait longer than that.
      if (route.retention !== undefined) timeout = Math.min(timeout, route.retention);
    }
    const deadline = now + timeout;
    const call = new PendingCall(this.nextId());
    let seq = 0;
    if (semantics === 'at-most-once') {
      seq = ++this.seq;
      this.inflight.set(seq, true);
    }
    const onAbort = (): void => call.push({ kind: 'abort' });
    signal?.addEventListener('abort', onAbort, { once: true });
    this.pending.set(call.id, call);
    this.host.budget?.onCall();
    try {
      if (style === 'send')
        return await this.sendOneWay(
          router,
          route,
          where,
          method,
          body,
          extra,
          semantics,
          seq,
          deadline,
          policy,
        );
      return await this.attempts(
        router,
        call,
        route,
        where,
        method,
        spec,
        body,
        extra,
        semantics,
        seq,
        deadline,
        policy,
        style,
        signal,
      );
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.pending.delete(call.id);
      if (seq !== 0) this.inflight.delete(seq);
    }
  }

  private headers(
    router: Router,
    route: Route,
    method: string,
    semantics: Semantics,
    seq: number,
    attempt: number,
    deadline: number,
    extra: FieldTable,
  ): FieldTable {
    // Only what the call needs: every header is encoded by the client, the broker and the server.
    const h: FieldTable = {
      [H.version]: WIRE_VERSION,
      [H.service]: router.service,
      [H.method]: method,
      [H.timeout]: Math.max(1, Math.ceil(deadline - performance.now())),
    };
    if (attempt > 1) h[H.attempt] = attempt;
    if (route.epoch !== undefined) h[H.epoch] = route.epoch;
    if (route.object !== undefined) h[H.object] = route.object;
    if (semantics === 'at-most-once') {
      h[H.client] = this.host.clientId;
      h[H.conversation] = this.host.conversation;
      h[H.seq] = seq;
      h[H.floor] = this.floor();
    }
    for (const k in extra) h[k] = extra[k];
    return h;
  }

  private publishRequest(
    call: PendingCall,
    route: Route,
    body: Buffer,
    headers: FieldTable,
    deadline: number,
  ): void {
    call.route = route;
    call.sent = true;
    const ttl = Math.max(1, Math.ceil(deadline - performance.now()));
    this.host.channel
      .publish('', route.queue, body, {
        replyTo: this.host.replyTo(),
        correlationId: call.id,
        contentType: CONTENT_TYPE,
        headers,
        mandatory: true,
        expiration: ttl,
      })
      .catch((err: unknown) => {
        if (err instanceof ClientError && err.code === ClientErrorCode.Unroutable)
          call.push({ kind: 'returned' });
        else call.push({ kind: 'lost' });
      });
  }

  private async attempts(
    router: Router,
    call: PendingCall,
    first: Route,
    where: string,
    method: string,
    spec: MethodSpec | undefined,
    body: Buffer,
    extra: FieldTable,
    semantics: Semantics,
    seq: number,
    deadline: number,
    policy: RetryPolicy,
    style: CallStyle,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    const amo = semantics === 'at-most-once';
    const addressed = first.instance !== undefined || first.object !== undefined;
    const attemptTimeout = policy.attemptTimeout ?? Math.max(1, (deadline - performance.now()) / 3);
    let route = first;
    let attempt = 1;
    /** Whether any attempt may have reached a server (a returned one did not). */
    let delivered = false;
    let lastError: RpcError | null = null;
    if (style === 'start') extra = { ...extra, [H.job]: 'start' };
    const send = (): void => {
      this.publishRequest(
        call,
        route,
        body,
        this.headers(router, route, method, semantics, seq, attempt, deadline, extra),
        deadline,
      );
    };
    send();
    let nextResend = performance.now() + attemptTimeout;
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) throw this.deadlineError(where, lastError);
      const ev = await this.wait(call, Math.min(left, Math.max(0, nextResend - performance.now())));
      switch (ev.kind) {
        case 'timer': {
          if (deadline - performance.now() <= 0) throw this.deadlineError(where, lastError);
          // No reply in time: resend (at-most-once: same instance, same sequence number).
          delivered = true;
          if (attempt < policy.maxAttempts && this.takeRetry()) {
            attempt++;
            if (!addressed && !amo) route = router.route(false, undefined) ?? route;
            send();
          }
          nextResend = performance.now() + attemptTimeout;
          continue;
        }
        case 'abort':
          this.sendCancel(router, route, call.id);
          throw cancelled(where, delivered || call.sent ? 'unknown' : 'no', signal);
        case 'gone':
          if (!amo && !addressed) continue;
          throw new RpcError(
            Status.UNAVAILABLE,
            `${where}: server instance ${route.instance ?? route.queue} disappeared before replying; whether it executed the call is unknown`,
            { reason: Reason.InstanceGone, rebind: true, executed: 'unknown' },
          );
        case 'returned': {
          router.unreachable(route);
          if ((amo || addressed) && (delivered || attempt > 1 || route.object !== undefined)) {
            if (route.object !== undefined) throw router.cannotLocate();
            throw new RpcError(
              Status.UNAVAILABLE,
              `${where}: the queue of instance ${route.instance ?? '?'} is gone; whether an earlier attempt executed the call is unknown`,
              { reason: Reason.InstanceGone, rebind: true, executed: 'unknown' },
            );
          }
          // Nobody received it: safe to send elsewhere.
          const next = await this.reroute(router, addressed, deadline, signal);
          if (next === null || attempt >= policy.maxAttempts) throw router.cannotLocate();
          route = next;
          attempt++;
          send();
          nextResend = performance.now() + attemptTimeout;
          continue;
        }
        case 'lost': {
          // The connection dropped: a reply addressed to the old session cannot arrive. Resend
          // once it is back (at-most-once: the server answers from its table if it ran it).
          delivered = true;
          if (this.host.isClosed()) {
            throw new RpcError(
              Status.UNAVAILABLE,
              `${where}: the connection closed before a reply came`,
              {
                reason: Reason.ConnectionLost,
                executed: 'unknown',
              },
            );
          }
          await this.reconnected(deadline, signal);
          if (signal?.aborted === true) continue;
          if (deadline - performance.now() <= 0) throw this.deadlineError(where, lastError);
          attempt++;
          if (!addressed && !amo) route = router.route(false, undefined) ?? route;
          send();
          nextResend = performance.now() + attemptTimeout;
          continue;
        }
        case 'reply': {
          const result = await this.onCallReply(ev.m, router, route, where, spec, style, signal);
          if (result.ok) return result.value;
          const err = result.error;
          lastError = err;
          if (err.rebind) router.unreachable(route);
          const retryable =
            policy.retryableStatuses.includes(err.status) &&
            (!amo || err.executed === 'no') &&
            attempt < policy.maxAttempts;
          if (!retryable || !this.takeRetry()) {
            if (retryable) {
              throw new RpcError(
                err.status,
                `${err.message} (not retried: the retry budget is spent)`,
                {
                  reason: Reason.RetryBudget,
                  issues: err.issues,
                  details: err.details,
                  executed: err.executed,
                  rebind: err.rebind,
                  cause: err,
                },
              );
            }
            throw err;
          }
          await this.pause(backoff(policy, attempt + 1), deadline, signal);
          if (signal?.aborted === true) continue;
          if (err.rebind || !addressed) {
            const next = await this.reroute(router, addressed, deadline, signal);
            if (next === null) throw router.cannotLocate();
            route = next;
          }
          attempt++;
          send();
          nextResend = performance.now() + attemptTimeout;
          continue;
        }
      }
    }
  }

  private takeRetry(): boolean {
    return this.host.budget === null || this.host.budget.tryRetry();
  }

  private async reroute(
    router: Router,
    addressed: boolean,
    deadline: number,
    signal: AbortSignal | undefined,
  ): Promise<Route | null> {
    let r = router.route(addressed, undefined);
    if (r !== null) return r;
    await router.locate(
      Math.min(this.host.locateTimeout, Math.max(0, deadline - performance.now())),
      signal,
    );
    r = router.route(addressed, undefined);
    return r;
  }

  private deadlineError(where: string, last: RpcError | null): RpcError {
    return new RpcError(
      Status.DEADLINE_EXCEEDED,
      `${where}: no reply before the deadline${last !== null ? ` (last error: ${last.message})` : ''}; the server may still have executed it`,
      { executed: 'unknown', cause: last ?? undefined },
    );
  }

  private wait(call: PendingCall, ms: number): Promise<CallEvent> {
    const e = call.events.shift();
    if (e !== undefined) return Promise.resolve(e);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        call.wake = null;
        resolve({ kind: 'timer' });
      }, ms);
      call.wake = () => {
        clearTimeout(t);
        call.wake = null;
        resolve(call.events.shift()!);
      };
    });
  }

  private pause(ms: number, deadline: number, signal: AbortSignal | undefined): Promise<void> {
    const d = Math.min(ms, Math.max(0, deadline - performance.now()));
    return new Promise((resolve) => {
      if (signal?.aborted === true) {
        resolve();
        return;
      }
      const done = (): void => {
        clearTimeout(t);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, d);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  private reconnected(deadline: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.host.connection.isOpen || this.host.isClosed()) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const w = { resolve: finish, reject: finish };
      const t = setTimeout(finish, Math.max(0, deadline - performance.now()));
      signal?.addEventListener('abort', finish, { once: true });
      this.reconnectWaiters.push(w);
      function finish(): void {
        clearTimeout(t);
        signal?.removeEventListener('abort', finish);
        resolve();
      }
    });
  }

  private async onCallReply(
    m: Message,
    router: Router,
    route: Route,
    where: string,
    spec: MethodSpec | undefined,
    style: CallStyle,
    signal: AbortSignal | undefined,
  ): Promise<{ ok: true; value: unknown } | { ok: false; error: RpcError }> {
    const h = m.properties.headers;
    const status = int(h, H.status) ?? Status.UNKNOWN;
    let body: Buffer;
    let decoded: unknown;
    try {
      body = await this.replyBody(m, signal);
      decoded = decodeValue(body, status === Status.OK ? this.host.decodeCtx : {});
    } catch (err) {
      const e =
        err instanceof RpcError
          ? err
          : new RpcError(Status.INTERNAL, `${where}: ${(err as Error).message}`);
      return {
        ok: false,
        error: new RpcError(e.status, `${where}: ${e.message}`, {
          reason: e.reason,
          executed: 'yes',
        }),
      };
    }
    if (status !== Status.OK) {
      const err = errorFromReply(status, decoded, where);
      if (err.reason === Reason.ObjectGone && router.ref !== undefined) router.unreachable(route);
      return { ok: false, error: err };
    }
    if (style === 'start') {
      const id = str(h, H.jobId);
      if (id === undefined) {
        return {
          ok: false,
          error: new RpcError(
            Status.INTERNAL,
            `${where}: the server answered a job start without a job id`,
            { reason: Reason.Malformed },
          ),
        };
      }
      const entry = route.instance !== undefined ? route.instance : (str(h, H.instance) ?? '');
      return { ok: true, value: this.makeJob(id, route, entry, where, spec) };
    }
    return this.checkResult(decoded, spec, where);
  }

  private async checkResult(
    decoded: unknown,
    spec: MethodSpec | undefined,
    where: string,
  ): Promise<{ ok: true; value: unknown } | { ok: false; error: RpcError }> {
    if (spec === undefined || spec.oneWay === true) return { ok: true, value: decoded };
    let v = runSchema(spec.result, decoded);
    if (v instanceof Promise) v = await v;
    if (v.ok) return { ok: true, value: v.value };
    return {
      ok: false,
      error: schemaError(
        Status.INTERNAL,
        Reason.InvalidResult,
        `${where}: the server's result does not match the contract`,
        'result',
        v.issues,
      ),
    };
  }

  private async replyBody(m: Message, signal: AbortSignal | undefined): Promise<Buffer> {
    const t = m.properties.headers?.[H.transfer];
    if (t === undefined) return m.body;
    if (this.host.carrier === null || typeof t !== 'object' || t === null) {
      throw new RpcError(
        Status.INTERNAL,
        'the reply body was sent out of band, and this endpoint has no largeBodies carrier',
        { reason: Reason.Malformed },
      );
    }
    return this.host.carrier.receive(t as FieldTable, signal);
  }

  private async sendOneWay(
    router: Router,
    first: Route,
    where: string,
    method: string,
    body: Buffer,
    extra: FieldTable,
    semantics: Semantics,
    seq: number,
    deadline: number,
    policy: RetryPolicy,
  ): Promise<void> {
    let route = first;
    for (let attempt = 1; ; attempt++) {
      const headers = this.headers(router, route, method, semantics, seq, attempt, deadline, extra);
      try {
        await this.host.channel.publish('', route.queue, body, {
          contentType: CONTENT_TYPE,
          headers,
          mandatory: true,
          expiration: Math.max(1, Math.ceil(deadline - performance.now())),
        });
        return;
      } catch (err) {
        const unroutable = err instanceof ClientError && err.code === ClientErrorCode.Unroutable;
        if (unroutable) router.unreachable(route);
        if (
          attempt >= policy.maxAttempts ||
          !this.takeRetry() ||
          deadline - performance.now() <= 0
        ) {
          if (unroutable) throw router.cannotLocate();
          throw new RpcError(
            Status.UNAVAILABLE,
            `${where}: the request could not be sent: ${(err as Error).message}`,
            {
              reason: Reason.ConnectionLost,
              executed: 'unknown',
              cause: err,
            },
          );
        }
        if (!unroutable) await this.reconnected(deadline, undefined);
        const next = await this.reroute(router, route.instance !== undefined, deadline, undefined);
        if (next === null) throw router.cannotLocate();
        route = next;
      }
    }
  }

  private sendCancel(router: Router, route: Route, callId: string): void {
    const props = {
      correlationId: callId,
      headers: { [H.op]: Op.Cancel, [H.version]: WIRE_VERSION },
    };
    const p =
      route.instance !== undefined || route.object !== undefined || router.cancelKey === undefined
        ? this.host.channel.publish('', route.queue, '', props)
        : this.host.channel.publish(this.host.names.exchange, router.cancelKey, '', props);
    p.catch(() => undefined);
  }

  onReply(m: Message): void {
    const id = m.properties.correlationId;
    if (id === LEASE_CORRELATION) {
      this.host.onLeaseReply(m);
      return;
    }
    if (id === undefined) return;
    const call = this.pending.get(id);
    if (call === undefined) return;
    const faults = this.host.faults;
    if (faults?.dropReply !== undefined) {
      const status = int(m.properties.headers, H.status) ?? Status.UNKNOWN;
      const method = str(m.properties.headers, H.method) ?? '';
      if (faults.dropReply({ method, callId: id, status })) return;
    }
    call.push({ kind: 'reply', m });
  }

  onInstanceGone(e: InstanceEntry): void {
    for (const call of this.pending.values()) {
      const r = call.route;
      if (r !== null && r.instance === e.ann.instance && r.epoch === e.ann.epoch)
        call.push({ kind: 'gone' });
    }
  }

  // ================================================================== jobs

  private makeJob(
    id: string,
    route: Route,
    instance: string,
    where: string,
    spec: MethodSpec | undefined,
  ): Job<unknown> {
    return new Job<unknown>(id, route.queue, instance, route.epoch ?? '', {
      poll: (job, signal) => this.jobRequest(job, Op.JobPoll, where, spec, signal),
      cancel: async (job) => {
        await this.jobRequest(job, Op.JobCancel, where, spec, undefined);
      },
    });
  }

  private async jobRequest(
    job: Job<unknown>,
    op: typeof Op.JobPoll | typeof Op.JobCancel,
    where: string,
    spec: MethodSpec | undefined,
    signal: AbortSignal | undefined,
  ): Promise<JobStatus<unknown>> {
    const call = new PendingCall(this.nextId());
    this.pending.set(call.id, call);
    const onAbort = (): void => call.push({ kind: 'abort' });
    signal?.addEventListener('abort', onAbort, { once: true });
    const route: Route = {
      queue: job.queue,
      epoch: job.epoch,
      instance: job.instance,
      object: undefined,
      retention: undefined,
    };
    const deadline = performance.now() + this.host.timeout;
    try {
      for (let attempt = 1; ; attempt++) {
        call.route = route;
        call.sent = true;
        this.host.channel
          .publish('', job.queue, '', {
            replyTo: this.host.replyTo(),
            correlationId: call.id,
            contentType: CONTENT_TYPE,
            mandatory: true,
            headers: {
              [H.version]: WIRE_VERSION,
              [H.op]: op,
              [H.jobId]: job.id,
              [H.epoch]: job.epoch,
            },
          })
          .catch((err: unknown) => {
            call.push(
              err instanceof ClientError && err.code === ClientErrorCode.Unroutable
                ? { kind: 'returned' }
                : { kind: 'lost' },
            );
          });
        const ev = await this.wait(
          call,
          Math.max(0, Math.min(deadline - performance.now(), this.host.timeout / 3)),
        );
        switch (ev.kind) {
          case 'reply': {
            const h = ev.m.properties.headers;
            const status = int(h, H.status) ?? Status.UNKNOWN;
            if (status === Status.OK && str(h, H.jobState) !== JobState.Done)
              return { state: 'running' };
            const r = await this.onCallReply(
              ev.m,
              jobRouter(where),
              route,
              where,
              spec,
              'call',
              signal,
            );
            if (r.ok) return { state: 'done', result: r.value };
            if (str(h, H.jobState) !== JobState.Done) throw r.error;
            return { state: 'failed', error: r.error };
          }
          case 'abort':
            throw cancelled(where, 'no', signal);
          case 'returned':
          case 'gone':
            throw new RpcError(
              Status.NOT_FOUND,
              `${where}: job ${job.id} is gone with its instance ${job.instance}`,
              {
                reason: Reason.UnknownJob,
                executed: 'unknown',
              },
            );
          case 'lost':
            await this.reconnected(deadline, signal);
            break;
          case 'timer':
            if (deadline - performance.now() <= 0) throw this.deadlineError(where, null);
            break;
        }
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.pending.delete(call.id);
    }
  }
}

function cancelled(where: string, executed: 'no' | 'unknown', signal?: AbortSignal): RpcError {
  const reason: unknown = signal?.reason;
  if (reason instanceof RpcError && reason.status === Status.DEADLINE_EXCEEDED) {
    // The call this one was made for ran out of time (the signal came from its context).
    return new RpcError(
      Status.DEADLINE_EXCEEDED,
      `${where}: the calling handler's deadline passed`,
      {
        executed,
        cause: reason,
      },
    );
  }
  return new RpcError(Status.CANCELLED, `${where}: the call was cancelled`, {
    executed,
    cause: reason instanceof Error ? reason : undefined,
  });
}
