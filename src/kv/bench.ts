import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { KvClient } from './kv-client.js';

export interface KvBenchOptions {
  host?: string | undefined;
  port?: number | undefined;
  /** Client connections (default 50, as redis-benchmark). */
  connections?: number | undefined;
  /** Requests each connection keeps in flight (default 1). */
  pipeline?: number | undefined;
  /** Distinct keys, chosen at random (default 10 000). */
  keys?: number | undefined;
  /** Bytes per value (default 100). */
  valueSize?: number | undefined;
  /** Fraction of requests that are gets, the rest puts (default 0.5). */
  getRatio?: number | undefined;
  /** Stop after this many requests (default 100 000)... */
  requests?: number | undefined;
  /** ...or after this many ms, whichever comes first (default: no limit). */
  duration?: number | undefined;
  /** Put every key once before measuring, so gets find values (default true). */
  preload?: boolean | undefined;
}

export interface LatencyMs {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export interface KvBenchResult {
  ops: number;
  puts: number;
  gets: number;
  notFound: number;
  errors: number;
  seconds: number;
  opsPerSec: number;
  latency: LatencyMs;
}

/**
 * A load generator for the key-value service: `connections` clients, each keeping `pipeline`
 * requests in flight, a mix of gets and puts over a key space, latencies recorded per request.
 */
export async function runKvBench(o: KvBenchOptions = {}): Promise<KvBenchResult> {
  const connections = o.connections ?? 50;
  const pipeline = o.pipeline ?? 1;
  const keys = o.keys ?? 10_000;
  const valueSize = o.valueSize ?? 100;
  const getRatio = o.getRatio ?? 0.5;
  const requests = o.requests ?? 100_000;
  const value = randomBytes(valueSize);
  const keyOf = (n: number): string => `key:${String(n).padStart(12, '0')}`;
  const clients = await Promise.all(
    Array.from({ length: connections }, () => KvClient.connect({ host: o.host, port: o.port })),
  );
  try {
    if (o.preload !== false) {
      let next = 0;
      await Promise.all(
        clients.map(async (c) => {
          // Bounded by the key count.
          for (let k = next++; k < keys; k = next++) await c.put(keyOf(k), value);
        }),
      );
    }
    const latencies = new Float64Array(requests);
    let issued = 0;
    let done = 0;
    let puts = 0;
    let gets = 0;
    let notFound = 0;
    let errors = 0;
    const started = performance.now();
    const stopAt = o.duration !== undefined ? started + o.duration : Infinity;
    const loop = async (c: KvClient): Promise<void> => {
      // Bounded by `requests` and the duration.
      while (issued < requests && performance.now() < stopAt) {
        issued++;
        const key = keyOf(Math.floor(Math.random() * keys));
        const isGet = Math.random() < getRatio;
        const t0 = performance.now();
        try {
          if (isGet) {
            if ((await c.get(key)) === null) notFound++;
            gets++;
          } else {
            await c.put(key, value);
            puts++;
          }
        } catch {
          errors++;
        }
        latencies[done++] = performance.now() - t0;
      }
    };
    await Promise.all(clients.flatMap((c) => Array.from({ length: pipeline }, () => loop(c))));
    const seconds = (performance.now() - started) / 1000;
    const lat = latencies.subarray(0, done).sort();
    const at = (q: number): number =>
      done === 0 ? 0 : lat[Math.min(done - 1, Math.floor(q * done))]!;
    let sum = 0;
    for (const x of lat) sum += x;
    return {
      ops: done,
      puts,
      gets,
      notFound,
      errors,
      seconds,
      opsPerSec: done / seconds,
      latency: {
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        p999: at(0.999),
        max: done === 0 ? 0 : lat[done - 1]!,
        mean: done === 0 ? 0 : sum / done,
      },
    };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

export function formatKvBench(
  o: { connections: number; pipeline: number; keys: number; valueSize: number; getRatio: number },
  r: KvBenchResult,
): string {
  const f = (x: number): string => x.toFixed(2);
  return [
    `kv bench: ${o.connections} connections, pipeline ${o.pipeline}, ${o.keys} keys, ${o.valueSize}-byte values, ${Math.round(o.getRatio * 100)}% gets`,
    `ops: ${r.ops} in ${r.seconds.toFixed(2)} s = ${Math.round(r.opsPerSec)} ops/s (${r.puts} puts, ${r.gets} gets, ${r.notFound} not found, ${r.errors} errors)`,
    `latency ms: p50 ${f(r.latency.p50)}  p90 ${f(r.latency.p90)}  p99 ${f(r.latency.p99)}  p99.9 ${f(r.latency.p999)}  max ${f(r.latency.max)}  mean ${f(r.latency.mean)}`,
    '',
  ].join('\n');
}
