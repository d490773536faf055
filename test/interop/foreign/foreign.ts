import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { run } from '../../helpers/processes.js';
import type { RunResult } from '../../helpers/processes.js';

/** Where the client programs of this folder live. */
export const FOREIGN_DIR = dirname(fileURLToPath(import.meta.url));
export const PYTHON_DIR = join(FOREIGN_DIR, 'python');
export const RUBY_DIR = join(FOREIGN_DIR, 'ruby');

/** Debian's Ruby, which has ruby-bunny installed. */
export const SYSTEM_RUBY = '/usr/bin/ruby';

/** For client programs: unbuffered Python output, no user site packages, no __pycache__ here. */
export function clientEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PYTHONUNBUFFERED: '1',
    PYTHONNOUSERSITE: '1',
    PYTHONDONTWRITEBYTECODE: '1',
    ...extra,
  };
}

/** Run a client program with a time limit; the result is returned whatever the exit code. */
export function runClient(
  cmd: string,
  args: string[],
  options: { timeoutMs?: number; env?: Record<string, string>; cwd?: string } = {},
): Promise<RunResult> {
  return run(cmd, args, {
    timeoutMs: options.timeoutMs ?? 60_000,
    env: clientEnv(options.env),
    cwd: options.cwd ?? FOREIGN_DIR,
  });
}

/**
 * A self-checking client program succeeded: exit code 0 and the success line it prints last.
 * On failure the message carries the program's own output, which says what mismatched.
 */
export function expectClientOk(result: RunResult, successLine: string): void {
  const report = `exit code ${result.code} (signal ${result.signal})\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
  expect(result.code, report).toBe(0);
  expect(result.stdout.split('\n'), report).toContain(successLine);
}

/** A long-running child (a Celery worker): its output so far, and a stop that always ends it. */
export interface BackgroundProcess {
  readonly pid: number;
  output(): string;
  exited(): boolean;
  /** SIGTERM to its process group, SIGKILL if it has not exited within `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export function startBackground(
  cmd: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): BackgroundProcess {
  // coreutils timeout bounds its life even if this test process dies without stopping it; its
  // own process group lets stop() end anything it forked.
  const limit = String(Math.ceil((options.timeoutMs ?? 180_000) / 1000));
  const child = spawn('/usr/bin/timeout', ['--kill-after=5', limit, cmd, ...args], {
    cwd: options.cwd ?? FOREIGN_DIR,
    env: clientEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  let done = false;
  const exit = new Promise<void>((resolve) => {
    child.once('close', () => {
      done = true;
      resolve();
    });
    child.once('error', (err) => {
      out += `\n[spawn error: ${err.message}]`;
      done = true;
      resolve();
    });
  });
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const pid = child.pid ?? -1;
  const signalGroup = (signal: NodeJS.Signals): void => {
    if (done || pid <= 0) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // Already gone.
    }
  };
  return {
    pid,
    output: () => out,
    exited: () => done,
    async stop(graceMs = 10_000) {
      signalGroup('SIGTERM');
      const timer = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([exit, timer]);
      if (!done) {
        signalGroup('SIGKILL');
        await exit;
      }
    },
  };
}
