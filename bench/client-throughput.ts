/**
 * Client-side throughput: Warren's client vs amqplib vs @cloudamqp/amqp-client, against the same
 * brokers in the same run (a Warren broker in a worker thread, and RabbitMQ on 127.0.0.1:5672 if it
 * is reachable). Reports messages/s and each client's rate as a ratio of the fastest other client.
 *
 * Run (Node 20 cannot run TypeScript directly, so compile the project into a cache directory that
 * still resolves node_modules):
 *
 *   npx tsc -p tsconfig.json --noEmit false --declaration false --sourceMap false \
 *     --outDir node_modules/.cache/warren-bench && \
 *   node node_modules/.cache/warren-bench/bench/client-throughput.js [--count 100000] [--size 64]
 *
 * Bounded: each measurement stops at --count messages or --seconds, whichever comes first.
 */
import { Socket } from 'node:net';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { AMQPClient } from '@cloudamqp/amqp-client';
import amqplib from 'amqplib';
import { Broker } from '../src/broker/index.js';
import { connect } from '../src/client/index.js';

interface Args {
  count: number;
  size: number;
  seconds: number;
  rounds: number;
  prefetch: number;
  window: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    count: 100_000,
    size: 64,
    seconds: 20,
    rounds: 3,
    prefetch: 1000,
    window: 1000,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]!.replace(/^--/, '') as keyof Args;
    const v = Number(argv[i + 1]);
    if (!(key in a) || !Number.isFinite(v) || v <= 0) throw new Error(`bad argument ${argv[i]}`);
    a[key] = v;
  }
  return a;
}

type Op = 'publish' | 'publish-confirm' | 'consume';
const OPS: Op[] = ['publish', 'publish-confirm', 'consume'];
const CLIENTS = ['warren', 'amqplib', 'cloudamqp'] as const;
type ClientName = (typeof CLIENTS)[number];

/** Runs one operation with one client; resolves with the messages handled and the seconds taken. */
type Runner = (url: string, queue: string, args: Args) => Promise<{ n: number; secs: number }>;

const now = (): number => performance.now() / 1000;

// ------------------------------------------------------------------ Warren's client

const warren: Record<Op, Runner> = {
  async publish(url, queue, args) {
    const conn = await connect(url, { reconnect: false });
    const ch = await conn.channel();
    const body = Buffer.alloc(args.size, 120);
    const start = now();
    const deadline = start + args.seconds;
    let n = 0;
    while (n < args.count && (n & 1023 || now() < deadline)) {
      await ch.publish('', queue, body);
      n++;
    }
    await ch.queueCheck(queue);
    const secs = now() - start;
    await conn.close();
    return { n, secs };
  },
  async 'publish-confirm'(url, queue, args) {
    const conn = await connect(url, { reconnect: false });
    const ch = await conn.channel({ confirm: { window: args.window } });
    const body = Buffer.alloc(args.size, 120);
    const start = now();
    const deadline = start + args.seconds;
    let n = 0;
    let batch: Promise<void>[] = [];
    while (n < args.count && (n & 1023 || now() < deadline)) {
      batch.push(ch.publish('', queue, body));
      n++;
      if (batch.length === args.window) {
        await Promise.all(batch);
        batch = [];
      }
    }
    await Promise.all(batch);
    const secs = now() - start;
    await conn.close();
    return { n, secs };
  },
  async consume(url, queue, args) {
    const conn = await connect(url, { reconnect: false });
    const ch = await conn.channel({ prefetch: args.prefetch });
    const total = (await ch.queueCheck(queue)).messageCount;
    const start = now();
    let n = 0;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, args.seconds * 1000);
      void ch.consume(queue, (m) => {
        m.ack();
        if (++n === total) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const secs = now() - start;
    await conn.close();
    return { n, secs };
  },
};

// ------------------------------------------------------------------ amqplib

const amqplibRunners: Record<Op, Runner> = {
  async publish(url, queue, args) {
    const conn = await amqplib.connect(url);
    const ch = await conn.createChannel();
    const body = Buffer.alloc(args.size, 120);
    const start = now();
    const deadline = start + args.seconds;
    let n = 0;
    while (n < args.count && (n & 1023 || now() < deadline)) {
      if (!ch.sendToQueue(queue, body)) await new Promise((r) => ch.once('drain', r));
      n++;
    }
    await ch.checkQueue(queue);
    const secs = now() - start;
    await conn.close();
    return { n, secs };
  },
  async 'publish-confirm'(url, queue, args) {
    const conn = await amqplib.connect(url);
    const ch = await conn.createConfirmChannel();
    const body = Buffer.alloc(args.size, 120);
    const start = now();
    const deadline = start + args.seconds;
    let n = 0;
    let batch: Promise<void>[] = [];
    while (n < args.count && (n & 1023 || now() < deadline)) {
      batch.push(
        new Promise<void>((resolve, reject) => {
          ch.sendToQueue(queue, body, {}, (err) => (err ? reject(err as Error) : resolve()));
        }),
      );
      n++;
      if (batch.length === args.window) {
        await Promise.all(batch);
        batch = [];
      }
    }
    await Promise.all(batch);
    const secs = now() - start;
    await conn.close();
    return { n, secs };
  },
  async consume(url, queue, args) {
    const conn = await amqplib.connect(url);
    const ch = await conn.createChannel();
    await ch.prefetch(args.prefetch);
    const total = (await ch.checkQueue(queue)).messageCount;
    const start = now();
    let n = 0;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, args.seconds * 1000);
      void ch.consume(queue, (m) => {
        if (m === null) return;
        ch.ack(m);
        if (++n === total) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const secs = now() - start;
    await conn.close();
    return { n, secs };
  },
};

// ------------------------------------------------------------------ @cloudamqp/amqp-client

const cloudamqp: Record<Op, Runner> = {
  async publish(url, queue, args) {
    const client = new AMQPClient(url);
    const conn = await client.connect();
    const ch = await conn.channel();
    const body = Buffer.alloc(args.size, 120);
    const start = now();
    const deadline = start + args.seconds;
    let n = 0;
    while (n < args.count && (n & 1023 || now() < deadline)) {
      await ch.basicPublish('', queue, body);
      n++;
    }
    await ch.queueDeclare(queue, { passive: true });
    const secs = now() - start;
    await conn.close();
    return { n, secs };
  },
  async 'publish-confirm'(url, queue, args) {
    const client = new AMQPClient(url);
    const conn = await client.connect();
    const ch = await conn.channel();
    await ch.confirmSelect();
    const body = Buffer.alloc(args.size, 120);
    const start = now();
    const deadline = start + args.seconds;
    let n = 0;
    let batch: Promise<number>[] = [];
    while (n < args.count && (n & 1023 || now() < deadline)) {
      batch.push(ch.basicPublish('', queue, body));
      n++;
      if (batch.length === args.window) {
        await Promise.all(batch);
        batch = [];
      }
    }
    await Promise.all(batch);
    const secs = now() - start;
    await conn.close();
    return { n, secs };
  },
  async consume(url, queue, args) {
    const client = new AMQPClient(url);
    const conn = await client.connect();
    const ch = await conn.channel();
    await ch.basicQos(args.prefetch);
    const total = (await ch.queueDeclare(queue, { passive: true })).messageCount;
    const start = now();
    let n = 0;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, args.seconds * 1000);
      void ch.basicConsume(queue, { noAck: false }, (m) => {
        void m.ack();
        if (++n === total) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const secs = now() - start;
    await conn.close();
    return { n, secs };
  },
};

const RUNNERS: Record<ClientName, Record<Op, Runner>> = {
  warren,
  amqplib: amqplibRunners,
  cloudamqp,
};

// ------------------------------------------------------------------ harness

async function fill(url: string, queue: string, count: number, size: number): Promise<void> {
  const conn = await connect(url, { reconnect: false });
  const ch = await conn.channel({ confirm: { window: 5000 } });
  await ch.queueDelete(queue);
  await ch.queueDeclare(queue);
  const body = Buffer.alloc(size, 120);
  for (let i = 0; i < count; i++) void ch.publish('', queue, body);
  await ch.waitForConfirms();
  await conn.close();
}

async function resetQueue(url: string, queue: string): Promise<void> {
  const conn = await connect(url, { reconnect: false });
  const ch = await conn.channel();
  await ch.queueDelete(queue);
  await ch.queueDeclare(queue);
  await conn.close();
}

async function dropQueue(url: string, queue: string): Promise<void> {
  const conn = await connect(url, { reconnect: false });
  const ch = await conn.channel();
  await ch.queueDelete(queue);
  await conn.close();
}

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('error', () => done(false));
    s.connect(port, host, () => done(true));
  });
}

