/**
 * Runs the key-value service as real processes (`node dist/cli/main.js kv ...`) and looks inside
 * them through the broker: worker status over RPC, load balancer stats over RPC.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { connect } from '../../src/client/index.js';
import type { Connection } from '../../src/client/index.js';
import { rpcEndpoint } from '../../src/rpc/index.js';
import type { RpcEndpoint, ServiceClient } from '../../src/rpc/index.js';
import { LbService, WorkerService, kvNames } from '../../src/kv/contracts.js';

export const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');

const everyone = new Set<Proc>();

/** Kill every process still running (afterAll). */
export async function killAll(): Promise<void> {
  const live = [...everyone].filter((p) => p.exitCode === undefined);
  for (const p of live) p.child.kill('SIGKILL');
  await Promise.all(live.map((p) => p.exited));
  everyone.clear();
}

/** A child process whose output is kept line by line, to wait for. */
export class Proc {
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitCode: number | null | undefined = undefined;
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    everyone.add(this);
    let partial = '';
    const onData = (d: Buffer): void => {
      partial += d.toString('utf8');
      const parts = partial.split('\n');
      partial = parts.pop()!;
      for (const l of parts) this.lines.push(l);
      for (const f of [...this.listeners]) f();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        this.exitCode = code;
        for (const f of [...this.listeners]) f();
        resolve({ code, signal });
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The first output line (from `from` on) matching `re`; fails after `timeoutMs` or on exit. */
  waitFor(re: RegExp, timeoutMs = 30_000, from = 0): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      let i = from;
      const check = (): void => {
        for (; i < this.lines.length; i++) {
          const m = re.exec(this.lines[i]!);
          if (m !== null) {
            done();
            resolve(m);
            return;
          }
        }
        if (this.exitCode !== undefined) {
          done();
          reject(
            new Error(
              `${this.name} exited (${this.exitCode}) before printing ${re}:\n${this.tail()}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(`${this.name} did not print ${re} within ${timeoutMs} ms:\n${this.tail()}`),
        );
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  tail(n = 30): string {
    return this.lines.slice(-n).join('\n');
  }

  kill(signal: NodeJS.Signals): void {
    if (this.exitCode === undefined) this.child.kill(signal);
  }
}

export function spawnCli(name: string, args: string[], nodeArgs: string[] = []): Proc {
  const child = spawn(process.execPath, [...nodeArgs, CLI, 'kv', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, WARREN_URL: '' },
  });
  return new Proc(name, child);
}

export interface Lb {
  proc: Proc;
  port: number;
  brokerUrl: string;
}

export async function startLb(args: string[] = [], nodeArgs: string[] = []): Promise<Lb> {
  const proc = spawnCli('lb', ['lb', '--port', '0', '--amqp-port', '0', ...args], nodeArgs);
  const [, url] = await proc.waitFor(/^broker (amqp:\/\/\S+)/);
  const [, port] = await proc.waitFor(/^listening (\d+)$/);
  return { proc, port: Number(port), brokerUrl: url! };
}

export interface WorkerProc {
  proc: Proc;
  id: string;
}

/** Start a worker and wait until it is ready (unless `ready` is false). */
export async function startWorker(
  lb: Lb,
  args: string[] = [],
  ready = true,
  timeoutMs = 60_000,
): Promise<WorkerProc> {
  const proc = spawnCli('worker', ['worker', '--broker', lb.brokerUrl, ...args]);
  const [, id] = await proc.waitFor(/^worker (\S+) connected/);
  if (ready) await proc.waitFor(/^ready \(/, timeoutMs);
  return { proc, id: id! };
}

export type Status = Awaited<ReturnType<ServiceClient<typeof WorkerService>['status']>>;

/** Looks inside the cluster through its broker. */
export class Inspector {
  private workers: Promise<ServiceClient<typeof WorkerService>> | null = null;

  private constructor(
    readonly conn: Connection,
    readonly rpc: RpcEndpoint,
    readonly lb: ServiceClient<typeof LbService>,
  ) {}

  static async open(brokerUrl: string, namespace = 'warren.kv'): Promise<Inspector> {
    const conn = await connect(brokerUrl, { connectionName: 'kv test inspector' });
    const rpc = await rpcEndpoint(conn, { namespace: kvNames(namespace).rpc });
    const lb = await rpc.bind(LbService, { locateTimeout: 10_000 });
    return new Inspector(conn, rpc, lb);
  }

  async status(id: string, keys: Buffer[] = []): Promise<Status> {
    this.workers ??= this.rpc.bind(WorkerService, { locateTimeout: 10_000 });
    const w = await this.workers;
    // A worker just started may not be announced to this process yet.
    return until(`worker ${id} to answer`, () =>
      w.status({ keys }, { instance: id, timeout: 10_000, retry: false }),
    );
  }

  stats(gc = false) {
    return this.lb.stats({ gc }, { timeout: 30_000 });
  }

  async close(): Promise<void> {
    await this.rpc.close().catch(() => undefined);
    await this.conn.close().catch(() => undefined);
  }
}

/** Poll `check` until it returns a value other than undefined; fail after `timeoutMs`. */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  // Bounded by the deadline.
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}` +
          (last instanceof Error ? `: ${last.message}` : ''),
      );
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
