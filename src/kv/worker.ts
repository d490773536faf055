import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { connect } from '../client/index.js';
import type { Channel, Connection, Message } from '../client/index.js';
import { Reason, isRpcError, rpcEndpoint } from '../rpc/index.js';
import type { RpcEndpoint, ServiceClient, ServiceServer } from '../rpc/index.js';
import { offerFromJson, transferEndpoint } from '../transfer/index.js';
import type { TransferEndpoint, TransferOffer } from '../transfer/index.js';
import { Deque } from '../util/deque.js';
import { DEFAULT_NAMESPACE, LbService, WorkerService, kvNames } from './contracts.js';
import type { KvNames } from './contracts.js';
import { HybridClock, TICKS_PER_MS } from './hlc.js';
import { MemberState, Membership } from './membership.js';
import type { Member } from './membership.js';
import {
  EntryStreamDecoder,
  RESPONSE_TYPE,
  WireType,
  WorkerResult,
  decodeGossip,
  decodeHello,
  decodeMarker,
  decodePeerNotify,
  decodeWorkerRequest,
  encodeGossip,
  encodeMarker,
  encodePeerNotify,
  encodeWorkerResponse,
  entryStream,
  peekWorkerRequest,
} from './messages.js';
import type { Stamp, Update, WorkerRequest } from './messages.js';
import { KvStore, keyBytes, keyString } from './store.js';
import { Watermarks } from './watermarks.js';

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

/** The worker was stopped (its start aborted, or stop() called) before it was up. */
export class WorkerStoppedError extends Error {
  readonly code = 'WARREN_ERR_KV_STOPPED';
  constructor(reason: string) {
    super(`the worker stopped before it was up: ${reason}`);
    this.name = 'WorkerStoppedError';
  }
}

/** A read waiting for its session's writes to reach this replica. */
interface Waiter {
  readonly after: WorkerRequest['after'];
  readonly run: () => void;
  readonly timer: NodeJS.Timeout;
}

/** A marker sent through the replica queue, waiting to come back. */
interface PendingMarker {
  readonly done: () => void;
  readonly fail: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

const ACK_BATCH = 32;
const AE_BATCH = 256;
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
  private conn!: Connection;
  private ch!: Channel;
  private repOut!: Channel;
  private repIn!: Channel;
  private rpc!: RpcEndpoint;
  private server: ServiceServer | null = null;
  private lb!: ServiceClient<typeof LbService>;
  private peers!: ServiceClient<typeof WorkerService>;
  private transfers: Promise<TransferEndpoint> | null = null;
  private seq = 0;
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly markers = new Map<string, PendingMarker>();
  private unacked: Message | null = null;
  private unackedCount = 0;
  private ackTimer: NodeJS.Timeout | null = null;
  private readonly delayed = new Deque<{ at: number; m: Message }>(16);
  private delayTimer: NodeJS.Timeout | null = null;
  private gossipTimer: NodeJS.Timeout | null = null;
  private aeTimer: NodeJS.Timeout | null = null;
  private repairTimer: NodeJS.Timeout | null = null;
  private lastTick = Date.now();
  private lastContact = Date.now();
  private disconnectedAt = 0;
  private syncing: Promise<void> | null = null;
  /** Anti-entropy rounds run one after the other; this settles when the last one queued does. */
  private aeQueue: Promise<void> = Promise.resolve();
  private pendingWrites = 0;
  /** The load balancer that sent SHUTDOWN: it waits to hear that this worker left. */
  private shutdownBy: string | null = null;
  private stopping: Promise<void> | null = null;
  private resolveStopped!: (reason: string) => void;
  readonly served = { put: 0, get: 0, del: 0, behind: 0 };
  private counts = { repaired: 0, exported: 0, imported: 0 };

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
    this.marks = new Watermarks((origin) => this.wake(origin));
    this.membership = new Membership(
      { id: this.id, role: 'worker', inbox: this.names.inbox(this.id), state: this.state },
      { failTimeout: this.o.failTimeout, cleanupTimeout: this.o.cleanupTimeout },
    );
    this.membership.on('change', (m, what) => this.onMemberChange(m, what));
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
    this.repOut = await this.conn.channel({ confirm: { window: 4096, unconfirmed: 'retry' } });
    this.repIn = await this.conn.channel({ prefetch: 256 });

