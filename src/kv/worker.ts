import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { connect } from '../client/index.js';
import type { Channel, Connection, Message } from '../client/index.js';
import { Reason, isRpcError, rpcEndpoint } from '../rpc/index.js';
import type { RpcEndpoint, ServiceClient, ServiceServer } from '../rpc/index.js';
import { AntiEntropy } from './anti-entropy.js';
import { DEFAULT_NAMESPACE, LbService, WorkerService, kvNames } from './contracts.js';
import type { KvNames } from './contracts.js';
import { EntryTransfer } from './entry-transfer.js';
import { HybridClock, TICKS_PER_MS } from './hlc.js';
import { MemberState, Membership } from './membership.js';
import type { Member } from './membership.js';
import {
  RESPONSE_TYPE,
  WireType,
  WorkerResult,
  decodeGossip,
  decodeHello,
  decodeWorkerRequest,
  encodeGossip,
  encodePeerNotify,
  encodeWorkerResponse,
  peekWorkerRequest,
} from './messages.js';
import type { Stamp, Update, WorkerRequest } from './messages.js';
import { ReadBarriers } from './read-barriers.js';
import { ReplicaStream } from './replica-stream.js';
import { KvStore, keyString } from './store.js';
import { bounded, located, sleep } from './waits.js';
import { Watermarks } from './watermarks.js';
import { WorkerStoppedError } from './worker-stopped-error.js';

export interface WorkerOptions {
  /** The broker, e.g. the load balancer's embedded one. */
  url: string;
  namespace?: string | undefined;
  /** Prefix of the worker id (default: the host name); a random suffix makes each start unique. */
  name?: string | undefined;
  /** Ms between gossip rounds (default 500). */
  gossipInterval?: number | undefined;
  /** Ms without a heartbeat after which a member counts as failed (default 3000). */
  failTimeout?: number | undefined;
  /** Ms after which failed and departed members are forgotten (default 30 000). */
  cleanupTimeout?: number | undefined;
  /** Ms between anti-entropy rounds with a random peer (default 2000). */
  antiEntropyInterval?: number | undefined;
  /** Ms a death certificate is kept (default 1 hour). */
  tombstoneTtl?: number | undefined;
  /** Ms a read waits for this replica to catch up with its session before answering BEHIND. */
  barrierWait?: number | undefined;
  /** Ms the replica queue outlives its worker's connection (default 60 000). */
  replicaExpires?: number | undefined;
  /** Testing: apply replicated writes this many ms late. */
  replicationDelay?: number | undefined;
  /** Aborting it while the worker starts stops it, and start() rejects with WorkerStoppedError. */
  signal?: AbortSignal | undefined;
  log?: ((line: string) => void) | undefined;
}

const STALL_MS = 1500;

/**
 * A worker of the key-value service (seed 002): it holds a replica of the whole map, answers the
 * requests the load balancer hands it, and replicates every write it accepts to every other
 * worker through a fanout exchange, each worker reading its own durable-for-its-lifetime queue.
 *
 * A write is acknowledged once the broker has confirmed its replication message (it is then in
 * every replica's queue, so no single worker's death loses it) and this worker has applied it.
 * A joining worker binds its queue first, then pulls a full export from a ready worker through
 * warren/transfer and serves only once it holds it (READY). Gossip spreads membership; periodic
 * anti-entropy repairs what the queues did not deliver; deletes are death certificates.
 *
 * The parts, each in its own file: the replication stream (replica-stream.ts), entry streams for
 * exports and repairs (entry-transfer.ts), anti-entropy rounds (anti-entropy.ts) and the reads
 * held back for read-your-writes (read-barriers.ts). The worker wires them together and decides
 * when each runs: joining, catching up, serving, stopping.
 */
export class Worker {
  readonly id: string;
  readonly store = new KvStore();
  state: MemberState = MemberState.Joining;
  readonly membership: Membership;
  /** Resolves with the reason once the worker has stopped. */
  readonly stopped: Promise<string>;

