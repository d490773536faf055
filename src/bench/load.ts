import { Worker } from 'node:worker_threads';
import { connect, parseAmqpUrl } from '../client/index.js';
import {
  AgentGroup,
  C_CONFIRMED,
  C_CONSUMED,
  C_FINISHED,
  C_PUBLISHED,
  COUNTERS,
  Phase,
  SharedState,
} from './agent.js';
import type { AgentResults, AgentSpec } from './agent.js';
import type { AgentWorkerData, FromWorker, ToWorker } from './agent-worker.js';
import { sleep } from './clock.js';
import { fmtInt, fmtMiB } from './format.js';
import { Histogram } from './histogram.js';
import type { LatencySummary } from './histogram.js';
import type { LoadOptions } from './load-options.js';
import { ProcessMeter, findListeningPid, readMachineBusySeconds, readRss } from './proc.js';

/** What a run measured. Rates are per second over the measured window only. */
export interface LoadResult {
  seconds: number;
  published: number;
  confirmed: number;
  consumed: number;
  publishRate: number;
  confirmRate: number;
  consumeRate: number;
  /** Publish-to-delivery latency (bodies of 8 bytes or more), microseconds. */
  latency: LatencySummary | null;
  /** Publish-to-confirm latency, microseconds. */
  confirmLatency: LatencySummary | null;
  broker: BrokerUsage | null;
  /** CPU of the load generator (all its threads), % of one core. */
  generatorCpu: number;
  /**
   * CPU of the whole machine over the window, % of one core (200 = both cores of two busy).
   * What neither the broker nor the generator used is other load, which skews the numbers.
   */
  machineCpu: number | null;
  errors: string[];
}

export interface BrokerUsage {
  pid: number;
  rssStart: number;
  rssPeak: number;
  rssEnd: number;
  /** CPU over the measured window, % of one core. */
  cpu: number | null;
}

/** A group of agents on the main thread or in a worker, driven the same way. */
interface AgentHost {
  start(): void;
  stop(): Promise<AgentResults>;
  terminate(): Promise<void>;
}

/**
 * Run a load: declare the queues (and exchange), start the publishers and consumers (spread over
 * worker threads so the generator has the cores it needs), warm up, measure, stop, delete what
 * was declared. Throughput comes from shared counters read at the window's edges.
 */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const queues = Array.from({ length: o.queues }, (_, i) =>
    o.queues === 1 ? o.queuePrefix : `${o.queuePrefix}-${i}`,
  );
  const durable = o.durable || o.persistent;
  const admin = await connect(o.url, { reconnect: false, connectionName: 'warren-bench admin' });
  const hosts: AgentHost[] = [];
  try {
    const ch = await admin.channel();
    if (o.exchange !== '') await ch.exchangeDeclare(o.exchange, o.exchangeType, { durable });
    for (const q of queues) {
      await ch.queueDeclare(q, { durable });
      if (o.exchange !== '') {
        await ch.queueBind(q, o.exchange, o.exchangeType === 'fanout' ? '' : q);
      }
    }
    const specs = agentSpecs(o, queues);
    const state = new SharedState(specs.length);
    hosts.push(...(await startHosts(specs, state, o.threads)));

    const pid = o.brokerPid ?? localListener(o.url);
    const meter = pid !== null && readRss(pid) !== null ? new ProcessMeter(pid) : null;
    const rssStart = meter !== null ? (readRss(meter.pid) ?? 0) : 0;

    // Without a warm-up the window opens before anyone starts: agents run in other threads.
    const warm = o.warmup > 0 && o.messages === 0;
    state.phase = warm ? Phase.Warmup : Phase.Measuring;
    let startCounts = snapshot(state);
    let cpuStart = process.cpuUsage();
    let machineStart = readMachineBusySeconds();
    let t0 = performance.now();
    meter?.start();
    for (const h of hosts) h.start();
    if (warm) {
      await sleep(o.warmup * 1000);
      startCounts = snapshot(state);
      cpuStart = process.cpuUsage();
      machineStart = readMachineBusySeconds();
      t0 = performance.now();
      meter?.start();
      state.phase = Phase.Measuring;
    }
    const progress = o.progress ? startProgress(state, meter, t0) : null;
    await waitForEnd(o, state, specs, t0);
    const seconds = (performance.now() - t0) / 1000;
    const endCounts = snapshot(state);
    const cpu = process.cpuUsage(cpuStart);
    const machineEnd = readMachineBusySeconds();
    const brokerCpu = meter?.cpuPercent() ?? null;
    if (progress !== null) clearInterval(progress);
    state.phase = Phase.Stopping;

    const results = await Promise.all(hosts.map((h) => h.stop()));
    meter?.stop();
    const latency = new Histogram();
    const confirmLatency = new Histogram();
    const errors: string[] = [];
    for (const r of results) {
      latency.merge(r.latency);
      confirmLatency.merge(r.confirmLatency);
      errors.push(...r.errors);
    }
    const published = endCounts.published - startCounts.published;
    const confirmed = endCounts.confirmed - startCounts.confirmed;
    const consumed = endCounts.consumed - startCounts.consumed;
    return {
      seconds,
      published,
      confirmed,
      consumed,
      publishRate: published / seconds,
      confirmRate: confirmed / seconds,
      consumeRate: consumed / seconds,
      latency: latency.summary(),
      confirmLatency: confirmLatency.summary(),
      broker:
        meter === null
          ? null
          : {
              pid: meter.pid,
              rssStart,
              rssPeak: meter.peakRss,
              rssEnd: readRss(meter.pid) ?? 0,
              cpu: brokerCpu,
            },
      generatorCpu: ((cpu.user + cpu.system) / 1000 / (seconds * 1000)) * 100,
      machineCpu:
        machineStart !== null && machineEnd !== null
          ? ((machineEnd - machineStart) / seconds) * 100
          : null,
      errors,
    };
  } finally {
    await Promise.all(hosts.map((h) => h.terminate()));
    if (!o.keepQueues) await cleanUp(o.url, queues, o.exchange).catch(() => undefined);
    await admin.close().catch(() => undefined);
  }
}

