/**
 * A latency histogram in microseconds with log-linear buckets: values below 2^SUB_BITS are exact,
 * above that each power of two is split into 2^SUB_BITS buckets (under 0.8% error). Recording is
 * an index computation and one increment, so a hot loop can record every message. Histograms
 * from several threads merge by adding counts (`counts` travels as a plain typed array).
 */
const SUB_BITS = 7;
const SUB = 1 << SUB_BITS;
/** Up to 2^40 us (12 days); anything larger lands in the last bucket. */
const MAX_EXP = 40;
const BUCKETS = (MAX_EXP - SUB_BITS + 1) * SUB;

export interface LatencySummary {
  /** Samples recorded. */
  count: number;
  /** Percentiles and extremes in microseconds. */
  min: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export class Histogram {
  readonly counts: Float64Array;
  count = 0;
  min = Infinity;
  max = 0;
  sum = 0;

  constructor(counts?: Float64Array) {
    this.counts = counts ?? new Float64Array(BUCKETS);
  }

  /** Record one value in microseconds (negative values, from clock skew, count as 0). */
  record(us: number): void {
    const v = us > 0 ? Math.floor(us) : 0;
    this.counts[bucketOf(v)]!++;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  /** Add another histogram's samples to this one. */
  merge(other: HistogramData): void {
    const c = this.counts;
    const o = other.counts;
    for (let i = 0; i < c.length; i++) c[i]! += o[i]!;
    this.count += other.count;
    this.sum += other.sum;
    if (other.count > 0) {
      this.min = Math.min(this.min, other.min);
      this.max = Math.max(this.max, other.max);
    }
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = 0;
  }

  /** The value at quantile q (0..1), as the upper edge of its bucket, capped at the max seen. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    const c = this.counts;
    for (let i = 0; i < c.length; i++) {
      seen += c[i]!;
      if (seen >= rank) return Math.min(Math.max(upperEdge(i), this.min), this.max);
    }
    return this.max;
  }

  summary(): LatencySummary | null {
    if (this.count === 0) return null;
    return {
      count: this.count,
      min: this.min,
      p50: this.quantile(0.5),
      p90: this.quantile(0.9),
      p99: this.quantile(0.99),
      p999: this.quantile(0.999),
      max: this.max,
      mean: Math.round(this.sum / this.count),
    };
  }

  /** What postMessage carries between threads. */
  data(): HistogramData {
    return { counts: this.counts, count: this.count, sum: this.sum, min: this.min, max: this.max };
  }
}

export interface HistogramData {
  counts: Float64Array;
  count: number;
  sum: number;
  min: number;
  max: number;
}

function bucketOf(v: number): number {
  if (v < SUB) return v;
  if (v < 0x8000_0000) {
    // The common case in integer arithmetic: exponent of the highest bit, then the next bits.
    const shift = 31 - Math.clz32(v) - SUB_BITS;
    return ((shift + 1) << SUB_BITS) + (v >>> shift) - SUB;
  }
  const exp = Math.floor(Math.log2(v));
  if (exp >= MAX_EXP) return BUCKETS - 1;
  const shift = exp - SUB_BITS;
  return (shift + 1) * SUB + Math.floor(v / 2 ** shift) - SUB;
}

function upperEdge(i: number): number {
  if (i < SUB) return i;
  const shift = Math.floor(i / SUB) - 1;
  const sub = i % SUB;
  return (SUB + sub + 1) * 2 ** shift - 1;
}