  private readonly o: Resolved<Omit<WorkerOptions, 'name' | 'log' | 'signal'>>;
  private readonly names: KvNames;
  private readonly log: (line: string) => void;
  private readonly clock = new HybridClock();
  private readonly marks: Watermarks;
  private readonly barriers: ReadBarriers;
  private readonly replicas: ReplicaStream;
  private readonly transfer: EntryTransfer;
  private readonly ae: AntiEntropy;
  private conn!: Connection;
  private ch!: Channel;
  private rpc!: RpcEndpoint;
  private server: ServiceServer | null = null;
  private lb!: ServiceClient<typeof LbService>;
  private peers!: ServiceClient<typeof WorkerService>;
  private seq = 0;
  private gossipTimer: NodeJS.Timeout | null = null;
  private aeTimer: NodeJS.Timeout | null = null;
  private repairTimer: NodeJS.Timeout | null = null;
  private lastTick = Date.now();
  private disconnectedAt = 0;
  private syncing: Promise<void> | null = null;
  private pendingWrites = 0;
  /** The load balancer that sent SHUTDOWN: it waits to hear that this worker left. */
  private shutdownBy: string | null = null;
  private stopping: Promise<void> | null = null;
  private resolveStopped!: (reason: string) => void;
  readonly served = { put: 0, get: 0, del: 0, behind: 0 };
  private counts = { exported: 0, imported: 0 };

  private constructor(o: WorkerOptions) {
    const base = (o.name ?? hostname().split('.')[0] ?? 'worker').replace(/[^A-Za-z0-9_-]/g, '');
    this.id = `${base || 'worker'}-${randomBytes(3).toString('hex')}`;
    this.o = {
      url: o.url,
      namespace: o.namespace ?? DEFAULT_NAMESPACE,
      gossipInterval: o.gossipInterval ?? 500,
      failTimeout: o.failTimeout ?? 3000,
      cleanupTimeout: o.cleanupTimeout ?? 30_000,
      antiEntropyInterval: o.antiEntropyInterval ?? 2000,
      tombstoneTtl: o.tombstoneTtl ?? 3_600_000,
      barrierWait: o.barrierWait ?? 300,
      replicaExpires: o.replicaExpires ?? 60_000,
      replicationDelay: o.replicationDelay ?? 0,
    };
    this.names = kvNames(this.o.namespace);
    this.log = o.log ?? (() => undefined);
    this.marks = new Watermarks((origin) => this.barriers.wake(origin));
    this.barriers = new ReadBarriers(this.marks);
    this.membership = new Membership(
      { id: this.id, role: 'worker', inbox: this.names.inbox(this.id), state: this.state },
      { failTimeout: this.o.failTimeout, cleanupTimeout: this.o.cleanupTimeout },
    );
    this.membership.on('change', (m, what) => this.onMemberChange(m, what));
    const isStopping = (): boolean => this.stopping !== null;
    this.replicas = new ReplicaStream({
      id: this.id,
      names: this.names,
      replicaExpires: this.o.replicaExpires,
      replicationDelay: this.o.replicationDelay,
      onUpdate: (u) => this.applyReplicated(u),
      onLost: async () => {
        if (this.state === MemberState.Ready) await this.resync('the replica queue was lost', 0);
      },
      isStopping,
      log: this.log,
    });
    this.transfer = new EntryTransfer(() => this.conn, this.store, this.clock, this.log);
    this.ae = new AntiEntropy({
      id: this.id,
      store: this.store,
      marks: this.marks,
      membership: this.membership,
      transfer: this.transfer,
      peers: () => this.peers,
      horizon: () => this.horizon(),
      retainUntil: () => this.retainUntil(),
      isStopping,
      log: this.log,
    });
    this.stopped = new Promise((resolve) => (this.resolveStopped = resolve));
  }

