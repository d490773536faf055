/**
 * A publisher that floods faster than its consumer drains must not make the broker run out of
 * memory: a real broker process (the `warren` CLI) takes a bounded flood much larger than its
 * memory budget, and its peak resident memory, read from /proc, stays under the budget while
 * every message still arrives, in order.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'amqplib';
import type { ConsumeMessage } from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/broker.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
const MiB = 1024 * 1024;

/** What the flood sends: many times the broker's budgets. */
const MESSAGE_BYTES = 64 * 1024;
const MESSAGES = 16384; // 1 GiB
/** Ready-message bytes the broker keeps in memory; beyond it they wait on disk. */
const MEMORY_BUDGET = 16 * MiB;
/** Resident memory above which the broker blocks publishers (RabbitMQ's high watermark). */
const HIGH_WATERMARK = 128 * MiB;
/** What the test requires of the broker process's peak resident memory. */
const RSS_BUDGET = 256 * MiB;

/** VmRSS / VmHWM (peak) of a process, in bytes, from /proc (Linux). */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (m === null) throw new Error(`no ${field} in /proc/${pid}/status`);
    return Number(m[1]) * 1024;
  };
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

describe('a bounded flood', () => {
  const work = mkdtempSync(join(tmpdir(), 'warren-flood-'));
  let child: ChildProcess | undefined;
  afterAll(() => {
    child?.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });

  it(`${(MESSAGES * MESSAGE_BYTES) / MiB} MiB through a slow consumer keeps the broker under ${RSS_BUDGET / MiB} MiB`, async () => {
    const config = join(work, 'warren.json');
    writeFileSync(
      config,
      JSON.stringify({ memoryBudget: MEMORY_BUDGET, memoryHighWatermark: HIGH_WATERMARK }),
    );
    const proc = spawn(
      process.execPath,
      [
        CLI,
        'start',
        '--port',
        '0',
        '--host',
        '127.0.0.1',
        '--no-management',
        '--data-dir',
        join(work, 'data'),
        '--config',
        config,
        '--log-level',
        'info',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = proc;
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const listening = await waitFor(
      () => /^listening (\d+)$/m.exec(out) ?? (proc.exitCode !== null ? 'exited' : null),
      'the broker to listen',
      20_000,
    );
    expect(listening, out).not.toBe('exited');
    const port = Number((listening as RegExpExecArray)[1]);
    const pid = proc.pid!;
    const baseline = memoryOf(pid).rss;

    const url = `amqp://guest:guest@127.0.0.1:${port}`;
    const pubConn = await connect(url);
    let blockedEvents = 0;
    pubConn.on('blocked', () => blockedEvents++);
    const conConn = await connect(url);
    const pub = await pubConn.createChannel();
    const q = 'flood';
    await pub.assertQueue(q, { durable: false });

    // The consumer acks at most 10 messages every 10 ms (~64 MiB/s) until the flood is over.
    const con = await conConn.createChannel();
    await con.prefetch(50);
    const pending: ConsumeMessage[] = [];
    let received = 0;
    let outOfOrder = 0;
    let throttled = true;
    await con.consume(q, (m) => {
      if (m === null) return;
      if (m.content.readUInt32BE(0) !== received) outOfOrder++;
      received++;
      if (throttled) pending.push(m);
      else con.ack(m);
    });
    const acker = setInterval(() => {
      for (let i = 0; i < 10 && pending.length > 0; i++) con.ack(pending.shift()!);
    }, 10);

    let peakSampled = baseline;
    const sampler = setInterval(() => {
      peakSampled = Math.max(peakSampled, memoryOf(pid).rss);
    }, 50);
    try {
      const body = Buffer.alloc(MESSAGE_BYTES, 0x61);
      for (let i = 0; i < MESSAGES; i++) {
        body.writeUInt32BE(i, 0);
        // Write as fast as the broker reads: wait only when the socket's buffer is full.
        if (!pub.publish('', q, body)) {
          await new Promise<void>((resolve) => pub.once('drain', () => resolve()));
        }
      }
      const afterFlood = received;
      throttled = false;
      for (const m of pending.splice(0)) con.ack(m);
      await waitFor(() => received === MESSAGES, `all ${MESSAGES} messages`, 120_000);
      for (const m of pending.splice(0)) con.ack(m);

      const { peak } = memoryOf(pid);
      console.log(
        `flood: ${(MESSAGES * MESSAGE_BYTES) / MiB} MiB published; the consumer had ` +
          `${afterFlood} of ${MESSAGES} when it ended; broker RSS ${Math.round(baseline / MiB)} MiB ` +
          `at rest, peak ${Math.round(peak / MiB)} MiB (sampled ${Math.round(peakSampled / MiB)} ` +
          `MiB), budget ${RSS_BUDGET / MiB} MiB; publisher blocked ${blockedEvents} times`,
      );
      expect(outOfOrder).toBe(0);
      // The consumer was slower: most of the flood waited in the broker.
      expect(afterFlood).toBeLessThan(MESSAGES / 2);
      expect(peak).toBeLessThan(RSS_BUDGET);
      expect(MESSAGES * MESSAGE_BYTES).toBeGreaterThanOrEqual(4 * RSS_BUDGET);
    } finally {
      clearInterval(acker);
      clearInterval(sampler);
      await pubConn.close().catch(() => undefined);
      await conConn.close().catch(() => undefined);
      proc.kill('SIGTERM');
      await waitFor(() => proc.exitCode !== null || proc.signalCode !== null, 'the broker to exit');
    }
  });
});
