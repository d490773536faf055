import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { fileURLToPath } from 'node:url';
import { connect } from '../client/index.js';
import { findListeningPid } from './proc.js';

/** A broker the suite measures: where to connect and which process to watch. */
export interface BrokerUnderTest {
  readonly name: string;
  readonly url: string;
  /** The broker's OS process, for RSS and CPU; null if it cannot be seen. */
  pid(): number | null;
  /** Connections it can still accept, when it has a known limit. */
  socketsFree?(): Promise<number | null>;
  /** Ask the broker to collect garbage before a memory reading (RabbitMQ: force_gc). */
  collectGarbage?(): Promise<void>;
  /** Memory the broker itself attributes to connections, bytes (RabbitMQ's memory breakdown). */
  connectionMemory?(): Promise<number | null>;
  /** The management HTTP API's base URL (http://host:port), or null when it is not running. */
  managementUrl(): string | null;
}

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export interface WarrenProcessOptions {
  dataDir: string;
  /** Write a V8 CPU profile of the broker here when it stops (node --cpu-prof). */
  profileDir?: string | undefined;
  /**
   * Run the management server too (on a free port), as RabbitMQ does when its management plugin
   * is enabled: the comparison is then like for like. Off by default.
   */
  management?: boolean | undefined;
  /** Extra `warren start` flags. */
  args?: string[];
}

/**
 * Warren as a child process started from the built CLI, so that the broker and the load generator
 * do not share a thread (RabbitMQ is a separate process too).
 */
export class WarrenProcess implements BrokerUnderTest {
  readonly name = 'Warren';
  readonly options: WarrenProcessOptions;
  private child: ChildProcess | null = null;
  private port = 0;
  private managementPort: number | null = null;
  private stderr = '';

  private constructor(options: WarrenProcessOptions) {
    this.options = options;
  }

  static async start(options: WarrenProcessOptions): Promise<WarrenProcess> {
    const w = new WarrenProcess(options);
    await w.spawn();
    return w;
  }

  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  pid(): number | null {
    return this.child?.pid ?? null;
  }

  managementUrl(): string | null {
    return this.managementPort !== null ? `http://127.0.0.1:${this.managementPort}` : null;
  }

  /**
   * Start the broker process; resolves once it listens (it prints `listening <port>`, and
   * `management listening <port>` when it runs the management server).
   */
  async spawn(): Promise<void> {
    const o = this.options;
    const nodeFlags =
      o.profileDir !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${o.profileDir}`] : [];
    const child = spawn(
      process.execPath,
      [
        ...nodeFlags,
        CLI,
        'start',
        '--port',
        '0',
        '--host',
        '127.0.0.1',
        '--data-dir',
        o.dataDir,
        ...(o.management === true ? ['--management-port', '0'] : ['--no-management']),
        '--log-level',
        'warn',
        ...(o.args ?? []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    this.stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    this.port = await new Promise<number>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => fail(new Error('did not print its port within 60 s')), 60_000);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(
          new Error(`the Warren broker process failed to start: ${err.message}\n${this.stderr}`),
        );
      };
      child.once('error', fail);
      child.once('exit', (code, signal) => fail(new Error(`it exited (${code ?? signal})`)));
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /^listening (\d+)$/m.exec(out);
        const mm = /^management listening (\d+)$/m.exec(out);
        if (m !== null && (o.management !== true || mm !== null)) {
          this.managementPort = mm !== null ? Number(mm[1]) : null;
          clearTimeout(timer);
          child.removeAllListeners('exit');
          child.removeAllListeners('error');
          // Keep the pipe drained; nothing more is read from it.
          child.stdout.removeAllListeners('data');
          child.stdout.resume();
          resolve(Number(m[1]));
        }
      });
    });
  }

  /**
   * Stop the broker: SIGTERM is a graceful shutdown (a CPU profile is written then), SIGKILL a
   * crash. Resolves with the milliseconds it took to exit.
   */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<number> {
    const child = this.child;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return 0;
    const start = performance.now();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill(signal);
    });
    this.child = null;
    return performance.now() - start;
  }
}

/** The local RabbitMQ (shared with other tests: never left stopped or holding our queues). */
export class RabbitMq implements BrokerUnderTest {
  readonly name = 'RabbitMQ';
  readonly url: string;
  private cachedPid: number | null = null;

  /** Set by the suite once it has checked that the management plugin answers. */
  management = false;

  constructor(url: string) {
    this.url = url;
  }

  managementUrl(): string | null {
    return this.management ? `http://${new URL(this.url).hostname}:15672` : null;
  }

