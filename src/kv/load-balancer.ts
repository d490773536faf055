import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import type { Broker } from '../broker/index.js';
import { connect, startBroker } from '../client/index.js';
import type { Channel, Connection, Message } from '../client/index.js';
import { rpcEndpoint } from '../rpc/index.js';
import type { RpcEndpoint, ServiceServer } from '../rpc/index.js';
import { Deque } from '../util/deque.js';
import { DEFAULT_NAMESPACE, LbService, kvNames } from './contracts.js';
import type { KvNames } from './contracts.js';
import { MemberState, Membership } from './membership.js';
import type { Member, MemberChange } from './membership.js';
import {
  MAX_BARRIER,
  SHUTDOWN_MESSAGE,
  WireType,
  WorkerResult,
  decodeGossip,
  decodeWorkerResponse,
  encodeGossip,
  encodeHello,
  encodeWorkerRequest,
} from './messages.js';
import type { RequestType, WorkerResponse } from './messages.js';
import {
  ErrorCode,
  FrameReader,
  MsgType,
  Result,
  SHUTDOWN_FRAME,
  decodeRequest,
  encodeError,
  encodeGetResponse,
  encodeKeyResponse,
} from './protocol.js';
import type { ClientRequest } from './protocol.js';
import { WorkerRing } from './worker-ring.js';

export interface LoadBalancerOptions {
  /** Client port (default 5059, the seed's; 0 picks a free one). */
  port?: number | undefined;
  host?: string | undefined;
  /** A broker URL; without one the load balancer starts an embedded Warren broker. */
  broker?: string | undefined;
  /** AMQP port of the embedded broker, for workers (default 5673; 0 picks a free one). */
  amqpPort?: number | undefined;
  namespace?: string | undefined;
  /** Ms a worker has to answer before the request goes to the next one (default 3000). */
  attemptTimeout?: number | undefined;
  /** Ms before a request is answered with ERROR whatever happens (default 10 000). */
  requestTimeout?: number | undefined;
  /** Requests a connection may have unanswered before reading from it pauses (default 256). */
  maxPipeline?: number | undefined;
  /** Largest request payload accepted (default 65535, the protocol's). */
  maxPayload?: number | undefined;
  gossipInterval?: number | undefined;
  failTimeout?: number | undefined;
  cleanupTimeout?: number | undefined;
  log?: ((line: string) => void) | undefined;
}

/** The embedded broker's default AMQP port: next to RabbitMQ's, so both can run. */
export const DEFAULT_KV_AMQP_PORT = 5673;
export const DEFAULT_KV_PORT = 5059;

/** Past a request's deadline, the worker it went to refuses it; this much later it is re-sent. */
const DEADLINE_GRACE = 100;
const SWEEP_MS = 50;

/** A worker as the load balancer sees it. */
class WorkerRef {
  /** Requests sent to it and not answered. */
  readonly inflight = new Set<Pending>();
  /** Its heartbeat when it missed a deadline; it is skipped until the heartbeat moves on. */
  suspectHb: number | null = null;
  constructor(
    readonly id: string,
    public inbox: string,
  ) {}
}

/** One client request, from its frame until its response is written. */
class Pending {
  /** Id of the current attempt (the seed's clientId field). */
  id = 0;
  response: Buffer | null = null;
  /** The next request of the same connection on the same key, waiting for this one. */
  next: Pending | null = null;
  worker: WorkerRef | null = null;
  deadline = 0;
  tried: Set<string> | null = null;
  done = false;
  parked = false;

  constructor(
    readonly session: Session,
    readonly op: ClientRequest['op'],
    readonly key: Buffer,
    readonly keyStr: string,
    readonly value: Buffer,
    readonly expires: number,
  ) {}
}

/** A client connection: its frames, its responses in order, its session guarantees. */
class Session {
  readonly reader: FrameReader;
  readonly queue = new Deque<Pending>(16);
  /** Per key, the last request of this connection on it not yet answered. */
  readonly busy = new Map<string, Pending>();
  /** The highest timestamp this session has seen: its writes get later ones. */
  clock = 0;
  /** Per worker, the highest write of its stream this session has seen: reads wait for them. */
  readonly vector = new Map<string, number>();
  pausedForPipeline = false;
  pausedForDrain = false;
  /** The client half-closed: the connection ends once the last response is written. */
  halfClosed = false;
  closed = false;

