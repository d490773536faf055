import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BrokerOptions } from '../../src/broker/index.js';

const SCRIPT = fileURLToPath(new URL('./broker-child.mjs', import.meta.url));

export interface ChildStats {
  heapUsed: number;
  rss: number;
  external: number;
  arrayBuffers: number;
  budgetUsed: number;
  alarms: string[];
  queues: Record<string, { messages: number; tail: number; memoryBytes: number }>;
}

/** A Warren broker running from dist/ in a child process (see broker-child.mjs). */
export interface ChildBroker {
  readonly process: ChildProcess;
  readonly port: number;
  readonly url: string;
  /** Everything it logged so far. */
  log(): string;
  /** Memory figures and queue depths, measured in the child. */
  stats(): Promise<ChildStats>;
  /** kill -9, and wait until it is gone. */
  kill(): Promise<void>;
  /** A clean shutdown (falls back to kill -9 after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<void>;
}

type JsonOptions = Omit<BrokerOptions, 'logger'>;

export async function spawnBroker(
  options: JsonOptions,
  { exposeGc = false, startTimeoutMs = 30_000 } = {},
): Promise<ChildBroker> {
  const args = exposeGc ? ['--expose-gc', SCRIPT] : [SCRIPT];
  const child = spawn(
    process.execPath,
    [...args, JSON.stringify({ logLevel: 'info', ...options })],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  let stdoutBuf = '';
  const lineWaiters: ((line: string) => boolean)[] = [];
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    stdoutBuf += d.toString();
    let nl: number;
    while ((nl = stdoutBuf.indexOf('\n')) >= 0) {
      const line = stdoutBuf.slice(0, nl);
      stdoutBuf = stdoutBuf.slice(nl + 1);
      const i = lineWaiters.findIndex((w) => w(line));
      if (i >= 0) lineWaiters.splice(i, 1);
    }
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));

  function nextLine(prefix: string, timeoutMs: number, what: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`broker child: no '${what}' within ${timeoutMs} ms; log:\n${stderr}`));
      }, timeoutMs);
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`broker child exited before '${what}'; log:\n${stderr}`));
      });
      lineWaiters.push((line) => {
        if (!line.startsWith(prefix)) return false;
        clearTimeout(timer);
        resolve(line.slice(prefix.length));
        return true;
      });
    });
  }

  let port: number;
  try {
    port = Number(await nextLine('listening ', startTimeoutMs, 'listening <port>'));
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    process: child,
    port,
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    log: () => stderr,
    async stats() {
      const reply = nextLine('stats ', 30_000, 'stats');
      child.stdin.write('stats\n');
      return JSON.parse(await reply) as ChildStats;
    },
    async kill() {
      if (!gone) child.kill('SIGKILL');
      await exited;
    },
    async stop(timeoutMs = 15_000) {
      if (gone) return;
      child.stdin.write('stop\n');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
