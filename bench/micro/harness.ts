/**
 * A minimal micro-benchmark harness: each case runs in batches until `seconds` have passed
 * (after a warm-up that lets the JIT settle) and reports operations per second and nanoseconds
 * per operation. The best of three timing windows is kept, which filters out GC pauses and
 * scheduling noise better than a mean would.
 */
export interface MicroCase {
  name: string;
  /** Operations one call of `run` performs. */
  ops: number;
  run(): void;
}

export interface MicroResult {
  name: string;
  opsPerSecond: number;
  nsPerOp: number;
}

let sink = 0;

/** Keep a value alive so the JIT cannot drop the work that produced it. */
export function consume(v: number): void {
  sink = (sink + v) | 0;
}

export function measure(c: MicroCase, seconds = 1, warmup = 0.3): MicroResult {
  const until = (s: number): number => {
    const end = performance.now() + s * 1000;
    let calls = 0;
    while (performance.now() < end) {
      c.run();
      calls++;
    }
    return calls;
  };
  until(warmup);
  let best = 0;
  for (let w = 0; w < 3; w++) {
    const start = performance.now();
    const calls = until(seconds / 3);
    const rate = (calls * c.ops) / ((performance.now() - start) / 1000);
    if (rate > best) best = rate;
  }
  return { name: c.name, opsPerSecond: best, nsPerOp: 1e9 / best };
}

export function report(results: MicroResult[]): void {
  const width = Math.max(...results.map((r) => r.name.length));
  for (const r of results) {
    process.stdout.write(
      `${r.name.padEnd(width)}  ${Math.round(r.opsPerSecond).toLocaleString('en-US').padStart(14)} ops/s  ${r.nsPerOp.toFixed(1).padStart(9)} ns/op\n`,
    );
  }
  if (sink === 0.5) process.stdout.write('');
}
