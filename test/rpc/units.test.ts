import { describe, expect, it } from 'vitest';
import { RetryBudget, VersionRange, compareVersions, parseVersion } from '../../src/rpc/index.js';
import { CallTable } from '../../src/rpc/call-table.js';
import type { CachedReply } from '../../src/rpc/call-table.js';
import { backoff, resolveRetry } from '../../src/rpc/retry.js';

describe('version ranges', () => {
  const cases: [string, string[], string[]][] = [
    ['^1.2.0', ['1.2.0', '1.9.9'], ['1.1.9', '2.0.0']],
    ['^0.2.3', ['0.2.3', '0.2.9'], ['0.3.0', '0.2.2']],
    ['~1.2.0', ['1.2.0', '1.2.9'], ['1.3.0']],
    ['1.x', ['1.0.0', '1.99.0'], ['2.0.0', '0.9.0']],
    ['1', ['1.5.0'], ['2.0.0']],
    ['*', ['0.0.1', '9.9.9'], []],
    ['>=1.0.0 <2.0.0', ['1.0.0', '1.9.0'], ['2.0.0', '0.9.9']],
    ['1.2.0 || 2.x', ['1.2.0', '2.3.0'], ['1.3.0']],
    ['1.2.3', ['1.2.3'], ['1.2.4']],
    ['>1.2', ['1.3.0'], ['1.2.9']],
    ['<=1.2', ['1.2.9'], ['1.3.0']],
  ];
  for (const [range, yes, no] of cases) {
    it(`'${range}'`, () => {
      const r = new VersionRange(range);
      for (const x of yes) expect(r.matches(x), x).toBe(true);
      for (const x of no) expect(r.matches(x), x).toBe(false);
    });
  }
  it('orders pre-releases before releases', () => {
    const v = (t: string) => parseVersion(t)!;
    expect(compareVersions(v('1.0.0-alpha'), v('1.0.0'))).toBeLessThan(0);
    expect(compareVersions(v('1.0.0-alpha.1'), v('1.0.0-alpha.beta'))).toBeLessThan(0);
    expect(compareVersions(v('1.0.0-2'), v('1.0.0-10'))).toBeLessThan(0);
    expect(() => new VersionRange('^x.y')).toThrow(/invalid version range/);
  });
});

describe('retry policy and budget', () => {
  it('backs off exponentially up to the cap, with jitter inside its bounds', () => {
    const p = resolveRetry({ initialBackoff: 10, maxBackoff: 100, multiplier: 2, jitter: 0.5 });
    expect([2, 3, 4, 5, 6, 7].map((a) => backoff(p, a, () => 1))).toEqual([
      10, 20, 40, 80, 100, 100,
    ]);
    expect(backoff(p, 3, () => 0)).toBe(10);
    const none = resolveRetry({ initialBackoff: 10, jitter: 0 });
    expect(backoff(none, 2, () => 0.3)).toBe(10);
    expect(resolveRetry(false).maxAttempts).toBe(1);
    expect(() => resolveRetry({ maxAttempts: 0 })).toThrow();
  });

  it('allows retries up to a fraction of calls plus a trickle over time', () => {
    let now = 0;
    const b = new RetryBudget({ ratio: 0.5, minPerSecond: 1, burst: 2 }, () => now);
    expect([b.tryRetry(), b.tryRetry(), b.tryRetry()]).toEqual([true, true, false]);
    b.onCall();
    b.onCall();
    expect(b.tryRetry()).toBe(true);
    expect(b.tryRetry()).toBe(false);
    now += 1000;
    expect(b.tryRetry()).toBe(true);
    expect(b.refused).toBe(2);
  });
});

describe('the at-most-once call table', () => {
  const reply = (n: number): CachedReply => ({ headers: { n }, body: Buffer.from(String(n)) });
  const to = { replyTo: 'r', correlationId: 'c' };

  it('executes a sequence number once and replays its reply', () => {
    const t = new CallTable();
    const a = t.admit('c1', '100-a', 1, 0, to, 0);
    expect(a.kind).toBe('new');
    expect(t.admit('c1', '100-a', 1, 0, { replyTo: 'r2', correlationId: 'c' }, 0)).toEqual({
      kind: 'running',
    });
    if (a.kind !== 'new') throw new Error();
    expect(t.complete(a.entry, reply(1)).map((x) => x.replyTo)).toEqual(['r', 'r2']);
    expect(t.admit('c1', '100-a', 1, 0, to, 0)).toEqual({ kind: 'done', reply: reply(1) });
    expect(t.size).toBe(1);
  });

  it('forgets calls at or below the floor and ignores stragglers there', () => {
    const t = new CallTable();
    for (const seq of [1, 2, 3]) {
      const a = t.admit('c', '1-x', seq, 0, to, 0);
      if (a.kind === 'new') t.complete(a.entry, reply(seq));
    }
    expect(t.size).toBe(3);
    expect(t.admit('c', '1-x', 4, 2, to, 0).kind).toBe('new');
    expect(t.size).toBe(2);
    expect(t.admit('c', '1-x', 2, 2, to, 0)).toEqual({ kind: 'finished' });
  });

  it('tells conversations apart by start time: newer replaces, older is refused', () => {
    const t = new CallTable();
    const a = t.admit('c', '2000-b', 1, 0, to, 0);
    if (a.kind === 'new') t.complete(a.entry, reply(1));
    expect(t.admit('c', '1999-z', 1, 0, to, 0)).toEqual({ kind: 'stale-conversation' });
    expect(t.admit('c', '2001-a', 1, 0, to, 0).kind).toBe('new');
    expect(t.size).toBe(1);
  });

  it('is bounded: refuses new calls when full; forgets silent clients after the retention', () => {
    const t = new CallTable({ maxEntries: 2, retention: 1000 });
    expect(t.admit('a', '1-a', 1, 0, to, 0).kind).toBe('new');
    expect(t.admit('b', '1-b', 1, 0, to, 0).kind).toBe('new');
    expect(t.admit('c', '1-c', 1, 0, to, 0)).toEqual({ kind: 'full' });
    t.sweep(5000); // both still running: kept
    expect(t.size).toBe(2);
    const x = t.admit('a', '1-a', 2, 0, to, 0);
    expect(x.kind).toBe('full');
  });

  it('forgets a call whose handler did nothing, so that a retry executes it', () => {
    const t = new CallTable();
    const a = t.admit('c', '1-x', 1, 0, to, 0);
    if (a.kind !== 'new') throw new Error();
    t.complete(a.entry, reply(0), false);
    expect(t.admit('c', '1-x', 1, 0, to, 0).kind).toBe('new');
  });
});
