/**
 * Does watching the broker slow it down? Broker throughput (publish with confirms + consume with
 * acks, amqplib in a worker thread) with nobody watching, and with the management API and
 * /metrics polled every --poll-ms by another worker (several open web UI tabs and a Prometheus
 * scraping far more often than usual). Rounds alternate quiet/polled; the result is the ratio.
 * Also times one stats sample and one /api/queues answer with --queues idle queues declared.
 *
 *   npx tsc -p tsconfig.json --noEmit false --declaration false --sourceMap false \
 *     --outDir node_modules/.cache/warren-bench && \
 *   node node_modules/.cache/warren-bench/bench/management-load.js [--seconds 5] [--rounds 3]
 *
 * Bounded: every phase stops after --seconds; the poller stops with its phase.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import amqplib from 'amqplib';
import { Broker } from '../src/broker/index.js';
import { startManagement } from '../src/management/index.js';

interface Args {
  seconds: number;
  rounds: number;
  size: number;
  'poll-ms': number;
  queues: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { seconds: 5, rounds: 3, size: 256, 'poll-ms': 500, queues: 5000 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]!.replace(/^--/, '') as keyof Args;
    const v = Number(argv[i + 1]);
    if (!(key in a) || !Number.isFinite(v) || v <= 0) throw new Error(`bad argument ${argv[i]}`);
    a[key] = v;
  }
  return a;
}

type Job =
  | { kind: 'load'; url: string; seconds: number; size: number }
  | { kind: 'poll'; http: string; seconds: number; pollMs: number };

/** Publishes with confirms and consumes with acks on one queue for `seconds`; returns msgs/s. */
async function load(url: string, seconds: number, size: number): Promise<number> {
  const conn = await amqplib.connect(url);
  const pub = await conn.createConfirmChannel();
  const sub = await conn.createChannel();
  const q = (await pub.assertQueue('', { exclusive: true })).queue;
  await sub.prefetch(500);
  let received = 0;
  await sub.consume(q, (m) => {
    if (m === null) return;
    received++;
    sub.ack(m);
  });
  const body = Buffer.alloc(size, 0x61);
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  while (performance.now() < end) {
    for (let i = 0; i < 200; i++) pub.sendToQueue(q, body);
    await pub.waitForConfirms();
  }
  const secs = (performance.now() - start) / 1000;
  await conn.close();
  return received / secs;
}

/** What the web UI and a scraper request, in a loop, until `seconds` pass. Returns requests. */
async function poll(http: string, seconds: number, pollMs: number): Promise<number> {
  const auth = { authorization: 'Basic ' + Buffer.from('guest:guest').toString('base64') };
  const paths = [
    '/api/overview',
    '/api/warren/history',
    '/api/queues',
    '/api/connections',
    '/api/channels',
    '/api/exchanges',
    '/metrics',
  ];
  const end = Date.now() + seconds * 1000;
  let n = 0;
  while (Date.now() < end) {
    await Promise.all(
      paths.map(async (p) => {
        const r = await fetch(http + p, { headers: auth });
        await r.arrayBuffer();
        n++;
      }),
    );
    await new Promise((r) => setTimeout(r, pollMs));
  }
  return n;
}

function inWorker(job: Job): Promise<number> {
  return new Promise((resolve, reject) => {
    const w = new Worker(fileURLToPath(import.meta.url), { workerData: job });
    w.once('message', (v: number) => resolve(v));
    w.once('error', reject);
  });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const broker = new Broker({ port: 0, host: '127.0.0.1', dataDir: null, logLevel: 'warn' });
  await broker.start();
  const management = await startManagement(broker, { port: 0, host: '127.0.0.1' });
  const url = `amqp://guest:guest@127.0.0.1:${broker.port}`;
  const http = `http://127.0.0.1:${management.port}`;
  const quiet: number[] = [];
  const polled: number[] = [];
  let requests = 0;
  for (let r = 0; r < args.rounds; r++) {
    quiet.push(await inWorker({ kind: 'load', url, seconds: args.seconds, size: args.size }));
    const [rate, n] = await Promise.all([
      inWorker({ kind: 'load', url, seconds: args.seconds, size: args.size }),
      inWorker({ kind: 'poll', http, seconds: args.seconds, pollMs: args['poll-ms'] }),
    ]);
    polled.push(rate);
    requests += n;
  }
  const median = (a: number[]): number => [...a].sort((x, y) => x - y)[a.length >> 1]!;
  const ratio = median(polled) / median(quiet);
  console.log(
    `throughput quiet   ${median(quiet).toFixed(0)} msg/s (rounds: ${quiet.map((v) => v.toFixed(0)).join(', ')})`,
  );
  console.log(
    `throughput polled  ${median(polled).toFixed(0)} msg/s (rounds: ${polled.map((v) => v.toFixed(0)).join(', ')}; ${requests} HTTP requests)`,
  );
  console.log(
    `polled / quiet     ${ratio.toFixed(3)}${ratio < 0.9 ? '  <-- more than 10% slower' : ''}`,
  );

  // The stats collector's cost grows with the number of objects, not with the message rate.
  const v = broker.getVhost('/')!;
  for (let i = 0; i < args.queues; i++) {
    v.declareQueue(
      `idle-${i}`,
      { passive: false, durable: false, exclusive: false, autoDelete: false, arguments: {} },
      { id: -1 },
    );
  }
  let t = performance.now();
  management.stats.sample();
  const sampleMs = performance.now() - t;
  t = performance.now();
  const res = await fetch(`${http}/api/queues`, {
    headers: { authorization: 'Basic ' + Buffer.from('guest:guest').toString('base64') },
  });
  const bytes = (await res.arrayBuffer()).byteLength;
  const listMs = performance.now() - t;
  console.log(
    `stats sample with ${args.queues} queues: ${sampleMs.toFixed(1)} ms (every 5 s by default)`,
  );
  console.log(
    `GET /api/queues with ${args.queues} queues: ${listMs.toFixed(1)} ms, ${bytes} bytes`,
  );
  await management.stop();
  await broker.stop();
}

if (isMainThread) {
  await main();
} else {
  const job = workerData as Job;
  const result =
    job.kind === 'load'
      ? await load(job.url, job.seconds, job.size)
      : await poll(job.http, job.seconds, job.pollMs);
  parentPort!.postMessage(result);
}