  constructor(
    readonly socket: Socket,
    maxPayload: number,
  ) {
    this.reader = new FrameReader(maxPayload);
  }
}

/**
 * The load balancer of seed 002: clients connect over TCP and speak the seed's binary protocol;
 * each request goes to the next ready worker in turn (round robin over the seed's circular worker
 * list), as an AMQP message to that worker's queue, and its answer comes back to the load
 * balancer's queue and is written to the right client, in the order the client sent its requests.
 * Workers register and report readiness over RPC and learn about each other by gossip, in which
 * the load balancer takes part to learn about failures.
 */
export class LoadBalancer {
  readonly port: number;
  /** Where workers connect. */
  readonly brokerUrl: string;
  readonly embedded: Broker | null;

  private readonly o: Resolved<Omit<LoadBalancerOptions, 'host' | 'broker' | 'log'>>;
  private readonly names: KvNames;
  private readonly log: (line: string) => void;
  private readonly server: Server;
  private readonly conn: Connection;
  private readonly ch: Channel;
  private readonly rpc: RpcEndpoint;
  private rpcServer: ServiceServer | null = null;
  private readonly membership: Membership;
  private readonly ring = new WorkerRing<WorkerRef>();
  private readonly workers = new Map<string, WorkerRef>();
  private readonly byInbox = new Map<string, WorkerRef>();
  private readonly sessions = new Set<Session>();
  /** Connections that arrived while stopping: told MSG_SHUTDOWN, destroyed with the rest. */
  private readonly strays = new Set<Socket>();
  private straysDestroyed = false;
  /** Workers gone from the membership, and when their session barrier entries are dropped. */
  private readonly departed = new Map<string, number>();
  private readonly inflight = new Map<number, Pending>();
  private readonly timeline = new Deque<{ p: Pending; id: number }>(64);
  private readonly parked = new Deque<Pending>(16);
  private parkedCount = 0;
  private nextId = 0;
  private sweepTimer: NodeJS.Timeout | null = null;
  private gossipTimer: NodeJS.Timeout | null = null;
  private exporterTurn = 0;
  private stopping: Promise<void> | null = null;
  private leftOnShutdown: Set<string> | null = null;
  private onAllLeft: (() => void) | null = null;
  private readonly counts = { requests: 0, retries: 0 };

  private constructor(
    o: LoadBalancerOptions,
    server: Server,
    conn: Connection,
    ch: Channel,
    rpc: RpcEndpoint,
    broker: Broker | null,
    brokerUrl: string,
  ) {
    this.o = {
      port: o.port ?? DEFAULT_KV_PORT,
      amqpPort: o.amqpPort ?? DEFAULT_KV_AMQP_PORT,
      namespace: o.namespace ?? DEFAULT_NAMESPACE,
      attemptTimeout: o.attemptTimeout ?? 3000,
      requestTimeout: o.requestTimeout ?? 10_000,
      maxPipeline: o.maxPipeline ?? 256,
      maxPayload: o.maxPayload ?? 0xffff,
      gossipInterval: o.gossipInterval ?? 500,
      failTimeout: o.failTimeout ?? 3000,
      cleanupTimeout: o.cleanupTimeout ?? 30_000,
    };
    this.names = kvNames(this.o.namespace);
    this.log = o.log ?? (() => undefined);
    this.server = server;
    this.conn = conn;
    this.ch = ch;
    this.rpc = rpc;
    this.embedded = broker;
    this.brokerUrl = brokerUrl;
    this.port = (server.address() as AddressInfo).port;
    // The heartbeat starts at the clock: a restarted load balancer's is higher than any its
    // predecessor reached (one per gossip round), so workers take its gossip for newer news.
    this.membership = new Membership(
      { id: 'lb', role: 'lb', inbox: this.names.lbInbox, state: MemberState.Ready },
      {
        failTimeout: this.o.failTimeout,
        cleanupTimeout: this.o.cleanupTimeout,
        incarnation: Date.now(),
      },
    );
    this.membership.on('change', (m, what) => this.onMemberChange(m, what));
  }