    // The replica queue first: from here on every write anyone accepts reaches this worker.
    await this.repOut.exchangeDeclare(n.replicate, 'fanout');
    await this.consumeReplicas();
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

  private async consumeReplicas(): Promise<void> {
    const q = this.names.replica(this.id);
    if (!this.repIn.isOpen) this.repIn = await this.conn.channel({ prefetch: 256 });
    await this.repIn.queueDeclare(q, { expires: this.o.replicaExpires });
    await this.repIn.queueBind(q, this.names.replicate);
    const consumer = await this.repIn.consume(q, (m) => this.onReplica(m));
    void consumer.closed.then((err) => {
      if (err !== null && this.stopping === null) void this.replicaQueueLost(err);
    });
  }

  /**
   * The broker cancelled the replica consumer (someone deleted the queue) or closed its channel:
   * whatever was in the queue is lost. Subscribe again, and catch up from a peer.
   */
  private async replicaQueueLost(err: Error): Promise<void> {
    this.log(`lost the replica queue (${err.message}); subscribing again`);
    this.unacked = null;
    this.unackedCount = 0;
    // Bounded by stop(): the broker may be briefly unreachable.
    for (let attempt = 1; this.stopping === null; attempt++) {
      try {
        await this.consumeReplicas();
        break;
      } catch (e) {
        this.log(`subscribing to the replica queue failed: ${(e as Error).message}`);
        await sleep(Math.min(5000, 200 * attempt));
      }
    }
    if (this.state === MemberState.Ready) await this.resync('the replica queue was lost', 0);
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
    await this.closeGaps();
    await this.becomeReady('in sync');
  }

  /** Pull a full export from `exporter` and merge it. */
  private async importFrom(exporter: string): Promise<void> {
    const started = Date.now();
    const r = await located(() =>
      this.peers.export({ to: this.id }, { instance: exporter, retry: false }),
    );
    this.log(`export from ${exporter}: ${r.entries} entries`);
    const n = await this.pullEntries(r.offer, 0, (count, bytes) =>
      this.log(`export from ${exporter}: ${count} entries (${mb(bytes)}) received`),
    );
    this.absorbMarks(r.watermarks);
    this.counts.imported += n.count;
    this.log(
      `export from ${exporter} complete: ${n.count} entries, ${mb(n.bytes)} in ${Date.now() - started} ms`,
    );
  }

  /** Receive an entry stream and merge each entry (with `horizon`, see KvStore.merge). */
  private async pullEntries(
    offer: unknown,
    horizon: number,
    progress?: (count: number, bytes: number) => void,
  ): Promise<{ count: number; applied: number; bytes: number }> {
    const ep = await this.transferEndpoint();
    const inc = ep.receive(offerFromJson(offer));
    const dec = new EntryStreamDecoder();
    let applied = 0;
    let bytes = 0;
    let lastReport = Date.now();
    for await (const chunk of inc) {
      bytes += chunk.length;
      dec.push(chunk, (u) => {
        this.clock.observe(u.stamp.hlc);
        if (this.store.merge(keyString(u.key), u.value, u.stamp, horizon)) applied++;
      });
      if (progress !== undefined && Date.now() - lastReport > 1000) {
        lastReport = Date.now();
        progress(dec.entries, bytes);
      }
    }
    dec.finish();
    this.lastContact = Date.now();
    return { count: dec.entries, applied, bytes };
  }

  private transferEndpoint(): Promise<TransferEndpoint> {
    this.transfers ??= transferEndpoint(this.conn, {
      chunkSize: 256 * 1024,
      window: 32,
      senderWindow: 32,
      acceptTimeout: 60_000,
    });
    return this.transfers;
  }

  /** Offer entries as a stream for a peer to pull; resolves with the offer to hand over. */
  private async offerEntries(total: number, entries: Iterable<Update>): Promise<TransferOffer> {
    const ep = await this.transferEndpoint();
    const out = await ep.offer(entryStream(total, entries), { acceptTimeout: 60_000 });
    out.done.catch((err: unknown) =>
      this.log(`an entry stream was not delivered: ${(err as Error).message}`),
    );
    return out.offer;
  }

