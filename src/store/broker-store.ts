import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { BlobStore } from './blob-store.js';
import { CommitScheduler } from './commit-scheduler.js';
import { DefinitionsStore } from './definitions-store.js';
import { QueueStore } from './queue-store.js';
import type { StoreLogger } from './queue-store.js';

export interface ExchangeDef {
  vhost: string;
  name: string;
  type: string;
  autoDelete: boolean;
  internal: boolean;
  /** Field table, AMQP-encoded, base64 (keeps every value's wire type). */
  arguments: string;
}

export interface QueueDef {
  vhost: string;
  name: string;
  autoDelete: boolean;
  arguments: string;
  storageId: string;
}

export interface BindingDef {
  vhost: string;
  source: string;
  destination: string;
  kind: 'queue' | 'exchange';
  routingKey: string;
  arguments: string;
  /** Identity of the binding within the vhost. */
  key: string;
}

export interface UserDef {
  name: string;
  passwordHash: string;
  tags: string[];
}

export interface PermissionDef {
  vhost: string;
  user: string;
  configure: string;
  write: string;
  read: string;
}

export interface BrokerStoreOptions {
  /** Bytes per segment file. */
  segmentSize: number;
  /** A queue store could not write (disk full): raise the disk alarm. */
  onWriteError?: (err: NodeJS.ErrnoException) => void;
  /** How long dirty data without a waiter (acks, topology) may wait for its sync. */
  idleSyncMs: number;
}

const SEP = '\u0000';

/**
 * Everything Warren keeps in its data directory:
 *
 *   definitions.log        durable vhosts, users, permissions, exchanges, queues, bindings
 *   queues/<storage-id>/   segments of each durable queue (priority lanes in p<N>/)
 *   transient/<id>/        messages of non-durable queues paged out of memory; wiped at boot
 *
 * It knows records, not broker objects: the broker translates.
 */
export class BrokerStore {
  readonly dir: string;
  readonly commit: CommitScheduler;
  /** Bodies of large messages, one file each. */
  readonly blobs: BlobStore;
  private readonly definitions: DefinitionsStore;
  private readonly logger: StoreLogger;
  private readonly options: BrokerStoreOptions;
  private readonly queuesDir: string;
  private readonly transientDir: string;

  constructor(dir: string, logger: StoreLogger, options: BrokerStoreOptions) {
    this.dir = dir;
    this.logger = logger;
    this.options = options;
    this.commit = new CommitScheduler(options.idleSyncMs);
    this.queuesDir = join(dir, 'queues');
    this.transientDir = join(dir, 'transient');
    this.definitions = new DefinitionsStore(dir, this.commit, logger);
    this.blobs = new BlobStore(join(dir, 'blobs'), this.commit, logger);
  }

  /** Open (or create) the data directory. Returns true when it held no definitions before. */
  open(): boolean {
    mkdirSync(this.queuesDir, { recursive: true });
    rmSync(this.transientDir, { recursive: true, force: true });
    mkdirSync(this.transientDir, { recursive: true });
    return this.definitions.load();
  }

  // ---------------------------------------------------------------- definitions

  putVhost(name: string): void {
    this.definitions.put(`v${SEP}${name}`, { name });
  }

  deleteVhost(name: string): void {
    this.definitions.delete(`v${SEP}${name}`);
  }

  vhosts(): string[] {
    return this.definitions.entries(`v${SEP}`).map(([, v]) => (v as { name: string }).name);
  }

  putUser(user: UserDef): void {
    this.definitions.put(`u${SEP}${user.name}`, user);
  }

  deleteUser(name: string): void {
    this.definitions.delete(`u${SEP}${name}`);
  }

  users(): UserDef[] {
    return this.definitions.entries(`u${SEP}`).map(([, v]) => v as UserDef);
  }

  putPermission(p: PermissionDef): void {
    this.definitions.put(`p${SEP}${p.vhost}${SEP}${p.user}`, p);
  }