  /** Start the broker (unless given one), take the load balancer's queue, listen for clients. */
  static async start(o: LoadBalancerOptions = {}): Promise<LoadBalancer> {
    const log = o.log ?? (() => undefined);
    let broker: Broker | null = null;
    let conn: Connection | null = null;
    let server: Server | null = null;
    try {
      let url: string;
      if (o.broker === undefined) {
        broker = await startBroker({
          port: o.amqpPort ?? DEFAULT_KV_AMQP_PORT,
          dataDir: null,
          logLevel: 'warn',
        });
        url = `amqp://guest:guest@localhost:${broker.port}`;
        conn = await connect(broker, { connectionName: 'warren kv lb' });
        log(`broker ${url} (embedded Warren broker; workers connect here)`);
      } else {
        url = o.broker;
        conn = await connect(url, { connectionName: 'warren kv lb' });
        log(`broker ${conn.options.target}`);
      }
      const names = kvNames(o.namespace ?? DEFAULT_NAMESPACE);
      const ch = await conn.channel();
      // Exclusive: a second load balancer on the same broker and namespace is refused here.
      await ch.queueDeclare(names.lbInbox, { exclusive: true });
      const rpc = await rpcEndpoint(conn, { namespace: names.rpc, clientId: 'lb' });
      // Half-open: a client that sends its requests and then shuts down its side (printf ... | nc)
      // still gets every answer; the load balancer ends the connection after the last one.
      server = createServer({ noDelay: true, allowHalfOpen: true });
      await listen(server, o.port ?? DEFAULT_KV_PORT, o.host);
      const lb = new LoadBalancer(o, server, conn, ch, rpc, broker, url);
      await lb.open();
      log(`listening ${lb.port}`);
      return lb;
    } catch (err) {
      server?.close();
      await conn?.close().catch(() => undefined);
      await broker?.stop().catch(() => undefined);
      throw err;
    }
  }

  private async open(): Promise<void> {
    this.ch.on('return', (r) => this.onReturn(r.routingKey));
    await this.ch.consume(this.names.lbInbox, (m) => this.onInbox(m), { noAck: true });
    this.rpcServer = await this.rpc.serve(
      LbService,
      {
        register: ({ id, inbox, state, hb }) => this.register(id, inbox, state, hb),
        setState: ({ id, state, hb }) => this.setState(id, state, hb),
        leave: ({ id }) => this.leave(id),
        stats: ({ gc }) => this.stats(gc === true),
      },
      { instanceId: 'lb', lease: 6000 },
    );
    // Workers that served a previous load balancer (it crashed, and this one replaced it) hear
    // this on their inboxes and register again, with their state.
    await this.ch.exchangeDeclare(this.names.announce, 'fanout');
    await this.ch.publish(
      this.names.announce,
      '',
      encodeHello(this.names.lbInbox, this.membership.self.hb),
    );
    // Last, once nothing above can fail: start() cleans up only the server and the connection.
    this.server.on('connection', (socket) => this.onConnection(socket));
    this.gossipTimer = setInterval(() => this.onGossipTick(), this.o.gossipInterval);
  }

  // ---------------------------------------------------------------- workers

