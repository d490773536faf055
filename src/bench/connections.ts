import { connect } from '../client/index.js';
import type { Connection } from '../client/index.js';
import { sleep } from './clock.js';
import { readRss } from './proc.js';

export interface ConnectionsResult {
  connections: number;
  /**
   * Broker RSS per open connection (with one channel), bytes: the slope of RSS over the number
   * of connections, read at several counts, so one garbage collection does not decide it.
   */
  rssPerConnection: number | null;
  /**
   * Memory per connection as the broker itself accounts it (RabbitMQ: the connection_* entries
   * of its memory breakdown), bytes: a lower bound of what it costs, and steadier than RSS when
   * the broker's allocators are still returning memory from earlier work. Null if not known.
   */
  accountedPerConnection: number | null;
  /** (connections, RSS, accounted memory) at each reading. */
  readings: { connections: number; rss: number | null; accounted?: number | null }[];
  /** Connections (handshake + channel.open) per second while opening them. */
  openPerSecond: number;
}

/**
 * Open `count` idle connections, each with one channel (what an application holds), in
 * `stages` steps, reading the broker's RSS after each, then close them all.
 */
export async function runConnections(
  url: string,
  count: number,
  brokerPid: number | null,
  collectGarbage: () => Promise<void> = () => Promise.resolve(),
  accounted: () => Promise<number | null> = () => Promise.resolve(null),
  stages = 5,
  batch = 50,
): Promise<ConnectionsResult> {
  const rss = async (): Promise<number | null> => {
    await collectGarbage();
    return brokerPid !== null ? settledRss(brokerPid) : null;
  };
  const readings: ConnectionsResult['readings'] = [
    { connections: 0, rss: await rss(), accounted: await accounted() },
  ];
  const conns: Connection[] = [];
  let openMs = 0;
  try {
    for (let s = 1; s <= stages; s++) {
      const target = Math.round((count * s) / stages);
      const start = performance.now();
      while (conns.length < target) {
        const n = Math.min(batch, target - conns.length);
        const opened = await Promise.all(
          Array.from({ length: n }, async () => {
            const c = await connect(url, {
              reconnect: false,
              connectionName: 'warren-bench idle',
              connectTimeout: 60_000,
            });
            await c.channel();
            return c;
          }),
        );
        conns.push(...opened);
      }
      openMs += performance.now() - start;
      readings.push({ connections: conns.length, rss: await rss(), accounted: await accounted() });
    }
    return {
      connections: count,
      rssPerConnection: slope(readings.map((r) => ({ x: r.connections, y: r.rss }))),
      accountedPerConnection: slope(
        readings.map((r) => ({ x: r.connections, y: r.accounted ?? null })),
      ),
      readings,
      openPerSecond: count / (openMs / 1000),
    };
  } finally {
    for (let i = 0; i < conns.length; i += batch) {
      await Promise.all(conns.slice(i, i + batch).map((c) => c.close().catch(() => undefined)));
    }
  }
}

/**
 * RSS once it stops moving (a broker still returning memory from earlier work, or starting
 * per-connection processes lazily, would skew a single reading): changes under 512 KiB over a
 * second, or whatever it is after 20 s.
 */
async function settledRss(pid: number): Promise<number | null> {
  let prev = readRss(pid);
  for (let i = 0; i < 20 && prev !== null; i++) {
    await sleep(1000);
    const now = readRss(pid);
    if (now === null) return prev;
    if (Math.abs(now - prev) < 512 * 1024) return now;
    prev = now;
  }
  return prev;
}

/** Least-squares slope of memory over connections; null with fewer than two readings. */
function slope(points: { x: number; y: number | null }[]): number | null {
  const p = points.filter((v): v is { x: number; y: number } => v.y !== null);
  if (p.length < 2) return null;
  const mx = p.reduce((a, v) => a + v.x, 0) / p.length;
  const my = p.reduce((a, v) => a + v.y, 0) / p.length;
  let num = 0;
  let den = 0;
  for (const v of p) {
    num += (v.x - mx) * (v.y - my);
    den += (v.x - mx) ** 2;
  }
  return den === 0 ? null : num / den;
}