  /**
   * Connect, register with the load balancer, take an export, and serve. Aborting `o.signal`
   * meanwhile (Ctrl-C while it waits for a load balancer, say) stops it at once.
   */
  static async start(o: WorkerOptions): Promise<Worker> {
    const w = new Worker(o);
    const signal = o.signal;
    const why: { aborted: string | null } = { aborted: null };
    const abort = (): void => {
      const reason = signal?.reason as unknown;
      why.aborted = typeof reason === 'string' ? reason : 'start aborted';
      void w.stop(why.aborted);
    };
    if (signal?.aborted === true) abort();
    signal?.addEventListener('abort', abort, { once: true });
    // Once stop() is called, open() may still be at an await; it gives up at the next check, and
    // start() answers as soon as the stop has finished.
    const opening = w.open();
    opening.catch(() => undefined);
    try {
      await Promise.race([
        opening,
        w.stopped.then((reason) => Promise.reject(new WorkerStoppedError(reason))),
      ]);
    } catch (err) {
      await w.stop(`failed to start: ${(err as Error).message}`);
      // Whatever open() tripped over once the stop began, the cause is the stop.
      throw why.aborted !== null ? new WorkerStoppedError(why.aborted) : err;
    } finally {
      signal?.removeEventListener('abort', abort);
    }
    return w;
  }

  /** Throws once stop() was called: open() must not start anything after that. */
  private checkRunning(): void {
    if (this.stopping !== null) throw new WorkerStoppedError('stop() was called');
  }

  private async open(): Promise<void> {
    const n = this.names;
    const conn = await connect(this.o.url, { connectionName: `warren kv worker ${this.id}` });
    this.conn = conn;
    if (this.stopping !== null) {
      // stop() ran before there was a connection to close.
      await conn.close().catch(() => undefined);
      this.checkRunning();
    }
    this.log(`worker ${this.id} connected to ${this.conn.options.target}`);
    this.conn.on('disconnect', () => {
      this.disconnectedAt = Date.now();
      this.log('lost the broker connection; reconnecting');
    });
    this.conn.on('reconnected', () => {
      const away = Date.now() - this.disconnectedAt;
      this.log(`reconnected after ${away} ms`);
      if (this.state === MemberState.Ready || this.state === MemberState.NotReady) {
        void this.resync(`reconnected after ${away} ms`, away);
      }
    });
    this.ch = await this.conn.channel();
    this.ch.on('return', (r) => this.onReturn(r.routingKey));

    // The replica queue first: from here on every write anyone accepts reaches this worker.
    await this.replicas.open(this.conn);
    await this.ch.queueDeclare(n.inbox(this.id), { exclusive: true });
    // A load balancer that starts (perhaps replacing one that crashed) says so to every inbox.
    await this.ch.exchangeDeclare(n.announce, 'fanout');
    await this.ch.queueBind(n.inbox(this.id), n.announce);
    await this.ch.consume(n.inbox(this.id), (m) => this.onInbox(m), { noAck: true });
    this.checkRunning();

    this.rpc = await rpcEndpoint(this.conn, { namespace: n.rpc, clientId: this.id });
    this.server = await this.rpc.serve(WorkerService, this.serviceImpl(), {
      instanceId: this.id,
      lease: 6000,
    });
    this.checkRunning();
    this.lb = await this.bindLb();
    this.peers = await this.rpc.bind(WorkerService, { locateTimeout: 5000 });
    this.checkRunning();

    this.gossipTimer = setInterval(() => this.onGossipTick(), this.o.gossipInterval);
    this.scheduleAntiEntropy();
    await this.join();
    this.checkRunning();
  }

  private async bindLb(): Promise<ServiceClient<typeof LbService>> {
    // Bounded by stop(): a worker started before its load balancer waits for it.
    for (let attempt = 0; ; attempt++) {
      this.checkRunning();
      try {
        return await this.rpc.bind(LbService, { locateTimeout: 5000 });
      } catch (err) {
        this.checkRunning();
        if (attempt === 0) this.log('waiting for the load balancer to come up');
        if (!isRpcError(err) || err.reason !== Reason.CannotLocateServer) await sleep(200);
      }
    }
  }

