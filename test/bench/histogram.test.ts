import { describe, expect, it } from 'vitest';
import { Histogram } from '../../src/bench/histogram.js';

describe('bench Histogram', () => {
  it('reports each value within 1% above it, never below', () => {
    for (const v of [0, 1, 127, 128, 129, 1000, 65_537, 2 ** 31 - 1, 2 ** 31 + 5, 1e12]) {
      const h = new Histogram();
      h.record(v);
      h.record(v * 2 + 10);
      const q = h.quantile(0.5);
      expect(q).toBeGreaterThanOrEqual(v);
      expect(q).toBeLessThanOrEqual(Math.max(v * 1.01, v + 1));
    }
  });

  it('gives percentiles of a uniform spread and exact extremes', () => {
    const h = new Histogram();
    for (let i = 1; i <= 100_000; i++) h.record(i);
    const s = h.summary()!;
    expect(s.count).toBe(100_000);
    expect(s.min).toBe(1);
    expect(s.max).toBe(100_000);
    expect(s.p50 / 50_000).toBeCloseTo(1, 1);
    expect(s.p99 / 99_000).toBeCloseTo(1, 1);
    expect(s.p50).toBeLessThanOrEqual(s.p90);
    expect(s.p90).toBeLessThanOrEqual(s.p99);
    expect(s.p99).toBeLessThanOrEqual(s.max);
  });

  it('merges histograms from several threads as if one had recorded everything', () => {
    const a = new Histogram();
    const b = new Histogram();
    const all = new Histogram();
    for (let i = 0; i < 1000; i++) {
      (i % 2 === 0 ? a : b).record(i * 7);
      all.record(i * 7);
    }
    a.merge(b.data());
    expect(a.summary()).toEqual(all.summary());
    expect(new Histogram().summary()).toBeNull();
  });
});
