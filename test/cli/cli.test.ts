import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from '../helpers/processes.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
const work = mkdtempSync(join(tmpdir(), 'warren-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function warren(args: string[]) {
  return run(process.execPath, [CLI, ...args], { cwd: work, timeoutMs: 20_000 });
}

describe('warren CLI', () => {
  it('prints help with every start flag and exits 0', async () => {
    const r = await warren(['--help']);
    expect(r.code).toBe(0);
    for (const flag of ['--port', '--management-port', '--data-dir', '--config']) {
      expect(r.stdout).toContain(flag);
    }
    const s = await warren(['start', '--help']);
    expect(s.code).toBe(0);
    expect(s.stdout).toContain('Usage: warren start');
  });

  it('prints the version', async () => {
    const r = await warren(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('rejects an unknown flag in one line, with a suggestion, and exit status 2', async () => {
    const r = await warren(['start', '--prot', '5672']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain("unknown flag '--prot'");
    expect(r.stderr).toContain('did you mean --port?');
  });

  it('rejects an unknown command and a bad port value', async () => {
    const c = await warren(['strat']);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain("unknown command 'strat'; did you mean 'start'?");
    const p = await warren(['start', '--port', '70000']);
    expect(p.code).toBe(2);
    expect(p.stderr).toContain('--port must be from 0 to 65535, got 70000');
    const v = await warren(['start', '--port']);
    expect(v.code).toBe(2);
    expect(v.stderr).toContain('--port needs a value');
  });

  it('explains an unreadable, malformed or unknown-key config file', async () => {
    const missing = await warren(['start', '--config', join(work, 'nope.json')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read config file');
    expect(missing.stderr).toContain('no such file');

    const bad = join(work, 'bad.json');
    writeFileSync(bad, '{ "port": 5672,');
    const malformed = await warren(['start', '--config', bad]);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain('is not valid JSON');

    const typo = join(work, 'typo.json');
    writeFileSync(typo, JSON.stringify({ prot: 1 }));
    const unknown = await warren(['start', '--config', typo]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown key 'prot'; did you mean 'port'?");

    const wrongType = join(work, 'type.json');
    writeFileSync(wrongType, JSON.stringify({ heartbeat: 'often' }));
    const typed = await warren(['start', '--config', wrongType]);
    expect(typed.code).toBe(2);
    expect(typed.stderr).toContain("'heartbeat' must be a non-negative integer");
  });

  it('says clearly when the port is in use and exits 1', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const r = await warren(['start', '--port', String(port), '--host', '127.0.0.1']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`port ${port} is already in use`);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      blocker.close();
    }
  });

  it('starts a broker that real clients use, creates the data dir, and stops on SIGTERM', async () => {
    const dataDir = join(work, 'data-start');
    const cfg = join(work, 'cfg.json');
    writeFileSync(cfg, JSON.stringify({ heartbeat: 30, logLevel: 'warn' }));
    const child = spawn(
      process.execPath,
      [
        CLI,
        'start',
        '--port',
        '0',
        '--management-port',
        '0',
        '--host',
        '127.0.0.1',
        '--data-dir',
        dataDir,
        '--config',
        cfg,
      ],
      { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no 'listening' line; got: ${out}`)), 15_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /^listening (\d+)$/m.exec(out);
        if (m !== null) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.once('exit', (code) => reject(new Error(`exited early with ${code}: ${out}`)));
    });
    expect(existsSync(dataDir)).toBe(true);
    const conn = await amqplib.connect(`amqp://guest:guest@127.0.0.1:${port}`);
    expect((conn.connection as unknown as { heartbeat: number }).heartbeat).toBe(30);
    const ch = await conn.createChannel();
    const q = await ch.assertQueue('', { exclusive: true });
    ch.sendToQueue(q.queue, Buffer.from('through the CLI'));
    const msg = await new Promise<amqplib.ConsumeMessage>((resolve) => {
      void ch.consume(q.queue, (m) => m !== null && resolve(m), { noAck: true });
    });
    expect(msg.content.toString()).toBe('through the CLI');
    const closed = new Promise<void>((resolve) => conn.once('close', () => resolve()));
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    );
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    await closed;
  });
});
