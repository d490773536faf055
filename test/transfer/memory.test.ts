/**
 * Bounded memory, measured: a 2 GiB payload, generated on the fly, goes from a sender process to
 * a receiver process through Warren and through RabbitMQ, while this process reads both
 * children's peak RSS (VmHWM) from /proc. Holding the payload (the seed's drawback) would need
 * 2 GiB; the bound checked is 96 MiB of growth over each child's RSS before the transfer: the
 * window (2 MiB receiver, 8 MiB sender look-behind) plus V8's lag in collecting dead Buffers
 * (it runs a GC after about 64 MiB of new external memory).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/client/index.js';
import { startTestBroker } from '../helpers/broker.js';
import type { TestBroker } from '../helpers/broker.js';
import { RABBITMQ_URL, requireRabbitmq } from '../helpers/rabbitmq.js';

const PEER = join(import.meta.dirname, 'peer-child.mjs');
const SIZE = 2 * 1024 ** 3;
const BOUND = 96 * 1024 ** 2;

interface PeerResult {
  summary: { bytes: number; sha256: string };
  generatedSha256?: string;
  consumedSha256?: string;
  bytes?: number;
  baseline: number;
  peak: number;
}

/** Peak RSS (VmHWM) of a live process, in bytes; 0 once it is gone. */
function vmHwm(pid: number): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? 0 : Number(m[1]) * 1024;
  } catch {
    return 0;
  }
}

/** Run a peer; resolves with its result line and the highest VmHWM this process saw. */
function peer(args: string[]): {
  child: ChildProcess;
  done: Promise<PeerResult & { polled: number }>;
} {
  const child = spawn(process.execPath, [PEER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let polled = 0;
  const timer = setInterval(() => {
    polled = Math.max(polled, vmHwm(child.pid!));
  }, 50);
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    polled = Math.max(polled, vmHwm(child.pid!));
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<PeerResult & { polled: number }>((resolve, reject) => {
    child.on('close', (code) => {
      clearInterval(timer);
      if (code !== 0) {
        reject(new Error(`peer ${args[0]} exited with ${code}: ${err}`));
        return;
      }
      resolve({ ...(JSON.parse(out.trim().split('\n').at(-1)!) as PeerResult), polled });
    });
  });
  return { child, done };
}

let warren: TestBroker | undefined;
beforeAll(async () => {
  await requireRabbitmq();
  warren = await startTestBroker();
});
afterAll(async () => {
  await warren?.stop();
});

describe('transfer memory', () => {
  for (const via of ['warren', 'rabbitmq'] as const) {
    it(
      `moves 2 GiB between two processes through ${via} with bounded RSS on both`,
      { timeout: 240_000 },
      async () => {
        const url = via === 'warren' ? warren!.url : RABBITMQ_URL;
        const queue = `warren-transfer-test.memory.${randomBytes(5).toString('hex')}`;
        // Through RabbitMQ the source is a one-pass stream, so the sender's look-behind is measured too.
        const kind = via === 'warren' ? 'seekable' : 'stream';
        const receiver = peer(['receive', url, queue, '32']);
        const sender = peer(['send', url, queue, String(SIZE), '42', '65536', '128', kind]);
        try {
          const [s, r] = await Promise.all([sender.done, receiver.done]);
          expect(r.bytes).toBe(SIZE);
          expect(r.summary.bytes).toBe(SIZE);
          // Three independent hashes: the generator's, the consumer's, and the protocol's.
          expect(r.consumedSha256).toBe(s.generatedSha256);
          expect(r.summary.sha256).toBe(s.generatedSha256);
          expect(s.summary.sha256).toBe(s.generatedSha256);
          for (const p of [s, r]) {
            const peak = Math.max(p.peak, p.polled);
            expect(peak - p.baseline).toBeLessThan(BOUND);
          }
        } finally {
          sender.child.kill('SIGKILL');
          receiver.child.kill('SIGKILL');
          const c = await connect(url, { reconnect: false });
          const ch = await c.channel();
          await ch.queueDelete(queue).catch(() => 0);
          await c.close();
        }
      },
    );
  }
});
