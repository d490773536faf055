import { Worker } from 'node:worker_threads';
import { connect } from '../client/index.js';
import { Histogram } from './histogram.js';
import type { LatencySummary } from './histogram.js';
import { ProcessMeter, readRss } from './proc.js';
import type { RpcFromWorker, RpcJob } from './rpc-worker.js';

export interface RpcOptions {
  url: string;
  /** Calls in flight (each loop waits for its reply before the next call). */
  concurrency: number;
  size: number;
  warmup: number;
  duration: number;
  brokerPid: number | null;
}

export interface RpcResult {
  calls: number;
  callsPerSecond: number;
  /** Round trip (request published to reply received), microseconds. */
  latency: LatencySummary | null;
  brokerCpu: number | null;
  /** The broker's resident memory at the end of the run, if its process can be seen. */
  brokerRss: number | null;
}

/**
 * Request/reply round trips with the client's RPC helpers (direct reply-to): an echo server and
 * a client in separate worker threads, as two applications would be.
 */
export async function runRpc(o: RpcOptions): Promise<RpcResult> {
  const queue = `warren-bench-rpc-${process.pid}-${Date.now().toString(36)}`;
  const server = spawnJob({ role: 'server', url: o.url, queue });
  let client: JobHandle | null = null;
  try {
    await server.next();
    const meter = o.brokerPid !== null ? new ProcessMeter(o.brokerPid) : null;
    client = spawnJob({
      role: 'client',
      url: o.url,
      queue,
      size: o.size,
      concurrency: o.concurrency,
      warmup: o.warmup,
      duration: o.duration,
    });
    // The broker's CPU is measured from the end of the warm-up, as the latencies are.
    let done = await client.next();
    if (done.type === 'measuring') {
      meter?.start();
      done = await client.next();
    }
    const brokerCpu = meter?.cpuPercent() ?? null;
    const brokerRss = o.brokerPid !== null ? readRss(o.brokerPid) : null;
    meter?.stop();
    if (done.type !== 'done') throw new Error('the RPC client stopped early');
    const h = new Histogram();
    h.merge(done.latency);
    return {
      calls: done.calls,
      callsPerSecond: done.calls / done.seconds,
      latency: h.summary(),
      brokerCpu,
      brokerRss,
    };
  } finally {
    // A client that failed may still be running: it must not keep the process alive.
    if (client !== null) await client.worker.terminate();
    server.worker.postMessage('stop');
    const timer = setTimeout(() => void server.worker.terminate(), 5000);
    await server.exited;
    clearTimeout(timer);
    const conn = await connect(o.url, { reconnect: false });
    await (await conn.channel()).queueDelete(queue).catch(() => 0);
    await conn.close();
  }
}

interface JobHandle {
  worker: Worker;
  next(): Promise<RpcFromWorker>;
  exited: Promise<void>;
}

function spawnJob(job: RpcJob): JobHandle {
  const worker = new Worker(new URL('./rpc-worker.js', import.meta.url), { workerData: job });
  const queue: RpcFromWorker[] = [];
  let waiter: { resolve: (m: RpcFromWorker) => void; reject: (e: Error) => void } | null = null;
  let failure: Error | null = null;
  const deliver = (m: RpcFromWorker): void => {
    if (m.type === 'error') failure = new Error(m.message);
    if (waiter === null) {
      queue.push(m);
      return;
    }
    const w = waiter;
    waiter = null;
    if (failure !== null) w.reject(failure);
    else w.resolve(m);
  };
  worker.on('message', deliver);
  worker.on('error', (err) => deliver({ type: 'error', message: err.message }));
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return {
    worker,
    exited,
    next: () =>
      new Promise<RpcFromWorker>((resolve, reject) => {
        const m = queue.shift();
        if (m !== undefined) {
          if (m.type === 'error') reject(new Error(m.message));
          else resolve(m);
        } else {
          waiter = { resolve, reject };
        }
      }),
  };
}
