/**
 * RPC latency and throughput: warren/rpc (typed stubs, schema validation on both sides, registry
 * binding) next to a plain amqplib request/reply loop (direct reply-to, correlation ids, no
 * validation) on the same broker in the same run. Brokers: a Warren broker in a worker thread, and
 * RabbitMQ on 127.0.0.1:5672 if it is reachable. Each server runs in its own worker thread, like a
 * separate application.
 *
 * Reports sequential call latency (p50, p99) and calls/s with 32 calls in flight.
 *
 * Run (Node 20 cannot run TypeScript directly):
 *
 *   npx tsc -p tsconfig.json --noEmit false --declaration false --sourceMap false \
 *     --outDir node_modules/.cache/warren-bench && cp package.json node_modules/.cache/warren-bench/ && \
 *   node node_modules/.cache/warren-bench/bench/rpc-latency.js [--calls 5000] [--inflight 32] [--seconds 10] [--rounds 3]
 *
 * Bounded: each measurement stops after --calls calls or --seconds, whichever comes first.
 */
import { randomBytes } from 'node:crypto';
import { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import amqplib from 'amqplib';
import { Broker } from '../src/broker/index.js';
import { connect } from '../src/client/index.js';
import { defineService, rpcEndpoint, s } from '../src/rpc/index.js';

interface Args {
  calls: number;
  inflight: number;
  seconds: number;
  warmup: number;
  rounds: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { calls: 5000, inflight: 32, seconds: 10, warmup: 500, rounds: 3 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]!.replace(/^--/, '') as keyof Args;
    const v = Number(argv[i + 1]);
    if (!(key in a) || !Number.isFinite(v) || v <= 0) throw new Error(`bad argument ${argv[i]}`);
    a[key] = v;
  }
  return a;
}

const Echo = defineService({
  name: 'bench-echo',
  version: '1.0.0',
  methods: {
    echo: {
      args: s.object({ n: s.int(), text: s.string() }),
      result: s.object({ n: s.int(), text: s.string() }),
    },
  },
});

/** A client under test: one call, resolved when its reply arrived. */
interface Caller {
  call(n: number): Promise<void>;
  close(): Promise<void>;
}

// ------------------------------------------------------------------ servers (worker threads)

interface ServerJob {
  role: 'warren-server' | 'amqplib-server';
  url: string;
  namespace: string;
  queue: string;
}

async function warrenServer(job: ServerJob): Promise<void> {
  const conn = await connect(job.url, { reconnect: false });
  const ep = await rpcEndpoint(conn, { namespace: job.namespace });
  await ep.serve(Echo, { echo: (a) => a }, { concurrency: 256 });
  parentPort!.postMessage('ready');
}

async function amqplibServer(job: ServerJob): Promise<void> {
  const conn = await amqplib.connect(job.url, { noDelay: true });
  const ch = await conn.createChannel();
  await ch.assertQueue(job.queue, { autoDelete: true });
  await ch.prefetch(256);
  await ch.consume(job.queue, (m) => {
    if (m === null) return;
    ch.sendToQueue(m.properties.replyTo as string, m.content, {
      correlationId: m.properties.correlationId as string,
    });
    ch.ack(m);
  });
  parentPort!.postMessage('ready');
}

function startServer(job: ServerJob): Promise<Worker> {
  const w = new Worker(fileURLToPath(import.meta.url), { workerData: job });
  return new Promise((resolve, reject) => {
    w.once('error', reject);
    w.once('message', () => resolve(w));
  });
}

// ------------------------------------------------------------------ clients

async function warrenCaller(url: string, namespace: string): Promise<Caller> {
  const conn = await connect(url, { reconnect: false });
  const ep = await rpcEndpoint(conn, { namespace });
  const echo = await ep.bind(Echo);
  const text = 'x'.repeat(32);
  return {
    async call(n) {
      const r = await echo.echo({ n, text });
      if (r.n !== n) throw new Error('wrong reply');
    },
    async close() {
      await ep.close();
      await conn.close();
    },
  };
}

async function amqplibCaller(url: string, queue: string): Promise<Caller> {
  const conn = await amqplib.connect(url, { noDelay: true });
  const ch = await conn.createChannel();
  const pending = new Map<string, (b: Buffer) => void>();
  await ch.consume(
    'amq.rabbitmq.reply-to',
    (m) => {
      if (m === null) return;
      const id = m.properties.correlationId as string;
      const r = pending.get(id);
      pending.delete(id);
      r?.(m.content);
    },
    { noAck: true },
  );
  const text = 'x'.repeat(32);
  let counter = 0;
  return {
    call(n) {
      const id = (++counter).toString(36);
      return new Promise<void>((resolve, reject) => {
        pending.set(id, (b) => {
          const r = JSON.parse(b.toString()) as { n: number };
          if (r.n === n) resolve();
          else reject(new Error('wrong reply'));
        });
        ch.sendToQueue(queue, Buffer.from(JSON.stringify({ n, text })), {
          replyTo: 'amq.rabbitmq.reply-to',
          correlationId: id,
          contentType: 'application/json',
        });
      });
    },
    async close() {
      await conn.close();
    },
  };
}

