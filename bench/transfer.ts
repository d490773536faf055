/**
 * Large transfers: MB/s and peak RSS of both ends for a payload (default 4 GiB) generated on the
 * fly and sent with warren/transfer through a standalone Warren and through RabbitMQ, next to a
 * single 64 MiB plain AMQP message (publish with confirm, consume) on each. Every party runs in
 * its own process (this script, started again with a role): the broker (Warren), the sender and
 * the receiver, so each RSS is its own.
 *
 * Run (Node 20 cannot run TypeScript directly, so compile the project into a cache directory that
 * still resolves node_modules):
 *
 *   npx tsc -p tsconfig.json --noEmit false --declaration false --sourceMap false \
 *     --outDir node_modules/.cache/warren-bench && \
 *   cp package.json node_modules/.cache/warren-bench/ && \
 *   node node_modules/.cache/warren-bench/bench/transfer.js [--size 4294967296] [--rounds 1] \
 *     [--chunk 65536] [--window 32] [--plain-rounds 3] [--no-rabbitmq]
 *
 * (The broker reads its version from the package.json next to its src/, hence the copy.)
 * RabbitMQ is expected on 127.0.0.1:5672 (its default max message size, 128 MiB in 3.10, admits
 * the 64 MiB message). Bounded: one transfer per round and target; each child is killed after
 * --limit seconds (default 900).
 */
import { spawn } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Broker } from '../src/broker/index.js';
import { connect } from '../src/client/index.js';
import { TransferEndpoint } from '../src/transfer/index.js';

const SELF = fileURLToPath(import.meta.url);
const RABBITMQ_URL = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const PLAIN_SIZE = 64 * 1024 * 1024;

interface Args {
  size: number;
  rounds: number;
  chunk: number;
  window: number;
  plainRounds: number;
  rabbitmq: boolean;
  limit: number;
  stream: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    size: 4 * 1024 ** 3,
    rounds: 1,
    chunk: 65536,
    window: 32,
    plainRounds: 3,
    rabbitmq: true,
    limit: 900,
    stream: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--no-rabbitmq') a.rabbitmq = false;
    else if (flag === '--stream') a.stream = true;
    else {
      const key = flag.replace(/^--/, '').replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
      const v = Number(argv[++i]);
      if (!(key in a) || !Number.isFinite(v) || v <= 0) throw new Error(`bad argument ${flag}`);
      (a as unknown as Record<string, number>)[key] = v;
    }
  }
  return a;
}

// ------------------------------------------------------------------ child roles

function status(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(
    readFileSync('/proc/self/status', 'utf8'),
  );
  return m === null ? -1 : Number(m[1]) * 1024;
}

/** The payload: an AES-128-CTR keystream, reproducible at any offset. */
function generate(offset: number, length: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(Math.floor(offset / 16)), 8);
  const skip = offset % 16;
  return createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), iv)
    .update(Buffer.alloc(skip + length))
    .subarray(skip);
}

function report(o: object): void {
  process.stdout.write(`${JSON.stringify({ ...o, peak: status('VmHWM') })}\n`);
}