  /**
   * A worker registers: a new one (joining; it is told which worker exports to it), or one that
   * served a previous load balancer and comes back with its state (it needs no export).
   */
  private register(id: string, inbox: string, state: MemberState = MemberState.Joining, hb = 0) {
    this.membership.learn({ id, role: 'worker', inbox, hb, state });
    if (state !== MemberState.Joining) {
      this.log(`worker ${id} registered again (${state})`);
      this.refresh(id);
      return { workers: [] };
    }
    const others: Member[] = [];
    for (const m of this.membership.all()) {
      if (m.role === 'worker' && m.id !== id && m.alive && m.state !== MemberState.Joining) {
        others.push(m);
      }
    }
    // The seed's shouldExportData goes to one worker, in turn: a ready one if any, else one that
    // was ready and is catching up (it has the data); workers still joining have nothing yet.
    const ready = others.filter((m) => m.state === MemberState.Ready);
    const pool = ready.length > 0 ? ready : others;
    const exporter = pool.length > 0 ? pool[this.exporterTurn++ % pool.length]! : null;
    this.log(
      `worker ${id} registered` + (exporter !== null ? `; ${exporter.id} exports to it` : ''),
    );
    return {
      workers: others.map((m) => ({
        id: m.id,
        inbox: m.inbox,
        state: m.state,
        hb: m.hb,
        export: m === exporter,
      })),
    };
  }

  private setState(id: string, state: 'ready' | 'not-ready', hb: number): boolean {
    const m = this.membership.get(id);
    if (m === undefined) return false;
    this.membership.learn({ id, role: 'worker', inbox: m.inbox, hb, state });
    const w = this.workers.get(id);
    if (w !== undefined && state === MemberState.Ready) w.suspectHb = null;
    this.refresh(id);
    return true;
  }

  private leave(id: string): void {
    const m = this.membership.get(id);
    if (m === undefined) return;
    this.membership.learn({ id, role: 'worker', inbox: m.inbox, hb: m.hb + 1, state: 'left' });
  }

  private onMemberChange(m: Member, what: MemberChange): void {
    if (m.role !== 'worker') return;
    if (what === 'joined') {
      const w = new WorkerRef(m.id, m.inbox);
      this.workers.set(m.id, w);
      this.byInbox.set(m.inbox, w);
      this.departed.delete(m.id);
    } else if (what === 'removed') {
      const w = this.workers.get(m.id);
      this.ring.remove(m.id);
      this.workers.delete(m.id);
      if (w !== undefined) {
        this.byInbox.delete(w.inbox);
        this.retryAll(w);
      }
      // Its writes stay in the session barriers a while longer: the replicas may still be
      // applying the last of them (a worker that crashed is removed as soon as its queue goes).
      this.departed.set(m.id, Date.now() + this.o.cleanupTimeout);
      this.log(`worker ${m.id} unregistered`);
      return;
    } else if (what === 'failed') {
      this.log(`worker ${m.id} failed (no heartbeat for ${this.o.failTimeout} ms)`);
    } else if (what === 'state') {
      this.log(`worker ${m.id} ${m.state === MemberState.Left ? 'left' : `is ${m.state}`}`);
      if (m.state === MemberState.Left) {
        this.leftOnShutdown?.delete(m.id);
        if (this.leftOnShutdown?.size === 0) this.onAllLeft?.();
      }
    } else if (what === 'recovered') {
      this.log(`worker ${m.id} is back`);
    }
    this.refresh(m.id);
  }

  /** Put a worker in the round-robin ring if it is ready, alive and not suspect; else take it out. */
  private refresh(id: string): void {
    const m = this.membership.get(id);
    const w = this.workers.get(id);
    if (m === undefined || w === undefined) return;
    if (w.suspectHb !== null && m.hb > w.suspectHb + 1) w.suspectHb = null;
    const serving = m.alive && m.state === MemberState.Ready && w.suspectHb === null;
    if (serving && !this.ring.has(id)) {
      this.ring.add(id, w);
      this.unpark();
    } else if (!serving && this.ring.remove(id)) {
      // Requests in flight there are resent when they time out (or at once if it is gone).
    }
  }

  /** A worker's queue is gone: so is the worker (its queue lives as long as its connection). */
  private onReturn(queue: string): void {
    const w = this.byInbox.get(queue);
    if (w === undefined) return;
    this.log(`worker ${w.id} is gone (its queue no longer exists)`);
    this.membership.drop(w.id);
  }

  /** Resend every request in flight at `w` to other workers (w can no longer act on them). */
  private retryAll(w: WorkerRef): void {
    for (const p of [...w.inflight]) this.retry(p, true);
  }