// ------------------------------------------------------------------ measurement

interface Result {
  p50: number;
  p99: number;
  callsPerSecond: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function measure(c: Caller, a: Args): Promise<Result> {
  for (let i = 0; i < a.warmup; i++) await c.call(i);
  const lat: number[] = [];
  let deadline = performance.now() + a.seconds * 1000;
  for (let i = 0; i < a.calls && performance.now() < deadline; i++) {
    const t = performance.now();
    await c.call(i);
    lat.push(performance.now() - t);
  }
  lat.sort((x, y) => x - y);
  let done = 0;
  deadline = performance.now() + a.seconds * 1000;
  const total = a.calls * 4;
  const start = performance.now();
  let issued = 0;
  const lane = async (): Promise<void> => {
    while (issued < total && performance.now() < deadline) {
      await c.call(issued++);
      done++;
    }
  };
  await Promise.all(Array.from({ length: a.inflight }, lane));
  const secs = (performance.now() - start) / 1000;
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), callsPerSecond: done / secs };
}

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = new Socket();
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once('error', () => done(false));
    sock.connect(port, host, () => done(true));
  });
}

async function brokerWorker(): Promise<void> {
  const broker = new Broker({
    port: 0,
    host: '127.0.0.1',
    logLevel: 'warn',
    dataDir: `/tmp/warren-bench-rpc-${process.pid}`,
  });
  await broker.start();
  parentPort!.postMessage(broker.port);
}

function startBroker(): Promise<{ url: string; stop: () => Promise<void> }> {
  const w = new Worker(fileURLToPath(import.meta.url), { workerData: { role: 'broker' } });
  return new Promise((resolve, reject) => {
    w.once('error', reject);
    w.once('message', (port: number) =>
      resolve({
        url: `amqp://guest:guest@127.0.0.1:${port}`,
        stop: async () => void (await w.terminate()),
      }),
    );
  });
}

const fmt = (ms: number): string => `${(ms * 1000).toFixed(0)} µs`;

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const targets: { name: string; url: string; stop?: () => Promise<void> }[] = [];
  const b = await startBroker();
  targets.push({ name: 'Warren (worker thread)', url: b.url, stop: b.stop });
  if (await reachable('127.0.0.1', 5672)) {
    targets.push({ name: 'RabbitMQ 127.0.0.1:5672', url: 'amqp://guest:guest@127.0.0.1:5672' });
  }
  console.log(
    `RPC latency: ${a.calls} sequential calls (after ${a.warmup} warm-up), then ${a.calls * 4} calls ${a.inflight} in flight; best of ${a.rounds} rounds; node ${process.version}`,
  );
  for (const t of targets) {
    console.log(`\n${t.name}`);
    const id = randomBytes(4).toString('hex');
    const namespace = `warren-bench-rpc.${id}`;
    const queue = `warren-bench-amqplib-rpc.${id}`;
    const servers = [
      await startServer({ role: 'warren-server', url: t.url, namespace, queue }),
      await startServer({ role: 'amqplib-server', url: t.url, namespace, queue }),
    ];
    const candidates = [
      ['amqplib reply_to loop', () => amqplibCaller(t.url, queue)],
      ['warren/rpc at-least-once', () => warrenCaller(t.url, namespace)],
    ] as const;
    // Best of several rounds, alternating which client goes first (warm-up, broker state).
    const best: Result[] = [
      { p50: Infinity, p99: Infinity, callsPerSecond: 0 },
      { p50: Infinity, p99: Infinity, callsPerSecond: 0 },
    ];
    for (let round = 0; round < a.rounds; round++) {
      for (const i of round % 2 === 0 ? [0, 1] : [1, 0]) {
        const c = await candidates[i]![1]();
        const r = await measure(c, a);
        await c.close();
        const b = best[i]!;
        b.p50 = Math.min(b.p50, r.p50);
        b.p99 = Math.min(b.p99, r.p99);
        b.callsPerSecond = Math.max(b.callsPerSecond, r.callsPerSecond);
      }
    }
    candidates.forEach(([name], i) => {
      const r = best[i]!;
      console.log(
        `  ${name.padEnd(26)} p50 ${fmt(r.p50).padStart(8)}  p99 ${fmt(r.p99).padStart(8)}  ${Math.round(r.callsPerSecond).toLocaleString('en').padStart(8)} calls/s at ${a.inflight} in flight`,
      );
    });
    const [base, ours] = [best[0]!, best[1]!];
    console.log(
      `  warren/rpc / amqplib: p50 x${(ours.p50 / base.p50).toFixed(2)}, p99 x${(ours.p99 / base.p99).toFixed(2)}, throughput x${(ours.callsPerSecond / base.callsPerSecond).toFixed(2)}`,
    );
    for (const w of servers) await w.terminate();
    await t.stop?.();
  }
}

if (isMainThread) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
} else {
  const job = workerData as ServerJob | { role: 'broker' };
  if (job.role === 'broker') void brokerWorker();
  else if (job.role === 'warren-server') void warrenServer(job);
  else void amqplibServer(job);
}
