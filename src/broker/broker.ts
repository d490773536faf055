import { mkdirSync, readFileSync } from 'node:fs';
import { BrokerStore } from '../store/broker-store.js';
import type { BlobStore } from '../store/blob-store.js';
import type { CommitScheduler } from '../store/commit-scheduler.js';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { hostname } from 'node:os';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer } from 'node:tls';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { FieldTable } from '../protocol/index.js';
import type { Channel } from './channel.js';
import { ConfigError, resolveConfig } from './config.js';
import type { BrokerConfig, BrokerOptions, TlsConfig } from './config.js';
import { Connection } from './connection.js';
import type { ConnectionHost } from './connection.js';
import { createLogger } from './logger.js';
import type { Logger } from './logger.js';
import { MemoryBudget } from './memory-budget.js';
import { Persistence, decodeArgs } from './persistence.js';
import type { QueueOptions, QueueResources } from './queue.js';
import { UserStore, UserTag } from './users.js';
import { VirtualHost } from './vhost.js';
import { VERSION } from '../version.js';

/** A listener could not start; `code` says why (e.g. WARREN_ERR_PORT_IN_USE). */
export class ListenError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'ListenError';
    this.code = code;
  }
}

/**
 * The Warren broker: virtual hosts, users, and the connections it accepts over TCP or handed to it
 * in-process. `start()` opens the AMQP listener; `stop()` closes every connection and listener.
 */
export class Broker implements ConnectionHost {
  readonly config: BrokerConfig;
  readonly logger: Logger;
  readonly users = new UserStore();
  readonly vhosts = new Map<string, VirtualHost>();
  readonly connections = new Set<Connection>();
  readonly replyChannels = new Map<string, Channel>();
  readonly serverProperties: FieldTable;
  readonly startedAt = Date.now();
  /** Ready-message bytes held in memory across all queues. */
  readonly budget: MemoryBudget;
  /** The data directory; null for an in-memory broker. */
  store: BrokerStore | null = null;
  private persistence: Persistence | null = null;
  /** Active resource alarms ('memory', 'disk'): publishing connections are blocked. */
  readonly alarms = new Set<string>();
  private server: Server | null = null;
  private tlsServer: Server | null = null;
  private ticker: NodeJS.Timeout | null = null;
  private tickCount = 0;
  /** Resident memory that is neither V8's heap nor buffers (code, stacks, libuv), at start. */
  private readonly memoryOverhead: number;
  /** A store write failed for want of space; the disk alarm holds until writes succeed again. */
  private diskWriteFailed = false;
  private started = false;

  constructor(options: BrokerOptions = {}) {
    this.config = resolveConfig(options);
    this.logger = options.logger ?? createLogger(options.logLevel ?? 'info');
    this.serverProperties = {
      product: 'Warren',
      version: VERSION,
      platform: `Node.js ${process.version}`,
      copyright: 'Warren contributors',
      information: 'Licensed under the MIT License',
      cluster_name: `warren@${hostname()}`,
      capabilities: {
        publisher_confirms: true,
        exchange_exchange_bindings: true,
        'basic.nack': true,
        consumer_cancel_notify: true,
        'connection.blocked': true,
        consumer_priorities: true,
        authentication_failure_close: true,
        per_consumer_qos: true,
        direct_reply_to: true,
      },
    };
    this.budget = new MemoryBudget(this.config.memoryBudget);
    const m = process.memoryUsage();
    this.memoryOverhead = Math.max(0, m.rss - m.heapTotal - m.external);
    this.createDefaults();
  }

  /** The default vhost and user (guest/guest, loopback only), as on RabbitMQ's first boot. */
  private createDefaults(): void {
    this.addVhost('/');
    const du = this.config.defaultUser;
    if (du !== false) {
      this.users.addUser(du.name, du.password, [UserTag.Administrator]);
      this.users.setPermission('/', du.name, { configure: '.*', write: '.*', read: '.*' });
    }
  }

  get commit(): CommitScheduler | null {
    return this.store?.commit ?? null;
  }

  get blobs(): BlobStore | null {
    return this.store?.blobs ?? null;
  }

  diskFull(code: string): void {
    this.setAlarm('disk', true, () => `the disk is full (${code} writing a message body)`);
  }

  addVhost(name: string): VirtualHost {
    let v = this.vhosts.get(name);
    if (v === undefined) {
      v = new VirtualHost(name, {
        events: this.persistence ?? {},
        queueResources: (options, storageId) => this.queueResources(options, storageId),
      });
      v.maxQueues = this.config.maxQueuesPerVhost;
      this.vhosts.set(name, v);
      this.persistence?.vhostAdded(name);
    }
    return v;
  }