  // ---------------------------------------------------------------- readiness

  private async becomeReady(why: string): Promise<void> {
    if (this.stopping !== null) return;
    this.state = MemberState.Ready;
    this.membership.setState(MemberState.Ready);
    this.lastContact = Date.now();
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
        await this.drainReplicaQueue();
        const peer = this.pickPeer();
        if (peer !== undefined) await this.antiEntropy(peer);
        await this.closeGaps();
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

  /** Anti-entropy until no origin has a gap (bounded attempts; reads wait on barriers anyway). */
  private async closeGaps(): Promise<void> {
    for (let i = 0; i < 5 && this.stopping === null; i++) {
      const gaps = this.marks.gaps();
      if (gaps.length === 0) return;
      const peer = this.pickPeer(gaps);
      if (peer === undefined) return;
      await this.antiEntropy(peer).catch((err: unknown) =>
        this.log(`anti-entropy with ${peer} failed: ${(err as Error).message}`),
      );
    }
  }

  /** Wait until the replica queue has delivered everything published to it before now. */
  private drainReplicaQueue(timeout = 30_000): Promise<void> {
    if (this.stopping !== null) return Promise.reject(new WorkerStoppedError('stopping'));
    const token = randomBytes(8).toString('hex');
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.markers.delete(token);
        reject(new Error(`the replica queue did not drain within ${timeout} ms`));
      }, timeout);
      // stop() fails it at once; the timer alone must not keep the process up.
      timer.unref();
      this.markers.set(token, {
        done: () => {
          clearTimeout(timer);
          resolve();
        },
        fail: (err) => {
          clearTimeout(timer);
          reject(err);
        },
        timer,
      });
      this.repOut
        .publish('', this.names.replica(this.id), encodeMarker(token))
        .catch((err: Error) => {
          this.markers.get(token)?.fail(err);
          this.markers.delete(token);
        });
    });
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
    if (this.covered(r.after)) {
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
    void this.replicate(body).then(
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

  /** Publish a replication message until the broker confirms it (or the worker stops). */
  private async replicate(body: Buffer): Promise<void> {
    // Bounded by stop(): a publish the broker refused is tried again, so no write number is
    // skipped for good (peers would see a gap).
    for (let attempt = 0; ; attempt++) {
      try {
        await this.repOut.publish(this.names.replicate, '', body);
        return;
      } catch (err) {
        if (this.stopping !== null) throw err;
        if (attempt === 0)
          this.log(`replication publish failed, retrying: ${(err as Error).message}`);
        await sleep(100);
        if (!this.repOut.isOpen) {
          this.repOut = await this.conn.channel({
            confirm: { window: 4096, unconfirmed: 'retry' },
          });
        }
      }
    }
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

  private covered(after: WorkerRequest['after']): boolean {
    for (const [origin, seq] of after) if (!this.marks.covers(origin, seq)) return false;
    return true;
  }

  /** Wait (briefly) for the session's writes to reach this replica, else answer BEHIND. */
  private park(r: WorkerRequest, replyTo: string): void {
    const wait = Math.max(0, Math.min(this.o.barrierWait, r.deadline - Date.now()));
    const waiter: Waiter = {
      after: r.after,
      run: () => {
        clearTimeout(waiter.timer);
        this.unpark(waiter);
        if (this.state === MemberState.Ready) this.answer(r, replyTo);
        else this.reply(replyTo, r, WorkerResult.Behind, null, null);
      },
      timer: setTimeout(() => {
        this.unpark(waiter);
        this.served.behind++;
        this.reply(replyTo, r, WorkerResult.Behind, null, null);
        this.scheduleRepair();
      }, wait),
    };
    for (const [origin, seq] of r.after) {
      if (this.marks.covers(origin, seq)) continue;
      let set = this.waiters.get(origin);
      if (set === undefined) {
        set = new Set();
        this.waiters.set(origin, set);
      }
      set.add(waiter);
    }
  }

  private unpark(w: Waiter): void {
    for (const [origin] of w.after) {
      const set = this.waiters.get(origin);
      if (set === undefined) continue;
      set.delete(w);
      if (set.size === 0) this.waiters.delete(origin);
    }
  }

  /** An origin's mark advanced: run the reads it was holding back. */
  private wake(origin: string): void {
    const set = this.waiters.get(origin);
    if (set === undefined) return;
    for (const w of [...set]) if (this.covered(w.after)) w.run();
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

  private onReplica(m: Message): void {
    // Markers too wait their turn behind delayed writes, or a drain would overtake them.
    if (
      this.o.replicationDelay > 0 &&
      (m.body[0] === WireType.PeerNotify || this.delayed.length > 0)
    ) {
      this.delayed.push({ at: Date.now() + this.o.replicationDelay, m });
      this.delayTimer ??= setTimeout(() => this.releaseDelayed(), this.o.replicationDelay);
      return;
    }
    this.applyReplica(m);
  }

  /** Apply the delayed writes whose time has come (a ring buffer: bounded by the prefetch). */
  private releaseDelayed(): void {
    this.delayTimer = null;
    const now = Date.now();
    const q = this.delayed;
    // Bounded by the queue's length: each pass applies one message.
    while (q.length > 0 && q.peek()!.at <= now) this.applyReplica(q.shift()!.m);
    if (q.length > 0) {
      const next = q.peek()!.at - now;
      this.delayTimer = setTimeout(() => this.releaseDelayed(), Math.max(1, next));
    }
  }

  private applyReplica(m: Message): void {
    const body = m.body;
    try {
      if (body[0] === WireType.Marker) {
        const token = decodeMarker(body);
        const marker = this.markers.get(token);
        this.markers.delete(token);
        marker?.done();
      } else if (body[0] === WireType.PeerNotify) {
        const u = decodePeerNotify(body);
        this.lastContact = Date.now();
        // This worker's own writes were applied when the broker confirmed them.
        if (u.stamp.origin !== this.id) {
          this.clock.observe(u.stamp.hlc);
          const value = u.value === null ? null : Buffer.from(u.value);
          this.store.merge(keyString(u.key), value, u.stamp, this.horizon());
          if (this.marks.record(u.stamp.origin, u.stamp.seq)) this.scheduleRepair();
        }
      }
    } catch (err) {
      this.log(`ignored a malformed replication message: ${(err as Error).message}`);
    }
    this.ackLater(m);
  }

  private ackLater(m: Message): void {
    this.unacked = m;
    if (++this.unackedCount >= ACK_BATCH) this.flushAcks();
    else this.ackTimer ??= setTimeout(this.flushAcks, 5);
  }

  private readonly flushAcks = (): void => {
    if (this.ackTimer !== null) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    const m = this.unacked;
    this.unacked = null;
    this.unackedCount = 0;
    try {
      m?.ack(true);
    } catch {
      // The channel went away; the broker redelivers.
    }
  };

  /** Death certificates older than this timestamp are collected; older writes are suspect. */
  private horizon(): number {
    return (Date.now() - this.o.tombstoneTtl) * TICKS_PER_MS;
  }

  // ---------------------------------------------------------------- anti-entropy

  private scheduleAntiEntropy(): void {
    const jitter = this.o.antiEntropyInterval * (0.75 + Math.random() / 2);
    this.aeTimer = setTimeout(() => {
      this.aeTimer = null;
      this.store.collect(this.horizon());
      this.retireDeparted();
      const peer = this.state === MemberState.Ready ? this.pickPeer() : undefined;
      const run =
        peer !== undefined
          ? this.antiEntropy(peer).catch((err: unknown) =>
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
      if (this.state === MemberState.Ready && this.syncing === null) void this.closeGaps();
    }, 500);
  }

  /** A random ready peer, preferring one of `origins` (who holds its own writes in full). */
  private pickPeer(origins: string[] = []): string | undefined {
    const ready = (m: Member): boolean => m.role === 'worker' && m.state === MemberState.Ready;
    for (const o of origins) {
      const m = this.membership.get(o);
      if (m !== undefined && m.alive && ready(m)) return o;
    }
    return this.membership.pick(1, ready)[0]?.id;
  }

  /**
   * Take over how far a peer held each stream (after receiving all it held). Streams of workers
   * this one never knew, or has forgotten, are left out: they left (a joining worker learns every
   * live one when it registers), and bringing them back would keep their ids alive for ever.
   */
  private absorbMarks(marks: readonly (readonly [string, number])[]): void {
    for (const [origin, seq] of marks) {
      if (
        origin === this.id ||
        this.marks.tracks(origin) ||
        this.membership.get(origin) !== undefined
      ) {
        this.marks.absorb(origin, seq);
      }
    }
  }

  /**
   * Workers no longer members keep only a retired watermark (see Watermarks), and their ids are
   * no longer interned; retired watermarks are forgotten once even a session that saw their
   * writes long ago has no use for them.
   */
  private retireDeparted(): void {
    const now = Date.now();
    this.marks.expire(now);
    const until = now + Math.max(this.o.tombstoneTtl, 2 * this.o.cleanupTimeout);
    for (const origin of this.marks.active()) {
      if (origin === this.id || this.membership.get(origin) !== undefined) continue;
      if (this.marks.retire(origin, until)) this.store.forgetOrigin(origin);
    }
  }

  /**
   * One push-pull anti-entropy round with `peer` (seed 003), after any round already running:
   * compare bucket digests, then for the buckets that differ exchange versions and send each
   * side the entries it lacks. Afterwards this replica holds everything the peer held when it
   * sent its digest, so it also holds every stream as far as the peer did. Callers that need
   * that (catching up, closing gaps) so always get a round of their own.
   */
  private antiEntropy(peer: string): Promise<void> {
    const round = this.aeQueue.then(() => this.antiEntropyRound(peer));
    this.aeQueue = round.catch(() => undefined);
    return round;
  }

  private async antiEntropyRound(peer: string): Promise<void> {
    if (this.stopping !== null) throw new WorkerStoppedError('stopping');
    const d = await located(() =>
      this.peers.digest({ from: this.id }, { instance: peer, retry: false }),
    );
    const differ = this.store.differingBuckets(Buffer.from(d.digest));
    let got = 0;
    let gave = 0;
    for (let i = 0; i < differ.length; i += AE_BATCH) {
      const batch = differ.slice(i, i + AE_BATCH);
      const r = await this.peers.reconcile(
        { buckets: batch, summary: this.store.summary(new Set(batch)) },
        { instance: peer, retry: false },
      );
      if (r.offer !== null && r.offer !== undefined) {
        got += (await this.pullEntries(r.offer, this.horizon())).applied;
      }
      const want = decodeKeyList(Buffer.from(r.want));
      if (want.length > 0) {
        const offer = await this.offerEntries(want.length, this.entriesFor(want));
        gave += await this.peers.push({ offer }, { instance: peer, retry: false });
      }
    }
    this.absorbMarks(d.watermarks);
    this.lastContact = Date.now();
    if (got + gave > 0) {
      this.counts.repaired += got;
      this.log(`anti-entropy with ${peer}: ${got} entries repaired here, ${gave} there`);
    }
  }

  private *entriesFor(keys: string[]): Generator<Update> {
    for (const k of keys) {
      const e = this.store.get(k);
      if (e === undefined) continue;
      yield { key: keyBytes(k), value: e.value, stamp: stampOf(e) };
    }
  }

  private serviceImpl() {
    return {
      export: async ({ to }: { to: string }) => {
        this.log(`exporting to ${to}: ${this.store.entryCount} entries`);
        // Everything routed to this replica before the joiner's queue existed is applied first,
        // so the export and the joiner's queue together miss nothing.
        await this.drainReplicaQueue().catch((err: unknown) =>
          this.log(`export to ${to}: ${(err as Error).message}`),
        );
        const watermarks = this.marks.snapshot();
        const entries = this.store.entryCount;
        const offer = await this.offerEntries(entries, this.store.updates());
        this.counts.exported += entries;
        return { offer, entries, watermarks };
      },
      digest: () => ({
        digest: this.store.digest(),
        watermarks: this.marks.snapshot(),
        state: this.state,
      }),
      reconcile: async ({ buckets, summary }: { buckets: number[]; summary: Uint8Array }) => {
        const { give, take } = this.store.compare(
          new Set(buckets),
          Buffer.from(summary.buffer, summary.byteOffset, summary.byteLength),
          this.horizon(),
        );
        const offer =
          give.length > 0 ? await this.offerEntries(give.length, this.entriesFor(give)) : null;
        return { offer, give: give.length, want: encodeKeyList(take) };
      },
      push: async ({ offer }: { offer: unknown }) => {
        const r = await this.pullEntries(offer, this.horizon());
        this.counts.repaired += r.applied;
        if (r.applied > 0) this.log(`anti-entropy: ${r.applied} entries repaired by a peer`);
        return r.applied;
      },
      status: ({ keys }: { keys?: Uint8Array[] | undefined }) => ({
        id: this.id,
        state: this.state,
        live: this.store.size,
        dead: this.store.deadCount,
        bytes: this.store.bytes,
        digest: createHash('sha256').update(this.store.digest()).digest('hex'),
        served: { ...this.served },
        repaired: this.counts.repaired,
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
    if (this.delayTimer !== null) clearTimeout(this.delayTimer);
    this.delayed.clear();
    for (const set of this.waiters.values()) for (const w of set) clearTimeout(w.timer);
    this.waiters.clear();
    const markers = [...this.markers.values()];
    this.markers.clear();
    for (const m of markers) m.fail(new WorkerStoppedError(reason));
    // Each step is bounded: a broker that went away first must not keep the worker from exiting.
    if (this.conn?.isOpen === true) {
      if (wasServing && this.shutdownBy === null) {
        await bounded(this.lb?.leave({ id: this.id }, { timeout: 3000, retry: false }));
      }
      const until = Date.now() + 5000;
      // Bounded by the deadline: writes in flight get their confirms and answers.
      while (this.pendingWrites > 0 && Date.now() < until) await sleep(20);
      this.flushAcks();
      await bounded(this.server?.close());
      await bounded(this.rpc?.close());
      if (this.transfers !== null) await bounded(this.transfers.then((t) => t.close()));
      await bounded(this.repIn?.queueDelete(this.names.replica(this.id), { timeout: 2000 }));
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

/**
 * Call a peer by its instance id, waiting for it to appear in the RPC registry: a peer heard of by
 * gossip may not have been announced to this process yet, and an instance-addressed call fails at
 * once with CANNOT_LOCATE_SERVER until it has (the binder waits only for some instance).
 */
async function located<T>(call: () => Promise<T>, timeoutMs = 5000): Promise<T> {
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

/** Wait for `p`, but at most `ms`, ignoring its failure. */
async function bounded(p: Promise<unknown> | undefined, ms = 3000): Promise<void> {
  if (p === undefined) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p.catch(() => undefined),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
  ]);
  clearTimeout(timer);
}

const EMPTY = Buffer.alloc(0);

/** Options with every field set. */
type Resolved<T> = { [K in keyof T]-?: Exclude<T[K], undefined> };

function stampOf(e: Stamp): Stamp {
  return { hlc: e.hlc, origin: e.origin, seq: e.seq };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function mb(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** keyLen (2), key, repeated. */
function encodeKeyList(keys: string[]): Buffer {
  const parts: Buffer[] = [];
  for (const k of keys) {
    const b = Buffer.allocUnsafe(2 + k.length);
    b.writeUInt16BE(k.length, 0);
    b.write(k, 2, 'latin1');
    parts.push(b);
  }
  return Buffer.concat(parts);
}

function decodeKeyList(b: Buffer): string[] {
  const out: string[] = [];
  let pos = 0;
  // Bounded by the buffer's length: each pass consumes one key.
  while (pos + 2 <= b.length) {
    const n = b.readUInt16BE(pos);
    out.push(b.toString('latin1', pos + 2, pos + 2 + n));
    pos += 2 + n;
  }
  return out;
}
