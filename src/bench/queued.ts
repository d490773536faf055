import { connect } from '../client/index.js';
import type { Connection } from '../client/index.js';
import { sleep } from './clock.js';
import { runLoad } from './load.js';
import { loadOptions } from './load-options.js';
import { readRss } from './proc.js';

/** How a broker is restarted for the deep-queue scenario. */
export interface RestartControl {
  /** The URL now (Warren's port changes when it is started again). */
  url(): string;
  pid(): number | null;
  /** Graceful stop; resolves with the milliseconds it took. */
  stop(): Promise<number>;
  /**
   * Start again with the same data. Resolves when the start was issued, with a promise for its
   * completion (RabbitMQ's `start_app` returns only after boot; Warren prints its port first).
   */
  start(): Promise<{ done: Promise<unknown> }>;
  /** Optional: crash (kill -9) and start again; Warren only. */
  crash?(): Promise<void>;
}

export interface QueuedResult {
  messages: number;
  /** Broker RSS before publishing and after each step, with the queue depth of each reading. */
  rss: { depth: number; rss: number | null }[];
  publishRate: number;
  stopMs: number;
  /** From issuing the start to the first message consumed. */
  restartMs: number;
  /** Messages in the queue after the restart (all of them should be back). */
  recovered: number;
  rssAfterRestart: number | null;
  /** Warren only: the same after kill -9. */
  crashRestartMs: number | null;
  crashRecovered: number | null;
}

/**
 * Publish `total` persistent 1 KiB messages with confirms to a durable queue, reading the broker's
 * RSS at several depths (memory should stay flat: bodies beyond the budget live on disk), then
 * restart the broker and time how long until a client consumes the first message. The queue is
 * deleted at the end.
 */
export async function runQueued(
  control: RestartControl,
  total: number,
  steps = 4,
): Promise<QueuedResult> {
  const queue = `warren-bench-deep-${process.pid}-${Date.now().toString(36)}`;
  const rss: QueuedResult['rss'] = [];
  const pid0 = control.pid();
  rss.push({ depth: 0, rss: pid0 !== null ? readRss(pid0) : null });
  const start = performance.now();
  let published = 0;
  try {
    for (let s = 0; s < steps; s++) {
      const n = Math.round((total * (s + 1)) / steps) - published;
      const r = await runLoad(
        loadOptions({
          url: control.url(),
          publishers: 1,
          consumers: 0,
          size: 1024,
          persistent: true,
          confirm: 1000,
          messages: n,
          warmup: 0,
          duration: 1800,
          queuePrefix: queue,
          keepQueues: true,
          threads: 1,
          brokerPid: control.pid(),
        }),
      );
      if (r.errors.length > 0) throw new Error(`publishing failed: ${r.errors.join('; ')}`);
      published += r.confirmed;
      await sleep(1000);
      const pid = control.pid();
      rss.push({ depth: published, rss: pid !== null ? readRss(pid) : null });
    }
    const publishRate = published / ((performance.now() - start) / 1000);

    const stopMs = await control.stop();
    const t0 = performance.now();
    const { done } = await control.start();
    const recovered = await firstMessage(control.url(), queue);
    const restartMs = performance.now() - t0;
    await done;
    await sleep(2000);
    const pid = control.pid();
    const rssAfterRestart = pid !== null ? readRss(pid) : null;

    let crashRestartMs: number | null = null;
    let crashRecovered: number | null = null;
    if (control.crash !== undefined) {
      const t1 = performance.now();
      await control.crash();
      crashRecovered = await firstMessage(control.url(), queue);
      crashRestartMs = performance.now() - t1;
    }
    return {
      messages: published,
      rss,
      publishRate,
      stopMs,
      restartMs,
      recovered,
      rssAfterRestart,
      crashRestartMs,
      crashRecovered,
    };
  } finally {
    await deleteQueue(control.url(), queue).catch(() => undefined);
  }
}

/**
 * Connect (retrying while the broker boots), consume one message of `queue` and leave it there;
 * resolves with the queue's depth. A queue not yet recovered answers 404, which is retried too.
 */
async function firstMessage(url: string, queue: string, timeoutMs = 600_000): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown = null;
  while (performance.now() < deadline) {
    let conn: Connection | null = null;
    try {
      conn = await connect(url, { reconnect: false, connectTimeout: 5000 });
      const ch = await conn.channel({ prefetch: 1 });
      await new Promise<void>((resolve, reject) => {
        ch.consume(queue, () => resolve()).catch(reject);
      });
      const depth = (await (await conn.channel()).queueCheck(queue)).messageCount;
      await conn.close();
      // The unacked message went back when the channel closed.
      return depth + 1;
    } catch (err) {
      last = err;
      await conn?.close().catch(() => undefined);
      await sleep(25);
    }
  }
  throw new Error(`no message from '${queue}' within ${timeoutMs} ms: ${String(last)}`);
}

async function deleteQueue(url: string, queue: string): Promise<void> {
  const conn = await connect(url, { reconnect: false });
  try {
    await (await conn.channel()).queueDelete(queue, { timeout: 120_000 });
  } finally {
    await conn.close();
  }
}