  /** Delete a vhost: its connections are closed, its queues and exchanges removed. */
  deleteVhost(name: string): boolean {
    const v = this.vhosts.get(name);
    if (v === undefined) return false;
    for (const c of this.connections) if (c.vhost === v) c.close(`vhost '${name}' is deleted`);
    // Through the vhost's own methods, so the store sees each queue and exchange go.
    for (const q of [...v.queues.values()]) v.removeQueue(q);
    for (const ex of [...v.exchanges.values()]) {
      if (ex.name !== '' && !ex.name.startsWith('amq.')) v.deleteExchange(ex.name, false);
    }
    this.vhosts.delete(name);
    this.users.clearVhost(name);
    this.persistence?.vhostDeleted(name);
    return true;
  }

  private queueResources(options: QueueOptions, storageId: string | null): QueueResources {
    const store = this.store;
    if (store === null) return { budget: this.budget, openStore: null, storageId: null };
    const durable = options.durable && !options.exclusive;
    const id = durable ? (storageId ?? store.newStorageId()) : null;
    return {
      budget: this.budget,
      openStore: store.laneStore(id),
      storageId: id,
      blobs: store.blobs,
    };
  }

  getVhost(name: string): VirtualHost | undefined {
    return this.vhosts.get(name);
  }

  /** Start listening (unless port is null). Resolves once the broker accepts connections. */
  async start(): Promise<this> {
    if (this.started) return this;
    this.started = true;
    const dataDir = this.config.dataDir;
    if (dataDir !== null) {
      try {
        mkdirSync(dataDir, { recursive: true });
      } catch (err) {
        this.started = false;
        throw new ConfigError(
          `cannot create data directory '${dataDir}': ${(err as Error).message}; pass --data-dir with a writable path`,
        );
      }
    }
    try {
      if (this.config.port !== null) {
        const server = createServer({ noDelay: true }, (s) => this.accept(s));
        this.server = await listen(server, this.config.port, this.config.host, '--port');
      }
      if (this.config.tls !== null) {
        this.tlsServer = await listen(
          this.tlsListener(this.config.tls),
          this.config.tls.port,
          this.config.host,
          '--tls-port',
        );
      }
    } catch (err) {
      this.server?.close();
      this.server = null;
      this.started = false;
      throw err;
    }
    // Recovery is synchronous: clients that connect meanwhile wait in the listen backlog and are
    // served once it is done; none is refused or served half-recovered state.
    if (dataDir !== null) this.openStore(dataDir);
    this.ticker = setInterval(() => this.tick(), 1000);
    this.ticker.unref();
    if (this.server !== null) {
      this.logger.info(`Warren ${VERSION} accepting AMQP 0-9-1 connections on port ${this.port}`);
    }
    if (this.tlsServer !== null) {
      this.logger.info(`accepting AMQP 0-9-1 over TLS (amqps) on port ${this.tlsPort}`);
    }
    return this;
  }