  pid(): number | null {
    if (this.cachedPid !== null) return this.cachedPid;
    const u = new URL(this.url);
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) return null;
    this.cachedPid = findListeningPid(Number(u.port === '' ? 5672 : u.port));
    return this.cachedPid;
  }

  /** The broker's version (from connection.start), or throws with what to do if unreachable. */
  async check(): Promise<string> {
    let conn;
    try {
      conn = await connect(this.url, { reconnect: false, connectTimeout: 5000 });
    } catch (err) {
      throw new Error(
        `RabbitMQ is not reachable at ${new URL(this.url).host} (${(err as Error).message}); ` +
          'start it with scripts/ensure-rabbitmq.sh, or pass --no-rabbitmq to measure Warren alone',
        { cause: err },
      );
    }
    const v = conn.serverProperties.version;
    const version = typeof v === 'string' ? v : 'unknown';
    await conn.close();
    return version;
  }

  /**
   * How many more sockets the node accepts (its file descriptor limit, e.g. 832 under the usual
   * `ulimit -n 1024`), or null if rabbitmqctl cannot tell.
   */
  socketsFree(): Promise<number | null> {
    return readJsonCommand('rabbitmqctl', ['status'], (status) => {
      const fd = (
        status as { file_descriptors?: { sockets_limit?: number; sockets_used?: number } }
      ).file_descriptors;
      return fd?.sockets_limit === undefined ? null : fd.sockets_limit - (fd.sockets_used ?? 0);
    });
  }

  /**
   * Whether the management plugin answers on its usual port (15672 on the broker's host): it
   * costs RabbitMQ memory and CPU, so the suite then runs Warren's management server too.
   */
  async managementEnabled(): Promise<boolean> {
    const host = new URL(this.url).hostname;
    return new Promise((resolve) => {
      const socket = createConnection({ host, port: 15672 });
      const done = (up: boolean): void => {
        socket.destroy();
        resolve(up);
      };
      socket.setTimeout(2000, () => done(false));
      socket.once('connect', () => done(true));
      socket.once('error', () => done(false));
    });
  }

  /** The connection_* entries of `rabbitmq-diagnostics memory_breakdown`, summed; null on error. */
  connectionMemory(): Promise<number | null> {
    return readJsonCommand('rabbitmq-diagnostics', ['memory_breakdown'], (breakdown) => {
      const m = breakdown as Record<string, { bytes?: number } | undefined>;
      let sum = 0;
      for (const k of ['readers', 'writers', 'channels', 'other']) {
        sum += m[`connection_${k}`]?.bytes ?? 0;
      }
      return sum;
    });
  }

  /** `rabbitmqctl force_gc`: every Erlang process does a full sweep (errors are ignored). */
  async collectGarbage(): Promise<void> {
    await this.ctl(['force_gc'], 60_000).catch(() => undefined);
  }

  /** rabbitmqctl <args>; resolves with the milliseconds it took. */
  ctl(args: string[], timeoutMs = 300_000): Promise<number> {
    const start = performance.now();
    return new Promise((resolve, reject) => {
      execFile('rabbitmqctl', args, { timeout: timeoutMs }, (err, _stdout, stderr) => {
        if (err !== null) {
          reject(new Error(`rabbitmqctl ${args.join(' ')} failed: ${err.message} ${stderr}`));
        } else {
          resolve(performance.now() - start);
        }
      });
    });
  }
}

/**
 * Run one of RabbitMQ's CLI tools with `--formatter json` and read a number from its output;
 * null when the tool fails or its output is not what `read` expects.
 */
function readJsonCommand(
  cmd: string,
  args: string[],
  read: (json: unknown) => number | null,
): Promise<number | null> {
  return new Promise((resolve) => {
    execFile(cmd, [...args, '--formatter', 'json'], { timeout: 60_000 }, (err, stdout) => {
      if (err !== null) return resolve(null);
      try {
        resolve(read(JSON.parse(stdout)));
      } catch {
        resolve(null);
      }
    });
  });
}