/** Publishers and consumers, each on queue i mod queues (publishers via the exchange if any). */
function agentSpecs(o: LoadOptions, queues: string[]): AgentSpec[] {
  const specs: AgentSpec[] = [];
  const base = {
    url: o.url,
    size: o.size,
    confirm: o.confirm,
    persistent: o.persistent,
    rate: o.rate,
    messages: o.messages,
    prefetch: o.prefetch,
    ack: o.ack,
  };
  for (let i = 0; i < o.publishers; i++) {
    const q = queues[i % queues.length]!;
    specs.push({
      ...base,
      kind: 'publisher',
      slot: specs.length,
      exchange: o.exchange,
      routingKey: o.exchangeType === 'fanout' && o.exchange !== '' ? '' : q,
      queue: q,
    });
  }
  // With more queues than consumers, every queue still gets one (fanout needs them all drained).
  const consumers = o.consumers > 0 ? Math.max(o.consumers, queues.length) : 0;
  for (let i = 0; i < consumers; i++) {
    specs.push({
      ...base,
      kind: 'consumer',
      slot: specs.length,
      exchange: '',
      routingKey: '',
      queue: queues[i % queues.length]!,
    });
  }
  return specs;
}

/** Spread agents over `threads` workers (round robin), or run them all here with 0. */
async function startHosts(
  specs: AgentSpec[],
  state: SharedState,
  threads: number,
): Promise<AgentHost[]> {
  if (threads === 0) {
    const group = new AgentGroup(specs, state);
    await group.connect();
    return [
      {
        start: () => group.start(),
        stop: () => group.stop(),
        terminate: () => Promise.resolve(),
      },
    ];
  }
  const groups: AgentSpec[][] = Array.from({ length: Math.min(threads, specs.length) }, () => []);
  // Publishers first then consumers, alternating threads, so 1+1 lands on two threads.
  specs.forEach((s, i) => groups[i % groups.length]!.push(s));
  return Promise.all(groups.map((g) => startWorker(g, state, specs.length)));
}