async function role(name: string, args: string[]): Promise<void> {
  if (name === 'broker') {
    const dataDir = args[0]!;
    const broker = new Broker({ port: 0, host: '127.0.0.1', logLevel: 'warn', dataDir });
    await broker.start();
    process.stdout.write(`listening ${broker.port}\n`);
    process.stdin.resume();
    process.stdin.on('end', () => void broker.stop().then(() => process.exit(0)));
    return;
  }
  const url = args[0]!;
  const queue = args[1]!;
  const conn = await connect(url, { connectionName: `bench-transfer-${name}` });
  if (name === 'send') {
    const [size, chunkSize, window, kind] = args.slice(2).map(Number) as [
      number,
      number,
      number,
      number,
    ];
    const ep = await TransferEndpoint.open(conn, {
      chunkSize,
      senderWindow: Math.max(window, 128),
    });
    let source;
    if (kind === 1) {
      let made = 0;
      source = new Readable({
        read() {
          if (made >= size) {
            this.push(null);
            return;
          }
          const n = Math.min(65536, size - made);
          this.push(generate(made, n));
          made += n;
        },
      });
    } else {
      source = { size, read: generate };
    }
    const baseline = status('VmRSS');
    const t = await ep.send(queue, source);
    const summary = await t.done;
    report({ summary, baseline });
    await ep.close();
  } else if (name === 'receive') {
    const window = Number(args[2]);
    const ep = await TransferEndpoint.open(conn, { window });
    const listener = await ep.accept(queue);
    const baseline = status('VmRSS');
    const next = await listener.next();
    await listener.close();
    if (next.done === true) throw new Error('no transfer');
    const hash = createHash('sha256');
    for await (const chunk of next.value.stream()) hash.update(chunk as Buffer);
    const summary = await next.value.done;
    report({ summary, baseline, sha256: hash.digest('hex') });
    await ep.close();
  } else if (name === 'plain-consume') {
    const ch = await conn.channel({ prefetch: 1 });
    await ch.queueDeclare(queue, { autoDelete: true });
    const got = new Promise<{ at: number; bytes: number }>((resolve) => {
      void ch.consume(queue, (m) => {
        resolve({ at: Date.now(), bytes: m.body.length });
        m.ack();
      });
    });
    const baseline = status('VmRSS');
    process.stdout.write('ready\n');
    const r = await got;
    report({ ...r, baseline });
  } else if (name === 'plain-publish') {
    const ch = await conn.channel({ confirm: true });
    // Before the body exists: a plain message is all in memory, and that is part of its cost.
    const baseline = status('VmRSS');
    const body = randomBytes(PLAIN_SIZE);
    const at = Date.now();
    await ch.sendToQueue(queue, body);
    report({ at, confirmedAt: Date.now(), baseline });
  }
  await conn.close();
}

// ------------------------------------------------------------------ the run

interface Child {
  lines: AsyncIterator<string>;
  done: Promise<void>;
  stdinEnd(): void;
}

function child(roleName: string, args: string[], limitS: number): Child {
  const p = spawn(process.execPath, [SELF, '--role', roleName, ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const timer = setTimeout(() => p.kill('SIGKILL'), limitS * 1000);
  const queue: string[] = [];
  const waiters: ((r: IteratorResult<string>) => void)[] = [];
  let ended = false;
  let buf = '';
  p.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i !== -1; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiters.shift();
      if (w !== undefined) w({ value: line, done: false });
      else queue.push(line);
    }
  });
  const done = new Promise<void>((resolve, reject) => {
    p.on('close', (code) => {
      clearTimeout(timer);
      ended = true;
      for (const w of waiters.splice(0)) w({ value: undefined, done: true });
      if (code === 0 || roleName === 'broker') resolve();
      else reject(new Error(`${roleName} exited with ${code}`));
    });
  });
  return {
    lines: {
      next: () =>
        queue.length > 0
          ? Promise.resolve({ value: queue.shift()!, done: false })
          : ended
            ? Promise.resolve({ value: undefined, done: true })
            : new Promise((r) => waiters.push(r)),
    },
    done,
    stdinEnd: () => p.stdin.end(),
  };
}

async function line(c: Child): Promise<string> {
  const r = await c.lines.next();
  if (r.done === true) throw new Error('child ended early');
  return r.value;
}

interface Row {
  what: string;
  via: string;
  mbs: number;
  senderPeak: number;
  senderGrowth: number;
  receiverPeak: number;
  receiverGrowth: number;
}

interface Report {
  peak: number;
  baseline: number;
  summary?: { elapsed: number; bytes: number; sha256: string };
  sha256?: string;
  at?: number;
  bytes?: number;
}

async function transfer(url: string, via: string, a: Args): Promise<Row> {
  const queue = `bench-transfer-${randomBytes(4).toString('hex')}`;
  const r = child('receive', [url, queue, String(a.window)], a.limit);
  const s = child(
    'send',
    [url, queue, String(a.size), String(a.chunk), String(a.window), a.stream ? '1' : '0'],
    a.limit,
  );
  const [sl, rl] = await Promise.all([line(s), line(r)]);
  await Promise.all([s.done, r.done]);
  const sr = JSON.parse(sl) as Report;
  const rr = JSON.parse(rl) as Report;
  if (rr.sha256 !== sr.summary!.sha256 || rr.summary!.bytes !== a.size) {
    throw new Error(`transfer through ${via} delivered wrong data`);
  }
  await deleteQueue(url, queue);
  return {
    what: `transfer ${gib(a.size)}${a.stream ? ' (stream)' : ''}`,
    via,
    mbs: a.size / 1e6 / (rr.summary!.elapsed / 1000),
    senderPeak: sr.peak,
    senderGrowth: sr.peak - sr.baseline,
    receiverPeak: rr.peak,
    receiverGrowth: rr.peak - rr.baseline,
  };
}

