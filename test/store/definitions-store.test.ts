import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CommitScheduler } from '../../src/store/commit-scheduler.js';
import { DefinitionsStore } from '../../src/store/definitions-store.js';

let dir: string;
let warnings: string[];
const logger = { info: () => undefined, warn: (m: string) => warnings.push(m) };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'warren-defs-'));
  warnings = [];
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('DefinitionsStore', () => {
  it('replays puts and deletes across a reopen', () => {
    const a = new DefinitionsStore(dir, new CommitScheduler(), logger);
    expect(a.load()).toBe(true);
    a.put('queue:/\u0000q1', { durable: true });
    a.put('queue:/\u0000q2', { durable: true });
    a.put('exchange:/\u0000x', { type: 'topic' });
    a.delete('queue:/\u0000q1');
    a.close();
    const b = new DefinitionsStore(dir, new CommitScheduler(), logger);
    expect(b.load()).toBe(false);
    expect(b.entries('queue:').map(([k]) => k)).toEqual(['queue:/\u0000q2']);
    expect(b.get('exchange:/\u0000x')).toEqual({ type: 'topic' });
    b.close();
  });

  it('skips a torn last line and reports it', () => {
    const a = new DefinitionsStore(dir, new CommitScheduler(), logger);
    a.load();
    a.put('user:alice', { tags: [] });
    a.close();
    appendFileSync(join(dir, 'definitions.log'), '1234abcd {"op":"put","key":"user:bo');
    const b = new DefinitionsStore(dir, new CommitScheduler(), logger);
    b.load();
    expect(b.has('user:alice')).toBe(true);
    expect(warnings.some((w) => w.includes('damaged definition record'))).toBe(true);
    b.close();
  });

  it('compacts a log that is mostly history', () => {
    const a = new DefinitionsStore(dir, new CommitScheduler(), logger);
    a.load();
    for (let i = 0; i < 3000; i++) a.put('queue:/\u0000churn', { i });
    a.close();
    const lines = readFileSync(join(dir, 'definitions.log'), 'utf8').split('\n').filter(Boolean);
    expect(lines.length).toBeLessThan(1500);
    const b = new DefinitionsStore(dir, new CommitScheduler(), logger);
    b.load();
    expect(b.get('queue:/\u0000churn')).toEqual({ i: 2999 });
    b.close();
  });
});
