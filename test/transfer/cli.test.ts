import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/client/index.js';
import { startTestBroker } from '../helpers/broker.js';
import type { TestBroker } from '../helpers/broker.js';
import { RABBITMQ_URL, requireRabbitmq } from '../helpers/rabbitmq.js';
import { run } from '../helpers/processes.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
const work = mkdtempSync(join(tmpdir(), 'warren-transfer-cli-'));
let broker: TestBroker | undefined;
const queues: string[] = [];

beforeAll(async () => {
  await requireRabbitmq();
  broker = await startTestBroker();
});
afterAll(async () => {
  await broker?.stop();
  const c = await connect(RABBITMQ_URL, { reconnect: false });
  const ch = await c.channel();
  for (const q of queues) await ch.queueDelete(q).catch(() => 0);
  await c.close();
  rmSync(work, { recursive: true, force: true });
});

function warren(args: string[], timeoutMs = 60_000) {
  return run(process.execPath, [CLI, ...args], {
    cwd: work,
    timeoutMs,
    env: { ...process.env, WARREN_URL: '' },
  });
}

function queue(): string {
  const q = `warren-transfer-test.cli.${randomBytes(5).toString('hex')}`;
  queues.push(q);
  return q;
}

describe('warren send / receive', () => {
  for (const via of ['warren', 'rabbitmq'] as const) {
    it(`moves a file through ${via}, printing progress lines when not on a terminal`, async () => {
      const url = via === 'warren' ? broker!.url : RABBITMQ_URL;
      const q = queue();
      const data = randomBytes(3 * 1024 * 1024 + 17);
      const file = join(work, `in-${via}.bin`);
      writeFileSync(file, data);
      const outDir = join(work, `out-${via}`);
      mkdirSync(outDir);
      const receiving = warren([
        'receive',
        '--from',
        q,
        '--out',
        `${outDir}/`,
        '--url',
        url,
        '--wait',
        '50',
      ]);
      const sent = await warren(['send', file, '--to', q, '--url', url, '--chunk-size', '100000']);
      const got = await receiving;
      expect(sent.stderr).toContain(`offered in-${via}.bin on queue '${q}'`);
      expect(sent.code).toBe(0);
      expect(got.code).toBe(0);
      const sha = createHash('sha256').update(data).digest('hex');
      expect(sent.stdout).toMatch(
        new RegExp(`^sent in-${via}\\.bin \\(3\\.0 MiB\\) in [\\d.]+ s, .*sha256 ${sha}\\n$`),
      );
      expect(got.stdout).toContain(`received in-${via}.bin (3.0 MiB)`);
      expect(got.stdout).toContain(`sha256 ${sha}`);
      // Not a terminal: plain lines, no carriage returns or escape sequences.
      expect(got.stderr).toMatch(/in-\w+\.bin: [\d.]+ (KiB|MiB) of 3\.0 MiB \(\d+%\)/);
      expect(got.stderr).not.toContain('\r');
      expect(got.stderr).not.toContain('\u001b');
      expect(readFileSync(join(outDir, `in-${via}.bin`)).equals(data)).toBe(true);
    });
  }

  it('streams standard input to standard output', async () => {
    const q = queue();
    const data = randomBytes(200_000);
    // Binary on standard output: collected as bytes (run() decodes text).
    const receiver = spawn(process.execPath, [
      CLI,
      'receive',
      '--from',
      q,
      '--out',
      '-',
      '--url',
      broker!.url,
      '--quiet',
    ]);
    const parts: Buffer[] = [];
    let stderr = '';
    receiver.stdout.on('data', (d: Buffer) => parts.push(d));
    receiver.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const received = new Promise((resolve) => receiver.on('close', resolve));
    const sender = spawn(process.execPath, [
      CLI,
      'send',
      '-',
      '--to',
      q,
      '--url',
      broker!.url,
      '--name',
      'piped',
    ]);
    sender.stdin.end(data);
    expect(await new Promise((resolve) => sender.on('close', resolve))).toBe(0);
    expect(await received).toBe(0);
    expect(Buffer.concat(parts).equals(data)).toBe(true);
    expect(stderr).toContain('received piped (195 KiB)');
  });

  it('explains mistakes and failures in one line', async () => {
    const help = await warren(['--help']);
    expect(help.stdout).toContain('send      send a file');
    expect(help.stdout).toContain('receive   receive a file');
    const sendHelp = await warren(['send', '--help']);
    expect(sendHelp.code).toBe(0);
    expect(sendHelp.stdout).toContain('Usage: warren send <file> --to <queue>');
    const noQueue = await warren(['send', join(work, 'x')]);
    expect(noQueue.code).toBe(2);
    expect(noQueue.stderr).toContain("'warren send' needs --to <queue>");
    const typo = await warren(['receive', '--form', 'q']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('did you mean --from?');
    const missing = await warren([
      'send',
      join(work, 'missing.bin'),
      '--to',
      queue(),
      '--url',
      broker!.url,
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('cannot open');
    const nothing = await warren([
      'receive',
      '--from',
      queue(),
      '--url',
      broker!.url,
      '--wait',
      '1',
    ]);
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toContain('no transfer was offered');
    const noBroker = await warren(['receive', '--from', 'q', '--url', 'amqp://127.0.0.1:1']);
    expect(noBroker.code).toBe(1);
    expect(noBroker.stderr.trim().split('\n')).toHaveLength(1);
  });
});