  // ---------------------------------------------------------------- gossip and replies

  private onInbox(m: Message): void {
    const body = m.body;
    let r: WorkerResponse;
    try {
      if (body[0] === WireType.Gossip) {
        this.membership.merge(decodeGossip(body));
        for (const w of this.workers.values()) if (w.suspectHb !== null) this.refresh(w.id);
        return;
      }
      r = decodeWorkerResponse(body);
    } catch (err) {
      this.log(`ignored a malformed message: ${(err as Error).message}`);
      return;
    }
    this.onResponse(r);
  }

  private onGossipTick(): void {
    this.forgetDeparted();
    this.membership.tick();
    const body = encodeGossip(this.membership.table());
    for (const m of this.membership.pick(2)) {
      this.ch.publish('', m.inbox, body, { mandatory: true }).catch(() => undefined);
    }
  }

  // ---------------------------------------------------------------- clients

  private onConnection(socket: Socket): void {
    socket.on('error', () => undefined);
    if (this.stopping !== null) {
      // Kept until stop destroys it: a client that never closes must not hold the server open.
      socket.end(SHUTDOWN_FRAME);
      if (this.straysDestroyed) {
        socket.destroy();
        return;
      }
      this.strays.add(socket);
      socket.once('close', () => this.strays.delete(socket));
      return;
    }
    socket.setNoDelay(true);
    const s = new Session(socket, this.o.maxPayload);
    this.sessions.add(s);
    socket.on('data', (chunk: Buffer) => this.onData(s, chunk));
    socket.on('drain', () => {
      s.pausedForDrain = false;
      this.resumeIfAble(s);
    });
    socket.on('end', () => {
      s.halfClosed = true;
      this.flush(s);
    });
    socket.on('close', () => this.onClose(s));
  }

  private onData(s: Session, chunk: Buffer): void {
    if (s.closed) return;
    s.reader.push(chunk);
    const now = Date.now();
    // Bounded by the bytes received: each pass consumes one frame.
    for (let f = s.reader.next(); f !== null; f = s.reader.next()) {
      if (f.payload === null) {
        this.answerNow(
          s,
          encodeError(
            ErrorCode.TooLarge,
            `payload of ${f.length} bytes is larger than the ${this.o.maxPayload} this server accepts; skipped`,
          ),
        );
        continue;
      }
      const r = decodeRequest(f.type, f.payload);
      if (r.op === 0) {
        this.answerNow(s, encodeError(r.code, r.message));
        continue;
      }
      this.counts.requests++;
      const key = r.key;
      const keyStr = key.toString('latin1');
      const value = r.op === MsgType.Put ? r.value : EMPTY;
      const p = new Pending(s, r.op, key, keyStr, value, now + this.o.requestTimeout);
      s.queue.push(p);
      // Requests of one connection on one key take effect in the order sent.
      const before = s.busy.get(keyStr);
      s.busy.set(keyStr, p);
      if (before !== undefined) before.next = p;
      else this.dispatch(p);
    }
    this.flush(s);
    if (s.queue.length >= this.o.maxPipeline && !s.pausedForPipeline) {
      s.pausedForPipeline = true;
      s.socket.pause();
    }
  }

  private answerNow(s: Session, frame: Buffer): void {
    const p = new Pending(s, MsgType.Get, EMPTY, '', EMPTY, 0);
    p.done = true;
    p.response = frame;
    s.queue.push(p);
  }

  /**
   * Write the responses at the head of the queue that are ready, in order; once a client that
   * half-closed has every answer, end the connection.
   */
  private flush(s: Session): void {
    if (s.closed) return;
    const q = s.queue;
    const sock = s.socket;
    if (q.length > 0 && q.peek()!.response !== null) {
      sock.cork();
      let ok = true;
      while (q.length > 0 && q.peek()!.response !== null) ok = sock.write(q.shift()!.response!);
      sock.uncork();
      if (!ok) {
        s.pausedForDrain = true;
        sock.pause();
      }
      if (s.pausedForPipeline && q.length < this.o.maxPipeline / 2) {
        s.pausedForPipeline = false;
        this.resumeIfAble(s);
      }
    }
    if (s.halfClosed && q.length === 0 && !sock.writableEnded) sock.end();
  }

