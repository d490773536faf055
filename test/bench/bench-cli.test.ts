import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker } from '../helpers/broker.js';
import type { TestBroker } from '../helpers/broker.js';
import { run } from '../helpers/processes.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
const work = mkdtempSync(join(tmpdir(), 'warren-bench-test-'));
let b: TestBroker;

beforeAll(async () => {
  b = await startTestBroker();
});
afterAll(async () => {
  await b.stop();
  rmSync(work, { recursive: true, force: true });
});

function warren(args: string[], timeoutMs = 60_000) {
  return run(process.execPath, [CLI, ...args], { cwd: work, timeoutMs });
}

// These check what the tool does and reports, never how fast anything is.
describe('warren bench', () => {
  it('runs publishers and consumers and reports rates, latency percentiles and the broker', async () => {
    const json = join(work, 'run.json');
    const r = await warren([
      'bench',
      '--url',
      b.url,
      '--duration',
      '1',
      '--warmup',
      '0',
      '--size',
      '64',
      '--confirm',
      '50',
      '--rate',
      '2000',
      '--quiet',
      '--json',
      json,
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const field of ['published', 'confirmed', 'consumed', 'latency', 'p50', 'p90', 'p99']) {
      expect(r.stdout).toContain(field);
    }
    // The broker listens in this test process, so /proc shows its RSS.
    expect(r.stdout).toMatch(new RegExp(`broker +pid ${process.pid}: RSS`));
    const doc = JSON.parse(readFileSync(json, 'utf8')) as {
      options: { url: string; size: number };
      result: {
        published: number;
        confirmed: number;
        consumed: number;
        latency: { count: number; p50: number; p99: number; max: number } | null;
        errors: string[];
      };
    };
    expect(doc.options.url).not.toContain('guest:guest');
    expect(doc.options.size).toBe(64);
    expect(doc.result.errors).toEqual([]);
    expect(doc.result.published).toBeGreaterThan(0);
    expect(doc.result.confirmed).toBeGreaterThan(0);
    expect(doc.result.consumed).toBeGreaterThan(0);
    expect(doc.result.latency!.count).toBeGreaterThan(0);
    expect(doc.result.latency!.p50).toBeLessThanOrEqual(doc.result.latency!.p99);
    expect(doc.result.latency!.p99).toBeLessThanOrEqual(doc.result.latency!.max);
    // The run's queue is gone afterwards.
    const vhost = b.broker.getVhost('/')!;
    expect([...vhost.queues.keys()].filter((q) => q.startsWith('warren-bench-'))).toEqual([]);
  });

  it('stops publishers after --messages and delivers every one of them', async () => {
    const json = join(work, 'count.json');
    const r = await warren([
      'bench',
      '-u',
      b.url,
      '--messages',
      '3000',
      '--publishers',
      '2',
      '--consumers',
      '1',
      '--quiet',
      '--json',
      json,
    ]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(readFileSync(json, 'utf8')) as {
      result: { published: number; consumed: number };
    };
    expect(doc.result.published).toBe(6000);
    expect(doc.result.consumed).toBe(6000);
  });

  it('rejects bad flags in one line with exit status 2', async () => {
    const a = await warren(['bench', '--ack', 'sometimes']);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain("--ack must be 'manual' or 'auto'");
    const s = await warren(['bench', 'suite', '--only', 'nope']);
    expect(s.code).toBe(2);
    expect(s.stderr).toContain("unknown scenario 'nope'");
    const h = await warren(['bench', '--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('Usage: warren bench');
    expect(h.stdout).toContain('warren bench suite');
  });

  it('suite: runs scenarios against a Warren child process and writes JSON and Markdown', async () => {
    const out = join(work, 'results');
    const r = await warren(
      [
        'bench',
        'suite',
        '--no-rabbitmq',
        '--quick',
        '--duration',
        '1',
        '--management',
        '--only',
        'e2e-16,rpc-seq,mgmt-polled',
        '--out',
        out,
      ],
      120_000,
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('e2e-16');
    expect(r.stdout).toContain('rpc-seq');
    const files = readdirSync(out);
    const json = files.find((f) => f.endsWith('-quick.json'));
    expect(json).toBeDefined();
    expect(existsSync(join(out, json!.replace(/\.json$/, '.md')))).toBe(true);
    const doc = JSON.parse(readFileSync(join(out, json!), 'utf8')) as {
      results: {
        scenario: string;
        metric: string;
        warren: number | null;
        rabbitmq: number | null;
      }[];
    };
    const e2e = doc.results.find((x) => x.scenario === 'e2e-16' && x.metric === 'rate');
    const rpc = doc.results.find((x) => x.scenario === 'rpc-seq' && x.metric === 'p50');
    expect(e2e?.warren).toBeGreaterThan(0);
    expect(rpc?.warren).toBeGreaterThan(0);
    // The management API was polled while the load ran, and answered.
    const kept = doc.results.find((x) => x.scenario === 'mgmt-polled' && x.metric === 'kept');
    const answered = doc.results.find(
      (x) => x.scenario === 'mgmt-polled' && x.metric === 'requests',
    );
    expect(kept?.warren).toBeGreaterThan(0);
    expect(answered?.warren).toBeGreaterThan(0);
    expect(e2e?.rabbitmq).toBeNull();
  });
});
