import { close, fdatasync, fsync } from 'node:fs';

/** A file (or directory) whose written data must reach the disk at the next commit. */
export class SyncTarget {
  readonly fd: number;
  readonly name: string;
  readonly isDirectory: boolean;
  /** Syncs in progress; the fd is closed only when none is. */
  private syncing = 0;
  private closeRequested = false;
  closed = false;

  constructor(fd: number, name: string, isDirectory = false) {
    this.fd = fd;
    this.name = name;
    this.isDirectory = isDirectory;
  }

  /** Close once no sync is using the descriptor. */
  close(): void {
    if (this.closed) return;
    this.closeRequested = true;
    if (this.syncing === 0) this.doClose();
  }

  sync(cb: (err: NodeJS.ErrnoException | null) => void): void {
    if (this.closed || this.closeRequested) {
      cb(null);
      return;
    }
    this.syncing++;
    const done = (err: NodeJS.ErrnoException | null): void => {
      this.syncing--;
      if (this.closeRequested && this.syncing === 0) this.doClose();
      cb(err);
    };
    // Directories need fsync (fdatasync is not defined for them everywhere).
    if (this.isDirectory) fsync(this.fd, done);
    else fdatasync(this.fd, done);
  }

  private doClose(): void {
    this.closed = true;
    close(this.fd, () => undefined);
  }
}

export type CommitCallback = (err: Error | null) => void;

/**
 * Group commit. Writers write with synchronous positional writes (so a killed process loses
 * nothing the kernel has) and mark their files dirty; whoever needs durability (a publisher
 * confirm) waits for the next commit. A commit first runs the registered flushers (buffered
 * writes go to the kernel), then fdatasyncs every dirty file in parallel on the libuv pool, then
 * calls its waiters. Waiters that arrive while a commit runs share the following one, so many
 * publishers pay for one sync.
 */
export class CommitScheduler {
  private dirty = new Set<SyncTarget>();
  private waiters: CommitCallback[] = [];
  private readonly flushers = new Set<() => boolean | void>();
  private running = false;
  private scheduled = false;
  private idleTimer: NodeJS.Timeout | null = null;
  /** Milliseconds after which dirty data with no waiter is synced anyway (acks, markers). */
  readonly idleSyncMs: number;
  stats = { commits: 0, syncs: 0, waitersServed: 0, lastCommitMs: 0 };
  /** Commits started and completed so far: a write made now is durable once commit
   * `nextGeneration` completes. */
  private started = 0;
  private completed = 0;
  /** Stores with buffered writes, so a flush touches only those. */
  private readonly pendingFlush = new Set<() => boolean | void>();
  /** Set after a failed sync: data may not be on disk; surfaced to publishers as nacks. */
  lastError: Error | null = null;

  constructor(idleSyncMs = 200) {
    this.idleSyncMs = idleSyncMs;
  }

  get nextGeneration(): number {
    return this.started + 1;
  }

  get completedGeneration(): number {
    return this.completed;
  }

  addFlusher(flush: () => boolean | void): void {
    this.flushers.add(flush);
  }

  removeFlusher(flush: () => boolean | void): void {
    this.flushers.delete(flush);
    this.pendingFlush.delete(flush);
  }

  /** A writer has buffered data: flush it with the next flushWrites (or commit). */
  requestFlush(flush: () => boolean | void): void {
    this.pendingFlush.add(flush);
  }

  markDirty(target: SyncTarget): void {
    this.dirty.add(target);
    if (this.idleTimer === null && !this.scheduled && !this.running) {
      this.idleTimer = setTimeout(() => {
        this.idleTimer = null;
        this.schedule();
      }, this.idleSyncMs);
      this.idleTimer.unref();
    }
  }

  /** Call back once everything written before the next commit starts is on disk. */
  afterNextCommit(cb: CommitCallback): void {
    this.waiters.push(cb);
    this.schedule();
  }

  get pendingWaiters(): number {
    return this.waiters.length;
  }

  /**
   * Write buffered data to the kernel now (no sync), for the writers that have some. False when
   * a writer could not write everything (it stays registered and retries).
   */
  flushWrites(): boolean {
    if (this.pendingFlush.size === 0) return true;
    const list = [...this.pendingFlush];
    this.pendingFlush.clear();
    let ok = true;
    for (const f of list) {
      if (f() === false) {
        ok = false;
        this.pendingFlush.add(f);
      }
    }
    return ok;
  }

  private schedule(): void {
    if (this.scheduled || this.running) return;
    this.scheduled = true;
    setImmediate(() => this.run());
  }

  private run(): void {
    this.scheduled = false;
    if (this.idleTimer !== null) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
    if (!this.flushWrites()) {
      // Some data could not be written (disk full): no commit may vouch for it. Try again later;
      // waiters keep waiting, so nothing unwritten is ever confirmed.
      const t = setTimeout(() => this.schedule(), 1000);
      t.unref();
      return;
    }
    this.started++;
    const generation = this.started;
    const targets = [...this.dirty];
    this.dirty.clear();
    const waiters = this.waiters;
    this.waiters = [];
    if (targets.length === 0 && waiters.length === 0) {
      this.completed = generation;
      return;
    }
    this.running = true;
    const started = performance.now();
    let pending = targets.length;
    let failure: Error | null = null;
    const finish = (): void => {
      this.running = false;
      this.completed = generation;
      this.stats.commits++;
      this.stats.syncs += targets.length;
      this.stats.waitersServed += waiters.length;
      this.stats.lastCommitMs = performance.now() - started;
      if (failure !== null) this.lastError = failure;
      for (const w of waiters) w(failure);
      if (this.waiters.length > 0) this.schedule();
      else if (this.dirty.size > 0) {
        const t = setTimeout(() => this.schedule(), this.idleSyncMs);
        t.unref();
      }
    };
    if (pending === 0) {
      finish();
      return;
    }
    for (const t of targets) {
      t.sync((err) => {
        if (err !== null && err.code !== 'EBADF' && failure === null) {
          failure = new Error(`fdatasync of ${t.name} failed: ${err.message}`);
        }
        if (--pending === 0) finish();
      });
    }
  }

  /** Sync everything now and wait (shutdown). */
  drain(): Promise<void> {
    return new Promise((resolve) => {
      this.afterNextCommit(() => resolve());
    });
  }
}