  private resumeIfAble(s: Session): void {
    if (!s.closed && !s.pausedForDrain && !s.pausedForPipeline) s.socket.resume();
  }

  /** The client went away: forget its requests (answers that still come are dropped). */
  private onClose(s: Session): void {
    s.closed = true;
    this.sessions.delete(s);
    // Bounded by the queue's length.
    while (s.queue.length > 0) {
      const p = s.queue.shift()!;
      if (p.done) continue;
      p.done = true;
      this.inflight.delete(p.id);
      p.worker?.inflight.delete(p);
      p.worker = null;
      // Counted once: unpark and sweep skip (and drop) requests no longer marked parked.
      if (p.parked) {
        p.parked = false;
        this.parkedCount--;
      }
    }
    s.busy.clear();
    s.vector.clear();
    this.maybeStopSweeping();
  }

  // ---------------------------------------------------------------- dispatch

  private dispatch(p: Pending): void {
    if (p.done) return;
    const tried = p.tried;
    const w =
      (tried === null ? this.ring.next() : this.ring.next((x) => tried.has(x.id))) ??
      this.ring.next();
    if (w === undefined) {
      this.park(p);
      return;
    }
    const s = p.session;
    const id = (this.nextId = (this.nextId + 1) >>> 0);
    const deadline = Date.now() + this.o.attemptTimeout;
    const type: RequestType =
      p.op === MsgType.Put
        ? WireType.StoreRequest
        : p.op === MsgType.Get
          ? WireType.RetrieveRequest
          : WireType.RemoveRequest;
    let body: Buffer;
    try {
      body = encodeWorkerRequest({
        type,
        id,
        key: p.key,
        value: p.value,
        deadline,
        clock: s.clock,
        after: s.vector.size === 0 ? NO_BARRIER : [...s.vector],
      });
    } catch (err) {
      // Not expected (keys and barriers are bounded before this); answer rather than lose it.
      this.log(`cannot send a request to a worker: ${(err as Error).message}`);
      this.complete(p, this.responseFrame(p, Result.Error, null));
      return;
    }
    p.id = id;
    p.worker = w;
    p.deadline = deadline;
    this.inflight.set(id, p);
    w.inflight.add(p);
    this.timeline.push({ p, id });
    this.startSweeping();
    this.ch
      .publish('', w.inbox, body, { replyTo: this.names.lbInbox, mandatory: true })
      .catch(() => undefined);
  }

  private park(p: Pending): void {
    if (p.parked) return;
    p.parked = true;
    this.parkedCount++;
    this.parked.push(p);
    this.startSweeping();
  }

  /** A worker became available: send what waited for one. */
  private unpark(): void {
    // Bounded: each pass takes one parked request (dispatch parks it again only if no worker).
    for (let n = this.parked.length; n > 0 && this.ring.size > 0; n--) {
      const p = this.parked.shift()!;
      if (!p.parked) continue;
      p.parked = false;
      this.parkedCount--;
      this.dispatch(p);
    }
  }

  private onResponse(r: WorkerResponse): void {
    const p = this.inflight.get(r.id);
    if (p === undefined || p.done) return;
    if (r.result === WorkerResult.Behind) {
      this.retry(p, true);
      return;
    }
    const s = p.session;
    if (r.stamp !== null) {
      if (r.stamp.hlc > s.clock) s.clock = r.stamp.hlc;
      this.observe(s, r.stamp.origin, r.stamp.seq);
    }
    const result =
      r.result === WorkerResult.Ok
        ? Result.Ok
        : r.result === WorkerResult.NotFound
          ? Result.NotFound
          : Result.Error;
    this.complete(p, this.responseFrame(p, result, r.value));
  }