  /** Register, take a full export from the worker the load balancer names, and go READY. */
  private async join(): Promise<void> {
    // Bounded: each failed export names another exporter or the worker stops.
    for (let attempt = 1; this.stopping === null; attempt++) {
      const reg = await this.lb.register({ id: this.id, inbox: this.names.inbox(this.id) });
      for (const w of reg.workers) {
        this.membership.learn({
          id: w.id,
          role: 'worker',
          inbox: w.inbox,
          hb: w.hb,
          state: w.state,
        });
      }
      const exporter = reg.workers.find((w) => w.export);
      this.log(
        `registered with the load balancer: ${reg.workers.length} other worker(s)` +
          (exporter !== undefined ? `, export from ${exporter.id}` : ', nothing to export'),
      );
      if (exporter === undefined) break;
      try {
        await this.importFrom(exporter.id);
        break;
      } catch (err) {
        this.log(
          `export from ${exporter.id} failed (attempt ${attempt}): ${(err as Error).message}`,
        );
        if (attempt >= 10) throw err;
        await sleep(Math.min(5000, 200 * attempt));
      }
    }
    await this.ae.closeGaps();
    await this.becomeReady('in sync');
  }

  /** Pull a full export from `exporter` and merge it. */
  private async importFrom(exporter: string): Promise<void> {
    const started = Date.now();
    const r = await located(() =>
      this.peers.export({ to: this.id }, { instance: exporter, retry: false }),
    );
    this.log(`export from ${exporter}: ${r.entries} entries`);
    const n = await this.transfer.pull(r.offer, 0, (count, bytes) =>
      this.log(`export from ${exporter}: ${count} entries (${mb(bytes)}) received`),
    );
    this.ae.absorbMarks(r.watermarks);
    this.counts.imported += n.count;
    this.log(
      `export from ${exporter} complete: ${n.count} entries, ${mb(n.bytes)} in ${Date.now() - started} ms`,
    );
  }

  /** Offer everything this replica holds to the joining worker `to`. */
  private async exportTo(to: string) {
    this.log(`exporting to ${to}: ${this.store.entryCount} entries`);
    // Everything routed to this replica before the joiner's queue existed is applied first,
    // so the export and the joiner's queue together miss nothing.
    await this.replicas
      .drain()
      .catch((err: unknown) => this.log(`export to ${to}: ${(err as Error).message}`));
    const watermarks = this.marks.snapshot();
    const entries = this.store.entryCount;
    const offer = await this.transfer.offer(entries, this.store.updates());
    this.counts.exported += entries;
    return { offer, entries, watermarks };
  }

  // ---------------------------------------------------------------- readiness

  private async becomeReady(why: string): Promise<void> {
    if (this.stopping !== null) return;
    this.state = MemberState.Ready;
    this.membership.setState(MemberState.Ready);
    const known = await this.lb.setState({
      id: this.id,
      state: 'ready',
      hb: this.membership.self.hb,
    });
    this.log(`ready (${why}): ${this.store.size} keys`);
    // A load balancer that does not know this worker replaced the one it registered with.
    if (!known) await this.registerAgain();
  }

  /**
   * Tell a load balancer that replaced the one this worker registered with who it is (a few
   * tries; failing that, the worker's gossip reaches it anyway, a little later).
   */
  private async registerAgain(): Promise<void> {
    for (let attempt = 1; attempt <= 5; attempt++) {
      const state = this.state;
      if (this.stopping !== null) return;
      if (state !== MemberState.Ready && state !== MemberState.NotReady) return;
      try {
        await this.lb.register({
          id: this.id,
          inbox: this.names.inbox(this.id),
          state,
          hb: this.membership.self.hb,
        });
        this.log(`registered with the load balancer again (${state})`);
        return;
      } catch (err) {
        this.log(`registering again failed (attempt ${attempt}): ${(err as Error).message}`);
        await sleep(500 * attempt);
      }
    }
  }

