import { EventEmitter } from 'node:events';
import type { Channel, Connection, Consumer, Message } from '../client/index.js';
import { compareVersions, parseVersion } from './version-range.js';
import type { Version, VersionRange } from './version-range.js';
import { H, Op, parseAnnouncement, str } from './wire.js';
import type { Announcement, Names } from './wire.js';

/** A live server instance as a client knows it. */
export interface InstanceEntry {
  readonly ann: Announcement;
  readonly version: Version;
  /** Date.now() after which the instance is taken for dead unless it announces again. */
  expiresAt: number;
}

export interface RegistryEvents {
  /** An instance withdrew or its lease ran out. */
  gone: [entry: InstanceEntry];
  /** An instance announced itself (new, renewed or restarted with a new epoch). */
  announced: [entry: InstanceEntry];
}

const SWEEP_INTERVAL = 100;
const QUERY_INTERVAL = 200;

/**
 * The client's view of the binder. Servers announce themselves on the registry exchange (a topic
 * exchange named after the namespace) with routing key `announce.<service>` every third of their
 * lease, and withdraw when they stop; a client binds its own exclusive queue to the services it
 * uses and asks (`query.<service>`) for an immediate announcement from every live instance when
 * it starts watching one. An instance whose lease runs out without renewal is dead.
 *
 * There is no registry process to fail: the exchange is the rendezvous, the leases are the state.
 */
export class RegistryWatcher extends EventEmitter<RegistryEvents> {
  private readonly conn: Connection;
  private readonly channel: Channel;
  private readonly names: Names;
  private queue: string;
  private consumer: Consumer | null = null;
  private readonly services = new Map<string, Map<string, InstanceEntry>>();
  private readonly watched = new Map<string, Promise<void>>();
  private readonly waiters = new Set<() => void>();
  private readonly lastQuery = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private readonly onReconnected = (): void => {
    for (const s of this.watched.keys()) this.query(s);
  };
  private readonly onRenamed = (from: string, to: string): void => {
    if (from === this.queue) this.queue = to;
  };

  private constructor(conn: Connection, channel: Channel, names: Names, queue: string) {
    super();
    this.conn = conn;
    this.channel = channel;
    this.names = names;
    this.queue = queue;
    this.timer = setInterval(() => this.sweep(), SWEEP_INTERVAL);
    this.timer.unref();
    conn.on('reconnected', this.onReconnected);
    conn.on('queueRenamed', this.onRenamed);
  }

  static async open(conn: Connection, names: Names): Promise<RegistryWatcher> {
    const ch = await conn.channel();
    try {
      await ch.exchangeDeclare(names.exchange, 'topic', { durable: false });
      const { queue } = await ch.queueDeclare('', { exclusive: true, autoDelete: true });
      const w = new RegistryWatcher(conn, ch, names, queue);
      w.consumer = await ch.consume(queue, (m) => w.onMessage(m), { noAck: true });
      return w;
    } catch (err) {
      await ch.close().catch(() => undefined);
      throw err;
    }
  }

  /** Start following `service` (idempotent); resolves once the binding is in place and queried. */
  watch(service: string): Promise<void> {
    let p = this.watched.get(service);
    if (p === undefined) {
      p = this.channel
        .queueBind(this.queue, this.names.exchange, this.names.announceKey(service))
        .then(() => {
          this.query(service);
        });
      this.watched.set(service, p);
      p.catch(() => this.watched.delete(service));
    }
    return p;
  }

  /** Ask every live instance of `service` to announce itself now. */
  query(service: string): void {
    this.channel
      .publish(this.names.exchange, this.names.queryKey(service), '', {
        replyTo: this.queue,
        headers: { [H.op]: Op.Query, [H.service]: service },
      })
      .catch(() => undefined);
  }

  /** Live instances of `service` whose version is in `range`, highest version first. */
  candidates(service: string, range: VersionRange): InstanceEntry[] {
    const m = this.services.get(service);
    if (m === undefined) return [];
    const now = Date.now();
    const out: InstanceEntry[] = [];
    for (const e of m.values()) if (e.expiresAt > now && range.matches(e.version)) out.push(e);
    out.sort((a, b) => compareVersions(b.version, a.version));
    return out;
  }

  /** Every live instance of `service`, whatever its version (for error messages). */
  all(service: string): InstanceEntry[] {
    return [...(this.services.get(service)?.values() ?? [])];
  }

  get(service: string, instance: string): InstanceEntry | undefined {
    return this.services.get(service)?.get(instance);
  }

  /** Wait until `service` has a candidate in `range`, up to `ms`; the candidates (maybe none). */
  async locate(
    service: string,
    range: VersionRange,
    ms: number,
    signal?: AbortSignal,
  ): Promise<InstanceEntry[]> {
    await this.watch(service);
    let found = this.candidates(service, range);
    if (found.length > 0 || ms <= 0) return found;
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (this.candidates(service, range).length === 0 && signal?.aborted !== true) return;
        done();
      };
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.waiters.add(check);
    });
    found = this.candidates(service, range);
    return found;
  }

  /**
   * Forget an instance now (it could not be reached, or answered from another epoch), and ask
   * the service's live instances to announce themselves again. With `epoch`, only that
   * incarnation is forgotten: a restarted one under the same id stays.
   */
  forget(service: string, instance: string, epoch?: string): void {
    // Many failing calls forget at once: one query per service is enough for a while.
    const now = Date.now();
    if (now - (this.lastQuery.get(service) ?? 0) > QUERY_INTERVAL) {
      this.lastQuery.set(service, now);
      this.query(service);
    }
    const m = this.services.get(service);
    const e = m?.get(instance);
    if (e === undefined || (epoch !== undefined && e.ann.epoch !== epoch)) return;
    m!.delete(instance);
    this.emit('gone', e);
  }

  private onMessage(m: Message): void {
    const op = str(m.properties.headers, H.op);
    let body: unknown;
    try {
      body = m.json();
    } catch {
      return;
    }
    const ann = parseAnnouncement(body);
    const version = ann === null ? null : parseVersion(ann.version);
    if (ann === null || version === null) return;
    let svc = this.services.get(ann.service);
    if (op === Op.Withdraw) {
      const e = svc?.get(ann.instance);
      if (e !== undefined && e.ann.epoch === ann.epoch) {
        svc!.delete(ann.instance);
        this.emit('gone', e);
      }
      return;
    }
    if (svc === undefined) {
      svc = new Map();
      this.services.set(ann.service, svc);
    }
    const entry: InstanceEntry = { ann, version, expiresAt: Date.now() + ann.lease };
    svc.set(ann.instance, entry);
    this.emit('announced', entry);
    for (const w of [...this.waiters]) w();
  }

  private sweep(): void {
    const now = Date.now();
    for (const m of this.services.values()) {
      for (const [id, e] of m) {
        if (e.expiresAt > now) continue;
        m.delete(id);
        this.emit('gone', e);
      }
    }
  }

  /** Stop sweeping (the connection is gone for good). */
  stop(): void {
    clearInterval(this.timer);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.conn.off('reconnected', this.onReconnected);
    this.conn.off('queueRenamed', this.onRenamed);
    for (const w of [...this.waiters]) w();
    await this.consumer?.cancel().catch(() => undefined);
    await this.channel.close().catch(() => undefined);
  }
}