  /**
   * Add a write to the session's barrier. Only workers that are members count: a version read
   * from a worker long gone needs no barrier (every replica applied its writes long ago), and
   * the barrier must stay within what a request can carry.
   */
  private observe(s: Session, origin: string, seq: number): void {
    const seen = s.vector.get(origin);
    if (seen !== undefined) {
      if (seq > seen) s.vector.set(origin, seq);
      return;
    }
    if (this.membership.get(origin) === undefined) return;
    if (s.vector.size >= MAX_BARRIER) {
      // More workers than a barrier holds: forget the entry of one no longer a member, or else
      // the oldest (read-your-writes then rests on that worker's writes having spread by now).
      let drop: string | undefined;
      for (const o of s.vector.keys()) {
        drop ??= o;
        if (this.membership.get(o) === undefined) {
          drop = o;
          break;
        }
      }
      s.vector.delete(drop!);
    }
    s.vector.set(origin, seq);
  }

  /** Drop the barrier entries of workers that left long enough ago. */
  private forgetDeparted(): void {
    if (this.departed.size === 0) return;
    const now = Date.now();
    for (const [id, at] of this.departed) {
      if (at > now) continue;
      this.departed.delete(id);
      for (const s of this.sessions) s.vector.delete(id);
    }
  }

  /** The response to a request; never throws (it runs from timers and the consumer). */
  private responseFrame(p: Pending, result: Result, value: Buffer | null): Buffer {
    try {
      switch (p.op) {
        case MsgType.Put:
          return encodeKeyResponse(MsgType.PutResponse, result, p.key);
        case MsgType.Delete:
          return encodeKeyResponse(MsgType.DeleteResponse, result, p.key);
        default:
          return encodeGetResponse(result, p.key, result === Result.Ok ? value : null);
      }
    } catch (err) {
      // Requests are checked on arrival so that their responses fit; this is the last resort.
      return encodeError(
        ErrorCode.TooLarge,
        `the response does not fit: ${(err as Error).message}`,
      );
    }
  }

  private complete(p: Pending, frame: Buffer): void {
    this.inflight.delete(p.id);
    p.worker?.inflight.delete(p);
    p.worker = null;
    p.done = true;
    p.response = frame;
    const s = p.session;
    if (s.busy.get(p.keyStr) === p) s.busy.delete(p.keyStr);
    const next = p.next;
    p.next = null;
    if (next !== null) this.dispatch(next);
    this.flush(s);
  }

  /** Send the request to another worker, or answer ERROR once its time is up. */
  private retry(p: Pending, avoid: boolean): void {
    if (p.done) return;
    this.inflight.delete(p.id);
    const w = p.worker;
    if (w !== null) {
      w.inflight.delete(p);
      if (avoid) (p.tried ??= new Set()).add(w.id);
    }
    p.worker = null;
    if (Date.now() >= p.expires) {
      this.complete(p, this.responseFrame(p, Result.Error, null));
      return;
    }
    this.counts.retries++;
    this.dispatch(p);
  }

  private startSweeping(): void {
    this.sweepTimer ??= setInterval(() => {
      try {
        this.sweep();
      } catch (err) {
        // A bug here must not take the load balancer down with every client.
        this.log(`sweep failed: ${(err as Error).stack ?? String(err)}`);
      }
    }, SWEEP_MS);
  }

