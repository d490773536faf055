import {
  closeSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { SyncTarget } from './commit-scheduler.js';
import type { CommitScheduler } from './commit-scheduler.js';
import { crc32 } from './crc32.js';
import type { StoreLogger } from './queue-store.js';

const FILE = 'definitions.log';

/**
 * Durable topology and security (vhosts, users, permissions, exchanges, queues, bindings) as an
 * append-only log of `put`/`del` operations, one line each: `crc32hex json`. A torn or corrupt
 * line is reported and skipped; the log is rewritten compactly (write, fsync, rename, fsync dir)
 * when most of it is history.
 */
export class DefinitionsStore {
  private readonly dir: string;
  private readonly path: string;
  private readonly commit: CommitScheduler;
  private readonly logger: StoreLogger;
  private target: SyncTarget | null = null;
  private dirTarget: SyncTarget | null = null;
  private readonly live = new Map<string, unknown>();
  private lines = 0;
  /** Damaged records skipped by load(): what they described is unknown. */
  damaged = 0;

  constructor(dir: string, commit: CommitScheduler, logger: StoreLogger) {
    this.dir = dir;
    this.path = join(dir, FILE);
    this.commit = commit;
    this.logger = logger;
  }

  /** Replay the log. True when the store is new (no log existed). */
  load(): boolean {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch {
      this.open();
      return true;
    }
    let lineNo = 0;
    for (const line of text.split('\n')) {
      lineNo++;
      if (line === '') continue;
      const sp = line.indexOf(' ');
      const json = line.slice(sp + 1);
      if (sp !== 8 || Number.parseInt(line.slice(0, 8), 16) !== crc32(Buffer.from(json))) {
        this.damaged++;
        this.logger.warn(`store: ${this.path}:${lineNo}: damaged definition record skipped`);
        continue;
      }
      const op = JSON.parse(json) as { op: 'put' | 'del'; key: string; value?: unknown };
      if (op.op === 'put') this.live.set(op.key, op.value);
      else this.live.delete(op.key);
      this.lines++;
    }
    if (this.damaged > 0 || this.lines > 2 * this.live.size + 100) this.compact();
    this.open();
    return false;
  }

  entries(prefix: string): [string, unknown][] {
    const out: [string, unknown][] = [];
    for (const [k, v] of this.live) if (k.startsWith(prefix)) out.push([k, v]);
    return out;
  }

  get(key: string): unknown {
    return this.live.get(key);
  }

  has(key: string): boolean {
    return this.live.has(key);
  }

  put(key: string, value: unknown): void {
    this.live.set(key, value);
    this.append({ op: 'put', key, value });
  }

  delete(key: string): void {
    if (!this.live.delete(key)) return;
    this.append({ op: 'del', key });
  }

  private append(op: object): void {
    const json = JSON.stringify(op);
    const line = Buffer.from(`${crc32(Buffer.from(json)).toString(16).padStart(8, '0')} ${json}\n`);
    const fd = this.target!.fd;
    let done = 0;
    try {
      while (done < line.length) done += writeSync(fd, line, done, line.length - done);
    } catch (err) {
      // Disk full: the next record would be appended to the torn one and lost with it.
      if (done > 0) ftruncateSync(fd, fstatSync(fd).size - done);
      throw err;
    }
    this.lines++;
    this.commit.markDirty(this.target!);
    if (this.lines > 2 * this.live.size + 1000) {
      this.compact();
      this.open();
    }
  }

  private open(): void {
    this.target?.close();
    this.target = new SyncTarget(openSync(this.path, 'a'), this.path);
    this.commit.markDirty(this.directory());
  }

  private directory(): SyncTarget {
    this.dirTarget ??= new SyncTarget(openSync(this.dir, 'r'), this.dir, true);
    return this.dirTarget;
  }

  /** Rewrite the log with only live entries, atomically. */
  private compact(): void {
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w');
    let body = '';
    for (const [key, value] of this.live) {
      const json = JSON.stringify({ op: 'put', key, value });
      body += `${crc32(Buffer.from(json)).toString(16).padStart(8, '0')} ${json}\n`;
    }
    writeSync(fd, body);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.path);
    const dfd = openSync(this.dir, 'r');
    fsyncSync(dfd);
    closeSync(dfd);
    this.lines = this.live.size;
  }

  close(): void {
    this.target?.close();
    this.dirTarget?.close();
  }
}