  /** A load balancer started: if this worker was serving, it registers with it. */
  private onHello(inbox: string, hb: number): void {
    this.membership.learn({ id: 'lb', role: 'lb', inbox, hb, state: MemberState.Ready });
    // A worker still joining registers as part of joining.
    if (this.state === MemberState.Ready || this.state === MemberState.NotReady) {
      this.log('a load balancer started');
      void this.registerAgain();
    }
  }

  private notReady(why: string): void {
    if (this.state !== MemberState.Ready) return;
    this.state = MemberState.NotReady;
    this.membership.setState(MemberState.NotReady);
    this.log(`not ready: ${why}`);
    this.lb.setState({ id: this.id, state: 'not-ready', hb: this.membership.self.hb }).then(
      (known) => (known ? undefined : this.registerAgain()),
      () => undefined,
    );
  }

  /**
   * Catch up after a pause or a lost connection: out of service, drain the replica queue, one
   * anti-entropy round, back in. Away longer than half the death-certificate retention, the
   * replica may hold keys whose deletion it can no longer learn: it starts over from an export.
   */
  private resync(why: string, awayMs: number): Promise<void> {
    if (this.syncing !== null || this.stopping !== null) return this.syncing ?? Promise.resolve();
    this.notReady(why);
    this.syncing = (async () => {
      try {
        if (awayMs > this.o.tombstoneTtl / 2) {
          this.log('away longer than half the death-certificate retention: starting over');
          this.store.clear();
          this.marks.clear();
          this.state = MemberState.Joining;
          this.membership.setState(MemberState.Joining);
          await this.join();
          return;
        }
        await this.replicas.drain();
        const peer = this.ae.pickPeer();
        if (peer !== undefined) await this.ae.round(peer);
        await this.ae.closeGaps();
        await this.becomeReady('caught up');
      } catch (err) {
        this.log(`catching up failed: ${(err as Error).message}; retrying`);
        this.syncing = null;
        if (this.stopping === null) setTimeout(() => void this.resync(why, 0), 1000).unref();
        return;
      }
      this.syncing = null;
    })();
    return this.syncing;
  }

  // ---------------------------------------------------------------- requests

  private onInbox(m: Message): void {
    const body = m.body;
    try {
      switch (body[0]) {
        case WireType.StoreRequest:
        case WireType.RetrieveRequest:
        case WireType.RemoveRequest: {
          let r: WorkerRequest;
          try {
            r = decodeWorkerRequest(body);
          } catch (err) {
            this.refuse(body, m.properties.replyTo, err as Error);
            return;
          }
          this.onRequest(r, m.properties.replyTo);
          return;
        }
        case WireType.Gossip:
          this.membership.merge(decodeGossip(body));
          return;
        case WireType.Hello: {
          const h = decodeHello(body);
          this.onHello(h.inbox, h.hb);
          return;
        }
        case WireType.Shutdown:
          this.log('the load balancer is shutting down (MSG_SHUTDOWN)');
          this.shutdownBy = m.properties.replyTo ?? null;
          void this.stop('the load balancer shut down');
          return;
        default:
          this.log(`ignored a message of type ${body[0]} in the inbox`);
      }
    } catch (err) {
      this.log(`ignored a malformed message: ${(err as Error).message}`);
    }
  }

  /**
   * A request that does not decode (a bug, or a barrier from a newer load balancer): answered
   * ERROR when it says where to, so the load balancer does not wait for it until it times out.
   */
  private refuse(body: Buffer, replyTo: string | undefined, err: Error): void {
    const head = peekWorkerRequest(body);
    this.log(`refused a request that does not decode: ${err.message}`);
    if (head === null || replyTo === undefined) return;
    const response = encodeWorkerResponse({
      type: RESPONSE_TYPE[head.type],
      result: WorkerResult.Error,
      id: head.id,
      key: head.key,
      value: EMPTY,
      stamp: null,
    });
    this.ch.publish('', replyTo, response).catch(() => undefined);
  }