  private maybeStopSweeping(): void {
    if (this.parkedCount === 0) this.parked.clear();
    if (this.sweepTimer !== null && this.inflight.size === 0 && this.parkedCount === 0) {
      this.timeline.clear();
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
  }

  /** Resend requests whose worker missed the deadline; fail parked ones whose time is up. */
  private sweep(): void {
    const now = Date.now();
    const t = this.timeline;
    // Bounded by the timeline's length: each pass removes one entry.
    while (t.length > 0 && t.peek()!.p.deadline + DEADLINE_GRACE <= now) {
      const { p, id } = t.shift()!;
      if (p.done || p.id !== id || this.inflight.get(id) !== p) continue;
      const w = p.worker;
      if (w !== null && w.suspectHb === null) {
        const m = this.membership.get(w.id);
        w.suspectHb = m?.hb ?? 0;
        this.log(`worker ${w.id} missed a deadline; skipping it until it shows signs of life`);
        this.refresh(w.id);
      }
      this.retry(p, true);
    }
    // Stale timeline entries (answered requests) are dropped as their deadlines pass.
    while (t.length > 0 && (t.peek()!.p.done || t.peek()!.p.id !== t.peek()!.id)) t.shift();
    // Requests dropped from the queue (their client left) are no longer marked parked.
    if (this.parked.length > 0) {
      for (let n = this.parked.length; n > 0; n--) {
        const p = this.parked.shift()!;
        if (!p.parked) continue;
        if (now >= p.expires) {
          p.parked = false;
          this.parkedCount--;
          this.complete(p, this.responseFrame(p, Result.Error, null));
        } else {
          this.parked.push(p);
        }
      }
    }
    this.maybeStopSweeping();
  }

  // ---------------------------------------------------------------- stats and stopping

  private stats(gc: boolean) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (gc && g !== undefined) {
      g();
      g();
    }
    const mem = process.memoryUsage();
    return {
      heapUsed: mem.heapUsed,
      heapTotal: mem.heapTotal,
      rss: mem.rss,
      external: mem.external,
      arrayBuffers: mem.arrayBuffers,
      gcRan: gc && g !== undefined,
      connections: this.sessions.size,
      inflight: this.inflight.size,
      parked: this.parkedCount,
      barrierEntries: [...this.sessions].reduce((n, s) => n + s.vector.size, 0),
      members: this.membership.size - 1,
      removedMembers: this.membership.removedCount,
      ring: this.ring.values().map((w) => w.id),
      requests: this.counts.requests,
      retries: this.counts.retries,
      timers: this.sweepTimer === null ? 0 : 1,
    };
  }

  /**
   * Stop: no new clients; requests in flight get a little time to be answered; then every client
   * gets MSG_SHUTDOWN and is disconnected, every worker gets SHUTDOWN and stops, and the broker
   * (if embedded) stops last.
   */
  stop(): Promise<void> {
    this.stopping ??= this.stopNow();
    return this.stopping;
  }

  private async stopNow(): Promise<void> {
    this.log('load balancer shutting down');
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const until = Date.now() + 2000;
    // Bounded by the deadline.
    while (this.inflight.size > 0 && Date.now() < until) await sleep(20);
    for (const s of [...this.sessions]) {
      this.flush(s);
      s.socket.end(SHUTDOWN_FRAME);
    }
    if (this.gossipTimer !== null) clearInterval(this.gossipTimer);
    const workers = [...this.membership.all()].filter(
      (m) => m.role === 'worker' && m.state !== MemberState.Left && !m.failed,
    );
    if (workers.length > 0) {
      this.leftOnShutdown = new Set(workers.map((m) => m.id));
      const allLeft = new Promise<void>((resolve) => (this.onAllLeft = resolve));
      for (const m of workers) {
        await this.ch
          .publish('', m.inbox, SHUTDOWN_MESSAGE, { replyTo: this.names.lbInbox })
          .catch(() => undefined);
      }
      this.log(`told ${workers.length} worker(s) to shut down`);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([allLeft, new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]);
      clearTimeout(timer);
    }
    for (const s of [...this.sessions]) s.socket.destroy();
    this.straysDestroyed = true;
    for (const socket of [...this.strays]) socket.destroy();
    await closed;
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    await this.rpcServer?.close().catch(() => undefined);
    await this.rpc.close().catch(() => undefined);
    await this.conn.close().catch(() => undefined);
    await this.embedded?.stop().catch(() => undefined);
    const mem = process.memoryUsage();
    this.log(
      `load balancer stopped; heap ${Math.round(mem.heapUsed / 1024)} KB, rss ${Math.round(mem.rss / 1024)} KB`,
    );
  }
}

const EMPTY = Buffer.alloc(0);

/** Options with every field set. */
type Resolved<T> = { [K in keyof T]-?: Exclude<T[K], undefined> };
const NO_BARRIER: readonly (readonly [string, number])[] = [];

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function listen(server: Server, port: number, host: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