function startWorker(specs: AgentSpec[], state: SharedState, agents: number): Promise<AgentHost> {
  const data: AgentWorkerData = { specs, shared: state.buffer, agents };
  const worker = new Worker(new URL('./agent-worker.js', import.meta.url), { workerData: data });
  let onResults: ((r: AgentResults) => void) | null = null;
  let onError: ((e: Error) => void) | null = null;
  return new Promise((resolve, reject) => {
    onError = reject;
    worker.on('error', (err) => onError?.(err));
    worker.on('exit', (code) => {
      if (code !== 0) onError?.(new Error(`a load worker exited with code ${code}`));
    });
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'ready') {
        resolve({
          start: () => worker.postMessage({ type: 'start' } satisfies ToWorker),
          stop: () =>
            new Promise<AgentResults>((res, rej) => {
              onResults = res;
              onError = rej;
              worker.postMessage({ type: 'stop' } satisfies ToWorker);
            }),
          terminate: async () => {
            await worker.terminate();
          },
        });
      } else if (m.type === 'results') {
        onResults?.(m.results);
      } else {
        onError?.(new Error(m.message));
      }
    });
  });
}

interface Counts {
  published: number;
  confirmed: number;
  consumed: number;
}

function snapshot(s: SharedState): Counts {
  return {
    published: s.total(C_PUBLISHED),
    confirmed: s.total(C_CONFIRMED),
    consumed: s.total(C_CONSUMED),
  };
}

/**
 * The measured window ends after `duration`, or, with `messages`, once every publisher has sent
 * its share and the consumers have everything (or have received nothing new for 2 s).
 */
async function waitForEnd(
  o: LoadOptions,
  state: SharedState,
  specs: AgentSpec[],
  t0: number,
): Promise<void> {
  const end = t0 + o.duration * 1000;
  const publishers = specs.filter((s) => s.kind === 'publisher');
  const consumers = specs.length - publishers.length;
  const fanout = o.exchange !== '' && o.exchangeType === 'fanout' ? o.queues : 1;
  let lastConsumed = -1;
  let lastChange = performance.now();
  while (performance.now() < end) {
    await sleep(Math.min(50, Math.max(1, end - performance.now())));
    if (o.messages === 0) continue;
    const finished = publishers.every((p) => state.counters[p.slot * COUNTERS + C_FINISHED] === 1);
    if (!finished) continue;
    if (consumers === 0) return;
    const consumed = state.total(C_CONSUMED);
    if (consumed >= state.total(C_PUBLISHED) * fanout) return;
    if (consumed !== lastConsumed) {
      lastConsumed = consumed;
      lastChange = performance.now();
    } else if (performance.now() - lastChange > 2000) {
      return;
    }
  }
}

function startProgress(state: SharedState, meter: ProcessMeter | null, t0: number): NodeJS.Timeout {
  let prev = snapshot(state);
  let prevT = t0;
  return setInterval(() => {
    const now = performance.now();
    const c = snapshot(state);
    const dt = (now - prevT) / 1000;
    const rate = (a: number, b: number): string => fmtInt((a - b) / dt);
    const rss = meter?.sample() ?? null;
    process.stdout.write(
      `${((now - t0) / 1000).toFixed(0).padStart(4)} s  sent ${rate(c.published, prev.published)}/s` +
        `  confirmed ${rate(c.confirmed, prev.confirmed)}/s  received ${rate(c.consumed, prev.consumed)}/s` +
        (rss !== null ? `  broker RSS ${fmtMiB(rss)}` : '') +
        '\n',
    );
    prev = c;
    prevT = now;
  }, 1000);
}

/** The broker's pid when the URL points at this machine and /proc shows the listener. */
export function localListener(url: string): number | null {
  const u = parseAmqpUrl(url);
  const host = u.hostname ?? 'localhost';
  if (!['localhost', '127.0.0.1', '::1'].includes(host)) return null;
  return findListeningPid(u.port ?? 5672);
}

async function cleanUp(url: string, queues: string[], exchange: string): Promise<void> {
  const conn = await connect(url, { reconnect: false, connectionName: 'warren-bench cleanup' });
  try {
    const ch = await conn.channel();
    for (const q of queues) await ch.queueDelete(q);
    if (exchange !== '') await ch.exchangeDelete(exchange);
  } finally {
    await conn.close();
  }
}