  private onRequest(r: WorkerRequest, replyTo: string | undefined): void {
    if (replyTo === undefined) return;
    // Past its deadline the load balancer has handed the request to another worker: acting on
    // it now could let an old write overwrite a newer one. Checked on arrival only: a write
    // accepted in time whose replication the broker confirms late still applies (its version is
    // older than anything the retry wrote, unless the clocks of the two hosts disagree).
    if (Date.now() > r.deadline) return;
    if (this.state !== MemberState.Ready || this.stopping !== null) {
      this.served.behind++;
      this.reply(replyTo, r, WorkerResult.Behind, null, null);
      return;
    }
    if (r.type === WireType.StoreRequest) {
      this.write(r, replyTo, Buffer.from(r.value));
      return;
    }
    if (this.barriers.covered(r.after)) {
      this.answer(r, replyTo);
      return;
    }
    this.park(r, replyTo);
  }

  /** Accept a write (a value, or null for a delete): replicate, then apply and answer. */
  private write(r: WorkerRequest, replyTo: string, value: Buffer | null): void {
    this.clock.observe(r.clock);
    const key = keyString(r.key);
    const existed = value === null ? (this.store.get(key)?.value ?? null) !== null : true;
    const stamp: Stamp = { hlc: this.clock.now(), origin: this.id, seq: ++this.seq };
    const body = encodePeerNotify({ key: r.key, value, stamp });
    this.pendingWrites++;
    // Applied only once the broker holds it for every replica: a read here never sees a write
    // that a crash could still lose.
    void this.replicas.publish(body).then(
      () => {
        this.pendingWrites--;
        this.store.merge(key, value, stamp);
        this.marks.record(this.id, stamp.seq);
        if (value === null) this.served.del++;
        else this.served.put++;
        this.reply(replyTo, r, existed ? WorkerResult.Ok : WorkerResult.NotFound, null, stamp);
      },
      (err: unknown) => {
        this.pendingWrites--;
        this.log(`write of seq ${stamp.seq} not replicated: ${(err as Error).message}`);
      },
    );
  }

  /** Answer a read or accept a delete, the session's barrier being met. */
  private answer(r: WorkerRequest, replyTo: string): void {
    if (r.type === WireType.RemoveRequest) {
      this.write(r, replyTo, null);
      return;
    }
    const e = this.store.get(keyString(r.key));
    this.served.get++;
    if (e === undefined) {
      this.reply(replyTo, r, WorkerResult.NotFound, null, null);
    } else if (e.value === null) {
      this.reply(replyTo, r, WorkerResult.NotFound, null, stampOf(e));
    } else {
      this.reply(replyTo, r, WorkerResult.Ok, e.value, stampOf(e));
    }
  }

  /** Wait (briefly) for the session's writes to reach this replica, else answer BEHIND. */
  private park(r: WorkerRequest, replyTo: string): void {
    const wait = Math.max(0, Math.min(this.o.barrierWait, r.deadline - Date.now()));
    this.barriers.park(
      r.after,
      wait,
      () => {
        if (this.state === MemberState.Ready) this.answer(r, replyTo);
        else this.reply(replyTo, r, WorkerResult.Behind, null, null);
      },
      () => {
        this.served.behind++;
        this.reply(replyTo, r, WorkerResult.Behind, null, null);
        this.scheduleRepair();
      },
    );
  }

  private reply(
    replyTo: string,
    r: WorkerRequest,
    result: WorkerResult,
    value: Buffer | null,
    stamp: Stamp | null,
  ): void {
    const body = encodeWorkerResponse({
      type: RESPONSE_TYPE[r.type],
      result,
      id: r.id,
      key: r.key,
      value: value ?? EMPTY,
      stamp,
    });
    this.ch.publish('', replyTo, body).catch(() => undefined);
  }

  // ---------------------------------------------------------------- replication