  /**
   * The amqps listener: connections take the same path as plain ones once the TLS handshake is
   * done. With verifyPeer, a client certificate that does not verify is refused; with
   * failIfNoPeerCert, so is a client that sends none.
   */
  private tlsListener(tls: TlsConfig): Server {
    const read = (what: string, path: string, flag: string): Buffer => {
      try {
        return readFileSync(path);
      } catch (err) {
        throw new ConfigError(
          `cannot read the TLS ${what} file '${path}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; check ${flag}`,
        );
      }
    };
    let server: TlsServer;
    try {
      server = createTlsServer(
        {
          cert: read('certificate', tls.cert, '--tls-cert'),
          key: read('key', tls.key, '--tls-key'),
          ...(tls.ca !== null ? { ca: read('CA', tls.ca, '--tls-ca') } : {}),
          requestCert: tls.verifyPeer,
          rejectUnauthorized: tls.failIfNoPeerCert,
        },
        (socket) => this.acceptTls(socket, tls),
      );
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(
        `cannot use the TLS certificate '${tls.cert}' and key '${tls.key}': ${(err as Error).message}`,
      );
    }
    server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
      this.logger.info(
        `TLS handshake with ${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0} failed: ${err.message}`,
      );
    });
    return server;
  }

  private acceptTls(socket: TLSSocket, tls: TlsConfig): void {
    // rejectUnauthorized is off unless failIfNoPeerCert: a client without a certificate may in,
    // one with a certificate that does not verify may not.
    if (tls.verifyPeer && !socket.authorized && socket.getPeerCertificate().raw !== undefined) {
      this.logger.warn(
        `TLS client ${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0} refused: ` +
          `its certificate does not verify (${String(socket.authorizationError)})`,
      );
      socket.destroy();
      return;
    }
    this.accept(socket);
  }

  /**
   * Open the data directory: on first use, persist the defaults; otherwise replace them with
   * what was stored and recover every durable queue's messages (before accepting connections).
   */
  private openStore(dataDir: string): void {
    const started = performance.now();
    const store = new BrokerStore(dataDir, this.logger, {
      segmentSize: this.config.segmentSize,
      idleSyncMs: this.config.idleSyncMs,
      onWriteError: (err) => {
        if (err.code === 'ENOSPC' || err.code === 'EDQUOT') {
          this.diskWriteFailed = true;
          this.setAlarm('disk', true, () => `the disk is full (${err.code} writing messages)`);
        }
      },
    });
    const fresh = store.open();
    this.store = store;
    const persistence = new Persistence(store, (err) => {
      if (err.code === 'ENOSPC' || err.code === 'EDQUOT') {
        this.setAlarm('disk', true, () => `the disk is full (${err.code} writing definitions)`);
      }
    });
    if (fresh) {
      this.persistence = persistence;
      for (const v of this.vhosts.values()) {
        v.attachEvents(persistence);
        persistence.vhostAdded(v.name);
      }
      this.users.events = persistence;
      for (const u of this.users.listUsers()) persistence.userChanged(u);
      for (const p of this.users.listPermissions()) {
        persistence.permissionChanged(p.vhost, p.user, p.permission);
      }
      this.logger.info(`data directory ${dataDir} initialised`);
      this.logger.info(firstRunMessage(this.config));
      return;
    }
    // Everything comes from the store: the in-memory defaults go.
    this.vhosts.clear();
    this.users.reset();
    for (const name of store.vhosts()) this.addVhost(name);
    for (const u of store.users()) this.users.putUser({ ...u });
    for (const p of store.permissions()) {
      this.users.setPermission(p.vhost, p.user, {
        configure: p.configure,
        write: p.write,
        read: p.read,
      });
    }
    for (const x of store.exchanges()) {
      this.vhosts.get(x.vhost)?.restoreExchange(x.name, x.type, {
        durable: true,
        autoDelete: x.autoDelete,
        internal: x.internal,
        arguments: decodeArgs(x.arguments),
      });
    }
    const live = new Set<string>();
    const queues = store.queues();
    let messages = 0;
    let lastLog = performance.now();
    for (let i = 0; i < queues.length; i++) {
      const d = queues[i]!;
      const v = this.vhosts.get(d.vhost);
      if (v === undefined) continue;
      live.add(d.storageId);
      const q = v.restoreQueue(
        d.name,
        {
          durable: true,
          exclusive: false,
          autoDelete: d.autoDelete,
          arguments: decodeArgs(d.arguments),
          owner: null,
        },
        d.storageId,
      );
      messages += q.recover();
      if (performance.now() - lastLog > 1000) {
        lastLog = performance.now();
        this.logger.info(`recovering: ${i + 1}/${queues.length} queues, ${messages} messages`);
      }
    }
    for (const b of store.bindings()) {
      this.vhosts
        .get(b.vhost)
        ?.restoreBinding(b.source, b.destination, b.kind, b.routingKey, decodeArgs(b.arguments));
    }
    store.removeOrphans(live);
    store.blobs.removeUnreferenced();
    this.persistence = persistence;
    for (const v of this.vhosts.values()) v.attachEvents(persistence);
    this.users.events = persistence;
    this.logger.info(
      `recovered ${this.vhosts.size} vhosts, ${queues.length} durable queues and ${messages} ` +
        `persistent messages from ${dataDir} in ${Math.round(performance.now() - started)} ms`,
    );
  }

  private tick(): void {
    const now = Date.now();
    this.tickCount++;
    for (const c of this.connections) c.tick(now);
    this.checkAlarms();
  }

  /**
   * Memory and disk alarms, as RabbitMQ's: above the memory watermark or below the free-disk
   * limit, connections that publish are blocked (connection.blocked, reads paused) and
   * consumers go on draining; they are unblocked when the condition clears.
   */
  checkAlarms(): void {
    const used = this.memoryInUse();
    this.setAlarm(
      'memory',
      used > this.config.memoryHighWatermark,
      () =>
        `memory use ${mib(used)} is above the high watermark ${mib(this.config.memoryHighWatermark)}`,
    );
    if (this.store !== null && (this.tickCount % 5 === 0 || this.diskWriteFailed)) {
      let free = Infinity;
      try {
        free = this.store.freeBytes();
      } catch {
        // statfs unavailable: no disk alarm
      }
      // After ENOSPC, free space alone does not clear the alarm (the limit may be below what the
      // buffered writes need): they must all have gone out.
      if (this.diskWriteFailed && this.store.commit.flushWrites()) this.diskWriteFailed = false;
      this.setAlarm(
        'disk',
        free < this.config.diskFreeLimit || this.diskWriteFailed,
        () => `free disk space ${mib(free)} is below the limit ${mib(this.config.diskFreeLimit)}`,
      );
    }
  }

  /**
   * The memory the alarm compares with the watermark: resident memory, but no more than the
   * process's fixed overhead plus V8's heap and the buffers alive. After a flood has drained,
   * the allocator keeps freed pages and RSS stays high; by RSS alone the alarm would never
   * clear and publishers would stay blocked for good.
   */
  memoryInUse(): number {
    const m = process.memoryUsage();
    return Math.min(m.rss, this.memoryOverhead + m.heapTotal + m.external);
  }

  /** Raise or clear an alarm (also used by tests and by the store on ENOSPC). */
  setAlarm(kind: string, active: boolean, describe: () => string = () => kind): void {
    if (active === this.alarms.has(kind)) return;
    if (active) {
      this.alarms.add(kind);
      this.logger.warn(`${kind} alarm set: ${describe()}; publishers are blocked`);
    } else {
      this.alarms.delete(kind);
      this.logger.info(`${kind} alarm cleared`);
    }
    const reason = [...this.alarms].join(', ');
    for (const c of this.connections) c.setBlocked(this.alarms.size > 0 ? reason : null);
  }

  /** The AMQP port actually bound (useful with port 0). */
  get port(): number {
    const addr = this.server?.address();
    return addr !== null && typeof addr === 'object' ? addr.port : 0;
  }

  /** The amqps port actually bound; 0 without a TLS listener. */
  get tlsPort(): number {
    const addr = this.tlsServer?.address();
    return addr !== null && typeof addr === 'object' ? addr.port : 0;
  }

  private accept(socket: Socket | TLSSocket): void {
    socket.setNoDelay(true);
    this.attach(socket);
  }

  /** Serve an AMQP connection over any duplex stream (used by the embedded, socketless mode). */
  attach(transport: Duplex): Connection {
    const conn = new Connection(this, transport);
    this.connections.add(conn);
    if (this.alarms.size > 0) conn.setBlocked([...this.alarms].join(', '));
    return conn;
  }

  connectionClosed(conn: Connection): void {
    this.connections.delete(conn);
  }

  /** Close every connection (320 CONNECTION_FORCED) and the listener. */
  async stop(): Promise<void> {
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
    const servers = [this.server, this.tlsServer];
    this.server = null;
    this.tlsServer = null;
    for (const c of this.connections) c.close('broker shutdown');
    const closing = [...this.connections].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.transport.destroyed) resolve();
          else c.transport.once('close', () => resolve());
        }),
    );
    await Promise.race([Promise.all(closing), new Promise((r) => setTimeout(r, 3000).unref())]);
    for (const c of this.connections) c.destroy();
    for (const server of servers) {
      if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    for (const v of this.vhosts.values()) for (const q of v.queues.values()) q.close();
    await this.store?.close();
    this.started = false;
  }
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(0)} MiB`;
}

/**
 * What a fresh data directory tells the operator: who can log in, and how to let clients on
 * other machines in (the default user works from localhost only).
 */
function firstRunMessage(config: BrokerConfig): string {
  const addUser =
    "add a user while the broker runs: 'warren ctl add-user <name> <password> --tags administrator' " +
    'then \'warren ctl set-permissions <name> ".*" ".*" ".*"\'';
  const du = config.defaultUser;
  if (du === false) {
    return `first run: no users exist (defaultUser is false); ${addUser}, or set "defaultUser": {"name": ..., "password": ...} in the config file before the first start`;
  }
  const where = config.loopbackUsers.includes(du.name)
    ? 'which can connect from localhost only'
    : 'which can connect from anywhere';
  return (
    `first run: created the default user '${du.name}' with full access to vhost '/', ${where}. ` +
    `For clients on other machines, ${addUser}; or set "defaultUser": {"name": ..., "password": ...} ` +
    `in the config file before the first start`
  );
}

function listen(
  server: Server,
  port: number,
  host: string | undefined,
  flag: string,
): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') {
        reject(
          new ListenError(
            'WARREN_ERR_PORT_IN_USE',
            `port ${port} is already in use (is RabbitMQ or another Warren running?); choose another with ${flag}`,
          ),
        );
      } else if (err.code === 'EACCES') {
        reject(
          new ListenError(
            'WARREN_ERR_PORT_DENIED',
            `not allowed to listen on port ${port}; use a port above 1023 or run with the needed privileges`,
          ),
        );
      } else {
        reject(
          new ListenError('WARREN_ERR_LISTEN', `cannot listen on port ${port}: ${err.message}`),
        );
      }
    });
    server.listen({ port, host }, () => resolve(server));
  });
}