  deletePermission(vhost: string, user: string): void {
    this.definitions.delete(`p${SEP}${vhost}${SEP}${user}`);
  }

  permissions(): PermissionDef[] {
    return this.definitions.entries(`p${SEP}`).map(([, v]) => v as PermissionDef);
  }

  putExchange(def: ExchangeDef): void {
    this.definitions.put(`x${SEP}${def.vhost}${SEP}${def.name}`, def);
  }

  deleteExchange(vhost: string, name: string): void {
    this.definitions.delete(`x${SEP}${vhost}${SEP}${name}`);
  }

  exchanges(): ExchangeDef[] {
    return this.definitions.entries(`x${SEP}`).map(([, v]) => v as ExchangeDef);
  }

  putQueue(def: QueueDef): void {
    this.definitions.put(`q${SEP}${def.vhost}${SEP}${def.name}`, def);
  }

  deleteQueue(vhost: string, name: string): void {
    this.definitions.delete(`q${SEP}${vhost}${SEP}${name}`);
  }

  queues(): QueueDef[] {
    return this.definitions.entries(`q${SEP}`).map(([, v]) => v as QueueDef);
  }

  putBinding(def: BindingDef): void {
    this.definitions.put(`b${SEP}${def.vhost}${SEP}${def.key}`, def);
  }

  deleteBinding(vhost: string, key: string): void {
    this.definitions.delete(`b${SEP}${vhost}${SEP}${key}`);
  }

  bindings(): BindingDef[] {
    return this.definitions.entries(`b${SEP}`).map(([, v]) => v as BindingDef);
  }

  // ---------------------------------------------------------------- queue storage

  newStorageId(): string {
    return randomBytes(8).toString('hex');
  }

  /**
   * Opens the store of one priority lane of a queue: under queues/ for a durable queue
   * (`storageId` given), under transient/ otherwise.
   */
  laneStore(storageId: string | null): (lane: number) => QueueStore {
    const base =
      storageId === null
        ? join(this.transientDir, this.newStorageId())
        : join(this.queuesDir, storageId);
    return (lane) =>
      new QueueStore(lane === 0 ? base : join(base, `p${lane}`), {
        segmentSize: this.options.segmentSize,
        commit: this.commit,
        logger: this.logger,
        ...(this.options.onWriteError !== undefined
          ? { onWriteError: this.options.onWriteError }
          : {}),
      });
  }

  /**
   * Delete queue directories no durable queue refers to (a crash between delete steps). When the
   * definitions log was damaged, the missing definition may be the damage: such a directory is
   * moved to orphaned/ instead, so confirmed messages are never destroyed by it.
   */
  removeOrphans(live: ReadonlySet<string>): void {
    let names: string[];
    try {
      names = readdirSync(this.queuesDir);
    } catch {
      return;
    }
    for (const n of names) {
      if (live.has(n)) continue;
      if (this.definitions.damaged > 0) {
        let dest = join(this.dir, 'orphaned', n);
        if (existsSync(dest)) dest = `${dest}-${Date.now()}`;
        this.logger.warn(
          `store: queue data ${n} belongs to no durable queue, maybe one whose definition was ` +
            `damaged; moved to ${dest} (delete it once it is not needed)`,
        );
        mkdirSync(join(this.dir, 'orphaned'), { recursive: true });
        renameSync(join(this.queuesDir, n), dest);
        continue;
      }
      this.logger.info(`store: removing queue data ${n} that no durable queue refers to`);
      rmSync(join(this.queuesDir, n), { recursive: true, force: true });
    }
  }

  /** Bytes available to Warren on the data directory's filesystem. */
  freeBytes(): number {
    const s = statfsSync(this.dir);
    return s.bavail * s.bsize;
  }

  /** Sync everything and close the files. */
  async close(): Promise<void> {
    this.commit.flushWrites();
    await this.commit.drain();
    this.definitions.close();
    this.blobs.close();
    rmSync(this.transientDir, { recursive: true, force: true });
  }
}
