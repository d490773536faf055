import { parentPort, workerData } from 'node:worker_threads';
import { connect } from '../client/index.js';
import { monoNow } from './clock.js';
import { Histogram } from './histogram.js';
import type { HistogramData } from './histogram.js';

/** Worker-thread entry for the RPC round-trip benchmark: an echo server or a calling client. */
export type RpcJob =
  | { role: 'server'; url: string; queue: string }
  | {
      role: 'client';
      url: string;
      queue: string;
      size: number;
      concurrency: number;
      warmup: number;
      duration: number;
    };

export type RpcFromWorker =
  | { type: 'ready' }
  | { type: 'measuring' }
  | { type: 'done'; calls: number; seconds: number; latency: HistogramData }
  | { type: 'error'; message: string };

async function serve(job: Extract<RpcJob, { role: 'server' }>): Promise<void> {
  const conn = await connect(job.url, {
    reconnect: false,
    connectionName: 'warren-bench rpc server',
  });
  const server = await conn.rpcServer(job.queue, (req) => req.body, { prefetch: 64 });
  parentPort!.postMessage({ type: 'ready' } satisfies RpcFromWorker);
  await new Promise<void>((resolve) => parentPort!.once('message', () => resolve()));
  await server.close();
  await conn.close();
}

/** `concurrency` loops each making one call at a time; latency is recorded after the warm-up. */
async function call(job: Extract<RpcJob, { role: 'client' }>): Promise<void> {
  const conn = await connect(job.url, {
    reconnect: false,
    connectionName: 'warren-bench rpc client',
  });
  const client = await conn.rpcClient();
  const body = Buffer.alloc(job.size, 0x61);
  const hist = new Histogram();
  const warmEnd = monoNow() + job.warmup * 1000;
  let measureStart = 0;
  let end = Infinity;
  let calls = 0;
  const loop = async (): Promise<void> => {
    for (;;) {
      const t = monoNow();
      if (t >= end) return;
      await client.call(job.queue, body, { timeout: 30_000 });
      const done = monoNow();
      if (t >= measureStart && measureStart !== 0) {
        hist.record((done - t) * 1000);
        calls++;
      } else if (done >= warmEnd && measureStart === 0) {
        measureStart = done;
        end = done + job.duration * 1000;
        parentPort!.postMessage({ type: 'measuring' } satisfies RpcFromWorker);
      }
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, loop));
  const seconds = (end - measureStart) / 1000;
  await client.close();
  await conn.close();
  parentPort!.postMessage({
    type: 'done',
    calls,
    seconds,
    latency: hist.data(),
  } satisfies RpcFromWorker);
}

if (parentPort !== null) {
  const job = workerData as RpcJob;
  (job.role === 'server' ? serve(job) : call(job)).catch((err: unknown) =>
    parentPort!.postMessage({
      type: 'error',
      message: err instanceof Error ? err.message : String(err),
    } satisfies RpcFromWorker),
  );
}