/** A Warren broker in a worker thread, so that it does not share the client's event loop. */
function startWarrenWorker(): Promise<{ url: string; stop: () => Promise<void> }> {
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { role: 'broker' } });
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (port: number) => {
      resolve({
        url: `amqp://guest:guest@127.0.0.1:${port}`,
        stop: async () => {
          await worker.terminate();
        },
      });
    });
  });
}

async function brokerWorker(): Promise<void> {
  const broker = new Broker({
    port: 0,
    host: '127.0.0.1',
    logLevel: 'warn',
    dataDir: '/tmp/warren-bench',
  });
  await broker.start();
  parentPort!.postMessage(broker.port);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const targets: { name: string; url: string; stop?: () => Promise<void> }[] = [];
  const w = await startWarrenWorker();
  targets.push({ name: 'Warren (worker thread)', url: w.url, stop: w.stop });
  if (await reachable('127.0.0.1', 5672)) {
    targets.push({ name: 'RabbitMQ 127.0.0.1:5672', url: 'amqp://guest:guest@127.0.0.1:5672' });
  }
  console.log(
    `client throughput: ${args.count} messages of ${args.size} B, best of ${args.rounds} rounds, ` +
      `prefetch ${args.prefetch}, confirm window ${args.window}, node ${process.version}`,
  );
  const queue = `warren-bench-${process.pid}`;
  for (const t of targets) {
    console.log(`\n${t.name}`);
    for (const op of OPS) {
      const best: Record<ClientName, number> = { warren: 0, amqplib: 0, cloudamqp: 0 };
      for (let round = 0; round < args.rounds; round++) {
        // Rotate the order so that no client always runs first (warm-up, broker state).
        const order = CLIENTS.map((_, i) => CLIENTS[(i + round) % CLIENTS.length]!);
        for (const client of order) {
          if (op === 'consume') await fill(t.url, queue, args.count, args.size);
          else await resetQueue(t.url, queue);
          const { n, secs } = await RUNNERS[client][op](t.url, queue, args);
          best[client] = Math.max(best[client], n / secs);
        }
      }
      const line = CLIENTS.map((c) => `${c} ${Math.round(best[c]).toLocaleString('en')}/s`).join(
        ', ',
      );
      const fastestOther = Math.max(best.amqplib, best.cloudamqp);
      console.log(
        `  ${op.padEnd(16)} ${line}  ->  warren / fastest other = ${(best.warren / fastestOther).toFixed(2)} ` +
          `(vs amqplib ${(best.warren / best.amqplib).toFixed(2)}, vs cloudamqp ${(best.warren / best.cloudamqp).toFixed(2)})`,
      );
    }
    await dropQueue(t.url, queue);
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
} else if ((workerData as { role?: string } | null)?.role === 'broker') {
  void brokerWorker();
}