async function plain(url: string, via: string, a: Args): Promise<Row> {
  const queue = `bench-plain-${randomBytes(4).toString('hex')}`;
  const c = child('plain-consume', [url, queue], a.limit);
  await line(c);
  const p = child('plain-publish', [url, queue], a.limit);
  const [pl, cl] = await Promise.all([line(p), line(c)]);
  await Promise.all([p.done, c.done]);
  const pr = JSON.parse(pl) as Report;
  const cr = JSON.parse(cl) as Report;
  if (cr.bytes !== PLAIN_SIZE) throw new Error(`the 64 MiB message through ${via} arrived wrong`);
  return {
    what: 'one 64 MiB message',
    via,
    mbs: PLAIN_SIZE / 1e6 / ((cr.at! - pr.at!) / 1000),
    senderPeak: pr.peak,
    senderGrowth: pr.peak - pr.baseline,
    receiverPeak: cr.peak,
    receiverGrowth: cr.peak - cr.baseline,
  };
}

async function deleteQueue(url: string, queue: string): Promise<void> {
  const c = await connect(url, { reconnect: false });
  const ch = await c.channel();
  await ch.queueDelete(queue).catch(() => 0);
  await c.close();
}

function gib(n: number): string {
  return n >= 1024 ** 3
    ? `${(n / 1024 ** 3).toFixed(n % 1024 ** 3 === 0 ? 0 : 1)} GiB`
    : `${Math.round(n / 1024 ** 2)} MiB`;
}

const mib = (n: number): string => (n / 1024 ** 2).toFixed(0);

function median(rows: Row[]): Row {
  const sorted = [...rows].sort((x, y) => x.mbs - y.mbs);
  const m = sorted[Math.floor(sorted.length / 2)]!;
  return {
    ...m,
    senderPeak: Math.max(...rows.map((r) => r.senderPeak)),
    senderGrowth: Math.max(...rows.map((r) => r.senderGrowth)),
    receiverPeak: Math.max(...rows.map((r) => r.receiverPeak)),
    receiverGrowth: Math.max(...rows.map((r) => r.receiverGrowth)),
  };
}

function rabbitmqReachable(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(2000, () => done(false));
    s.once('error', () => done(false));
    s.connect(5672, '127.0.0.1', () => done(true));
  });
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const dataDir = mkdtempSync(join(tmpdir(), 'warren-bench-transfer-'));
  const broker = child('broker', [dataDir], a.limit * 4);
  const port = Number((await line(broker)).split(' ')[1]);
  const targets: [string, string][] = [['warren', `amqp://guest:guest@127.0.0.1:${port}`]];
  if (a.rabbitmq && (await rabbitmqReachable())) targets.push(['rabbitmq', RABBITMQ_URL]);
  else if (a.rabbitmq)
    process.stderr.write('RabbitMQ is not reachable on 127.0.0.1:5672; Warren only\n');
  const rows: Row[] = [];
  try {
    for (const [via, url] of targets) {
      const t: Row[] = [];
      for (let i = 0; i < a.rounds; i++) t.push(await transfer(url, via, a));
      rows.push(median(t));
      const p: Row[] = [];
      for (let i = 0; i < a.plainRounds; i++) p.push(await plain(url, via, a));
      rows.push(median(p));
    }
  } finally {
    broker.stdinEnd();
    await broker.done;
    rmSync(dataDir, { recursive: true, force: true });
  }
  process.stdout.write(
    `chunk ${a.chunk} B, receiver window ${a.window} chunks; MB/s = 10^6 bytes/s (median of rounds); ` +
      `RSS in MiB (peak, and growth over the process's RSS before the transfer; worst of rounds)\n\n`,
  );
  const head = ['what', 'via', 'MB/s', 'sender peak', 'growth', 'receiver peak', 'growth'];
  const table = rows.map((r) => [
    r.what,
    r.via,
    r.mbs.toFixed(0),
    mib(r.senderPeak),
    mib(r.senderGrowth),
    mib(r.receiverPeak),
    mib(r.receiverGrowth),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  for (const row of [head, ...table]) {
    process.stdout.write(
      `${row.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')}\n`,
    );
  }
}

const roleAt = process.argv.indexOf('--role');
if (roleAt !== -1) {
  await role(process.argv[roleAt + 1]!, process.argv.slice(roleAt + 2));
} else {
  await main();
}