  /** A write from the replica queue. */
  private applyReplicated(u: Update): void {
    // This worker's own writes were applied when the broker confirmed them.
    if (u.stamp.origin === this.id) return;
    this.clock.observe(u.stamp.hlc);
    const value = u.value === null ? null : Buffer.from(u.value);
    this.store.merge(keyString(u.key), value, u.stamp, this.horizon());
    if (this.marks.record(u.stamp.origin, u.stamp.seq)) this.scheduleRepair();
  }

  /** Death certificates older than this timestamp are collected; older writes are suspect. */
  private horizon(): number {
    return (Date.now() - this.o.tombstoneTtl) * TICKS_PER_MS;
  }

  // ---------------------------------------------------------------- upkeep

  /**
   * Every `antiEntropyInterval` (jittered): collect expired death certificates, retire departed
   * workers' watermarks, and, when ready, run an anti-entropy round with a random ready peer.
   */
  private scheduleAntiEntropy(): void {
    const jitter = this.o.antiEntropyInterval * (0.75 + Math.random() / 2);
    this.aeTimer = setTimeout(() => {
      this.aeTimer = null;
      this.store.collect(this.horizon());
      this.retireDeparted();
      const peer = this.state === MemberState.Ready ? this.ae.pickPeer() : undefined;
      const run =
        peer !== undefined
          ? this.ae
              .round(peer)
              .catch((err: unknown) =>
                this.log(`anti-entropy with ${peer} failed: ${(err as Error).message}`),
              )
          : Promise.resolve();
      void run.then(() => {
        if (this.stopping === null) this.scheduleAntiEntropy();
      });
    }, jitter);
  }

  /** A gap appeared: repair it soon unless the missing writes show up meanwhile. */
  private scheduleRepair(): void {
    if (this.repairTimer !== null || this.state !== MemberState.Ready) return;
    this.repairTimer = setTimeout(() => {
      this.repairTimer = null;
      if (this.state === MemberState.Ready && this.syncing === null) void this.ae.closeGaps();
    }, 500);
  }

  /**
   * Workers no longer members keep only a retired watermark (see Watermarks), and their ids are
   * no longer interned; retired watermarks are forgotten once even a session that saw their
   * writes long ago has no use for them.
   */
  /** Until when a departed worker's watermark is kept, counted from now. */
  private retainUntil(): number {
    return Date.now() + Math.max(this.o.tombstoneTtl, 2 * this.o.cleanupTimeout);
  }

  private retireDeparted(): void {
    this.marks.expire(Date.now());
    const until = this.retainUntil();
    for (const origin of this.marks.active()) {
      if (origin === this.id || this.membership.get(origin) !== undefined) continue;
      if (this.marks.retire(origin, until)) this.store.forgetOrigin(origin);
    }
  }

  // ---------------------------------------------------------------- RPC service

  /** WorkerService: the export, anti-entropy's peer side, and status. */
  private serviceImpl() {
    return {
      export: ({ to }: { to: string }) => this.exportTo(to),
      digest: () => ({ ...this.ae.digest(), state: this.state }),
      reconcile: (req: { buckets: number[]; summary: Uint8Array }) => this.ae.reconcile(req),
      push: (req: { offer: unknown }) => this.ae.push(req),
      status: ({ keys }: { keys?: Uint8Array[] | undefined }) => ({
        id: this.id,
        state: this.state,
        live: this.store.size,
        dead: this.store.deadCount,
        bytes: this.store.bytes,
        digest: createHash('sha256').update(this.store.digest()).digest('hex'),
        served: { ...this.served },
        repaired: this.ae.repaired,
        exported: this.counts.exported,
        imported: this.counts.imported,
        members: [...this.membership.all()].map(
          (m) => [m.id, m.state, m.alive] as [string, string, boolean],
        ),
        lookups: (keys ?? []).map((k) => {
          const e = this.store.get(keyString(k));
          return e === undefined
            ? null
            : { value: e.value, hlc: e.hlc, origin: e.origin, seq: e.seq };
        }),
      }),
    };
  }

