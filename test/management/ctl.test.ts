/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-return -- tests walk JSON answers freely */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../helpers/processes.js';
import { apiClient, startManagedBroker } from './helpers.js';
import type { ManagedBroker } from './helpers.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
const work = mkdtempSync(join(tmpdir(), 'warren-ctl-'));
let w: ManagedBroker;

beforeAll(async () => {
  w = await startManagedBroker();
  await w.api('PUT', '/queues/%2F/ctl-q', { durable: false });
  await w.api('PUT', '/exchanges/%2F/ctl-x', { type: 'fanout', durable: false });
  await w.api('POST', '/bindings/%2F/e/ctl-x/q/ctl-q', { routing_key: '' });
  for (let i = 0; i < 3; i++) {
    await w.api('POST', '/exchanges/%2F/ctl-x/publish', {
      properties: {},
      routing_key: '',
      payload: 'p',
      payload_encoding: 'string',
    });
  }
});
afterAll(async () => {
  await w.stop();
  rmSync(work, { recursive: true, force: true });
});

function ctl(args: string[], input?: string) {
  return run(process.execPath, [CLI, 'ctl', ...args, '--url', w.http], {
    cwd: work,
    timeoutMs: 20_000,
    ...(input !== undefined ? { input } : {}),
  });
}

describe('warren ctl', () => {
  it('lists queues as a table and as JSON', async () => {
    const t = await ctl(['list', 'queues']);
    expect(t.code).toBe(0);
    const lines = t.stdout.trim().split('\n');
    expect(lines[0]).toMatch(
      /^vhost\s+name\s+messages_ready\s+messages_unacknowledged\s+consumers/,
    );
    expect(lines[1]).toMatch(/^-+\s+-+/);
    expect(lines.find((l) => l.includes('ctl-q'))).toMatch(/^\/\s+ctl-q\s+3\s+0\s+0\s+false$/);
    const j = await ctl(['list', 'queues', '--json']);
    const rows = JSON.parse(j.stdout);
    expect(rows.find((q: any) => q.name === 'ctl-q').messages_ready).toBe(3);
  });

  it('lists exchanges, bindings, connections and consumers', async () => {
    const ex = await ctl(['list', 'exchanges']);
    expect(ex.stdout).toMatch(/\/\s+ctl-x\s+fanout\s+false/);
    const b = await ctl(['list', 'bindings', '--vhost', '/']);
    expect(b.stdout).toMatch(/\/\s+ctl-x\s+queue\s+ctl-q/);
    const c = await ctl(['list', 'connections']);
    expect(c.code).toBe(0);
    expect(c.stdout.split('\n')[0]).toMatch(/^name\s+user\s+vhost\s+state\s+channels$/);
    const k = await ctl(['list', 'consumers', '--json']);
    expect(JSON.parse(k.stdout)).toEqual([]);
  });

  it('adds a user, sets permissions, purges and deletes a queue', async () => {
    const add = await ctl(['add-user', 'carol', 'pw', '--tags', 'management']);
    expect(add.code).toBe(0);
    expect(add.stdout).toContain("user 'carol' added");
    expect(w.broker.users.authenticate('carol', 'pw')?.tags).toEqual(['management']);
    const perm = await ctl(['set-permissions', 'carol', '^carol', '.*', '.*', '--vhost', '/']);
    expect(perm.code).toBe(0);
    expect(w.broker.users.getPermission('/', 'carol')).toEqual({
      configure: '^carol',
      write: '.*',
      read: '.*',
    });
    const purge = await ctl(['purge-queue', 'ctl-q']);
    expect(purge.code).toBe(0);
    expect(w.broker.getVhost('/')!.queues.get('ctl-q')!.messageCount).toBe(0);
    const del = await ctl(['delete-queue', 'ctl-q', '--json']);
    expect(JSON.parse(del.stdout)).toMatchObject({ queue: 'ctl-q', deleted: true });
    expect(w.broker.getVhost('/')!.queues.has('ctl-q')).toBe(false);
  });

  it('exports and imports definitions', async () => {
    await w.api('PUT', '/queues/%2F/ctl-def', { durable: true });
    const file = join(work, 'defs.json');
    const exp = await ctl(['export-definitions', file]);
    expect(exp.code).toBe(0);
    const defs = JSON.parse(readFileSync(file, 'utf8'));
    expect(defs.queues.map((q: any) => q.name)).toContain('ctl-def');

    const other = await startManagedBroker();
    try {
      const r = await run(
        process.execPath,
        [CLI, 'ctl', 'import-definitions', '-', '--url', other.http],
        { cwd: work, timeoutMs: 20_000, input: JSON.stringify(defs) },
      );
      expect(r.code).toBe(0);
      expect(other.broker.getVhost('/')!.queues.has('ctl-def')).toBe(true);
      const listed = await apiClient(other.http)('GET', '/queues/%2F/ctl-def');
      expect(listed.status).toBe(200);
    } finally {
      await other.stop();
    }
  });

  it('reports problems in one line with a useful exit status', async () => {
    const wrong = await ctl(['list', 'queues', '--password', 'nope']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr.trim().split('\n')).toHaveLength(1);
    expect(wrong.stderr).toContain('401 Login failed (check --user and --password');
    const typo = await ctl(['list', 'queus']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain("cannot list 'queus'; did you mean 'queues'?");
    const missing = await ctl(['delete-queue', 'no-such-queue']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('404');
    const badFile = join(work, 'bad.json');
    writeFileSync(badFile, '{oops');
    const bad = await ctl(['import-definitions', badFile]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('is not valid JSON');
    const down = await run(
      process.execPath,
      [CLI, 'ctl', 'list', 'queues', '--url', 'http://127.0.0.1:9'],
      { cwd: work, timeoutMs: 20_000 },
    );
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(
      /^warren: error: cannot (connect to|reach) http:\/\/127\.0\.0\.1:9/,
    );
  });
});

describe('warren start with management', () => {
  it('serves the management API on --management-port and prints its URL', async () => {
    const dataDir = join(work, 'data');
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
      ],
      { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no management line; got: ${out}`)), 15_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /^management listening (\d+)$/m.exec(out);
        if (m !== null) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.once('exit', (code) => reject(new Error(`exited early with ${code}: ${out}`)));
    });
    try {
      expect(out).toContain(`  management   http://127.0.0.1:${port}/`);
      const r = await apiClient(`http://127.0.0.1:${port}`)('GET', '/overview');
      expect(r.status).toBe(200);
      expect(r.body.product_name).toBe('Warren');
      const page = await fetch(`http://127.0.0.1:${port}/`);
      expect(await page.text()).toContain('<title>Warren Management</title>');
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  });

  it('--no-management starts without it', async () => {
    const child = spawn(
      process.execPath,
      [
        CLI,
        'start',
        '--port',
        '0',
        '--no-management',
        '--host',
        '127.0.0.1',
        '--data-dir',
        join(work, 'd2'),
      ],
      { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line; got: ${out}`)), 15_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (/^listening \d+$/m.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    expect(out).not.toContain('management');
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<string>((resolve) =>
      child.once('exit', (code, signal) => resolve(`code ${code} signal ${signal}`)),
    );
    child.kill('SIGTERM');
    expect(await exited, `stderr: ${stderr}`).toBe('code 0 signal null');
  });
});