  // ---------------------------------------------------------------- gossip

  private onGossipTick(): void {
    const now = Date.now();
    const stalled = now - this.lastTick;
    this.lastTick = now;
    // A timer this late means the process was stopped (SIGSTOP) or starved: whatever the
    // replica missed meanwhile is caught up before it serves again.
    if (stalled > Math.max(STALL_MS, this.o.gossipInterval * 3)) {
      this.membership.pardon();
      if (this.state === MemberState.Ready) void this.resync(`stalled for ${stalled} ms`, stalled);
    }
    this.membership.tick();
    const body = encodeGossip(this.membership.table());
    for (const m of this.membership.pick(2)) {
      this.ch.publish('', m.inbox, body, { mandatory: true }).catch(() => undefined);
    }
  }

  private onReturn(queue: string): void {
    for (const m of this.membership.all()) {
      if (m.inbox === queue && m !== this.membership.self) {
        this.membership.drop(m.id);
        return;
      }
    }
  }

  private onMemberChange(m: Member, what: string): void {
    if (m.role !== 'worker') return;
    if (what === 'joined') this.log(`peer ${m.id} joined (${m.state})`);
    else if (what === 'state') this.log(`peer ${m.id} is ${m.state}`);
    else this.log(`peer ${m.id} ${what}`);
  }

  // ---------------------------------------------------------------- stopping

  /**
   * Leave: unregister, answer what is in flight, stop gossip and anti-entropy, delete the replica
   * queue (the data lives on in the other replicas) and disconnect.
   */
  stop(reason: string): Promise<void> {
    this.stopping ??= this.stopNow(reason);
    return this.stopping;
  }

  private async stopNow(reason: string): Promise<void> {
    this.log(`worker ${this.id} shutting down: ${reason}`);
    const wasServing = this.state !== MemberState.Joining;
    this.state = MemberState.Left;
    this.membership.setState(MemberState.Left);
    if (this.gossipTimer !== null) clearInterval(this.gossipTimer);
    if (this.aeTimer !== null) clearTimeout(this.aeTimer);
    if (this.repairTimer !== null) clearTimeout(this.repairTimer);
    this.barriers.clear();
    this.replicas.stop(reason);
    // Each step is bounded: a broker that went away first must not keep the worker from exiting.
    if (this.conn?.isOpen === true) {
      if (wasServing && this.shutdownBy === null) {
        await bounded(this.lb?.leave({ id: this.id }, { timeout: 3000, retry: false }));
      }
      const until = Date.now() + 5000;
      // Bounded by the deadline: writes in flight get their confirms and answers.
      while (this.pendingWrites > 0 && Date.now() < until) await sleep(20);
      this.replicas.flushAcks();
      await bounded(this.server?.close());
      await bounded(this.rpc?.close());
      await bounded(this.transfer.close());
      await bounded(this.replicas.deleteQueue());
      // The last word: peers (and a load balancer waiting for its workers to stop) learn at once
      // that this worker left, rather than when its heartbeat times out.
      const body = encodeGossip(this.membership.table());
      const inboxes = this.membership.pick(3).map((m) => m.inbox);
      if (this.shutdownBy !== null && !inboxes.includes(this.shutdownBy)) {
        inboxes.push(this.shutdownBy);
      }
      for (const inbox of inboxes) await bounded(this.ch.publish('', inbox, body));
    }
    await bounded(this.conn?.close({ timeout: 2000 }));
    this.log(`worker ${this.id} stopped`);
    this.resolveStopped(reason);
  }
}

const EMPTY = Buffer.alloc(0);

/** Options with every field set. */
type Resolved<T> = { [K in keyof T]-?: Exclude<T[K], undefined> };

function stampOf(e: Stamp): Stamp {
  return { hlc: e.hlc, origin: e.origin, seq: e.seq };
}

function mb(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
