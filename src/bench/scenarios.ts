import type { BrokerUnderTest } from './brokers.js';
import { runConnections } from './connections.js';
import { runLoad } from './load.js';
import { pollManagement } from './management-poll.js';
import type { LoadResult } from './load.js';
import { loadOptions } from './load-options.js';
import type { LoadOptions } from './load-options.js';
import { runQueued } from './queued.js';
import type { RestartControl } from './queued.js';
import { runRpc } from './rpc-load.js';

export type Unit = 'msg/s' | 'calls/s' | 'us' | 'ms' | 'bytes' | 'x';

/**
 * What a target says: Warren's value over RabbitMQ's (`ratio`), or Warren's value alone
 * (`absolute`), compared with `op`.
 */
export interface Target {
  kind: 'ratio' | 'absolute';
  op: '>=' | '<=';
  value: number;
}

export interface MetricDef {
  key: string;
  label: string;
  unit: Unit;
  better: 'higher' | 'lower';
  target?: Target;
  /** The two brokers measure this differently (e.g. RabbitMQ restarts its app, not its VM): no ratio. */
  noRatio?: boolean;
}

/** One run of a scenario against one broker: its metric values and everything measured. */
export interface ScenarioRun {
  values: Record<string, number | null>;
  detail: unknown;
}

export interface SuiteSettings {
  /** Measured seconds of the throughput scenarios. */
  duration: number;
  warmup: number;
  /** Messages for the deep-queue scenario. */
  queued: number;
  /** Idle connections for the connection scenario. */
  connections: number;
  /** Messages for the large-message scenario. */
  largeMessages: number;
}

export interface ScenarioDef {
  id: string;
  title: string;
  /** Run once per suite, not once per round (slow, or changes the broker's state). */
  once?: boolean;
  metrics: MetricDef[];
  run(b: BrokerUnderTest, s: SuiteSettings, dedicated: DedicatedFactory): Promise<ScenarioRun>;
}

/**
 * A broker a memory scenario may have to itself and restart: for Warren a fresh process with its
 * own data directory (no garbage from earlier scenarios in its RSS), for RabbitMQ the shared node.
 */
export type DedicatedFactory = (
  b: BrokerUnderTest,
) => Promise<RestartControl & { dispose(): Promise<void> }>;

const KIB = 1024;

function load(b: BrokerUnderTest, s: SuiteSettings, o: Partial<LoadOptions>): Promise<LoadResult> {
  return runLoad(
    loadOptions({
      url: b.url,
      brokerPid: b.pid(),
      duration: s.duration,
      warmup: s.warmup,
      ...o,
    }),
  );
}

/** Load results as they go into the JSON file (without histograms' bulk). */
function loadDetail(r: LoadResult): unknown {
  return r;
}

function checkErrors(r: LoadResult): void {
  if (r.errors.length > 0) throw new Error(r.errors.join('; '));
}

const throughput = (target?: Target): MetricDef => ({
  key: 'rate',
  label: 'throughput',
  unit: 'msg/s',
  better: 'higher',
  ...(target !== undefined ? { target } : {}),
});

function persistent(inFlight: number, target?: Target): ScenarioDef {
  return {
    id: `persistent-${inFlight}`,
    title: `persistent 1 KiB, confirms, ${inFlight} in flight, 1 consumer`,
    metrics: [
      { ...throughput(target), label: 'confirmed' },
      { key: 'confirmP50', label: 'confirm p50', unit: 'us', better: 'lower' },
    ],
    async run(b, s) {
      const r = await load(b, s, { size: KIB, persistent: true, confirm: inFlight });
      checkErrors(r);
      return {
        values: { rate: r.confirmRate, confirmP50: r.confirmLatency?.p50 ?? null },
        detail: loadDetail(r),
      };
    },
  };
}

function rpc(concurrency: number): ScenarioDef {
  return {
    id: concurrency === 1 ? 'rpc-seq' : `rpc-${concurrency}`,
    title:
      concurrency === 1
        ? 'RPC round trip (direct reply-to), sequential'
        : `RPC round trip (direct reply-to), ${concurrency} in flight`,
    metrics: [
      {
        key: 'p50',
        label: 'latency p50',
        unit: 'us',
        better: 'lower',
        target: { kind: 'ratio', op: '<=', value: 0.5 },
      },
      {
        key: 'p99',
        label: 'latency p99',
        unit: 'us',
        better: 'lower',
        target: { kind: 'ratio', op: '<=', value: 0.5 },
      },
      { key: 'rate', label: 'calls', unit: 'calls/s', better: 'higher' },
    ],
    async run(b, s) {
      const r = await runRpc({
        url: b.url,
        concurrency,
        size: 16,
        warmup: s.warmup,
        duration: s.duration,
        brokerPid: b.pid(),
      });
      return {
        values: {
          p50: r.latency?.p50 ?? null,
          p99: r.latency?.p99 ?? null,
          rate: r.callsPerSecond,
        },
        detail: r,
      };
    },
  };
}

/** The fixed scenario set of `npm run bench`, in the order it runs. */
export const SCENARIOS: ScenarioDef[] = [
  {
    id: 'publish-16',
    title: 'publish only, 16 B, 1 publisher',
    metrics: [throughput()],
    async run(b, s) {
      const r = await load(b, s, { size: 16, consumers: 0 });
      checkErrors(r);
      return { values: { rate: r.publishRate }, detail: loadDetail(r) };
    },
  },
  {
    id: 'e2e-16',
    title: 'end to end, 16 B, 1 publisher / 1 consumer, manual acks',
    metrics: [
      throughput({ kind: 'ratio', op: '>=', value: 3 }),
      { key: 'published', label: 'published', unit: 'msg/s', better: 'higher' },
    ],
    async run(b, s) {
      const r = await load(b, s, { size: 16 });
      checkErrors(r);
      return { values: { rate: r.consumeRate, published: r.publishRate }, detail: loadDetail(r) };
    },
  },
  {
    id: 'e2e-1k',
    title: 'end to end, 1 KiB, 1 publisher / 1 consumer, manual acks',
    metrics: [
      throughput({ kind: 'ratio', op: '>=', value: 2 }),
      { key: 'published', label: 'published', unit: 'msg/s', better: 'higher' },
    ],
    async run(b, s) {
      const r = await load(b, s, { size: KIB });
      checkErrors(r);
      return { values: { rate: r.consumeRate, published: r.publishRate }, detail: loadDetail(r) };
    },
  },
  persistent(1),
  persistent(10),
  persistent(1000, { kind: 'ratio', op: '>=', value: 1 }),
  rpc(1),
  rpc(32),
  {
    id: 'fanout-4',
    title: 'fanout to 4 queues, 16 B, 1 publisher / 4 consumers',
    metrics: [
      { ...throughput({ kind: 'ratio', op: '>=', value: 2 }), label: 'delivered (all queues)' },
      { key: 'published', label: 'published', unit: 'msg/s', better: 'higher' },
    ],
    async run(b, s) {
      const r = await load(b, s, {
        size: 16,
        queues: 4,
        consumers: 4,
        exchange: `warren-bench-fanout-${process.pid}`,
        exchangeType: 'fanout',
        threads: 2,
      });
      checkErrors(r);
      return { values: { rate: r.consumeRate, published: r.publishRate }, detail: loadDetail(r) };
    },
  },
  {
    id: 'mgmt-polled',
    title: 'end to end, 1 KiB, quiet and while the management API is polled hard',
    metrics: [
      { key: 'quiet', label: 'throughput, quiet', unit: 'msg/s', better: 'higher' },
      { key: 'polled', label: 'throughput, API polled', unit: 'msg/s', better: 'higher' },
      { key: 'kept', label: 'polled / quiet', unit: 'x', better: 'higher' },
      { key: 'requests', label: 'API requests answered', unit: 'calls/s', better: 'higher' },
    ],
    async run(b, s) {
      const api = b.managementUrl();
      if (api === null) {
        // Nothing to poll: RabbitMQ's management plugin is off, and then Warren runs without
        // its management server too.
        const none = { quiet: null, polled: null, kept: null, requests: null };
        return { values: none, detail: { skipped: 'no management API' } };
      }
      const quiet = await load(b, s, { size: KIB });
      checkErrors(quiet);
      // Five UI pages' worth of requests every 250 ms, far more than open tabs and a scraper.
      const poller = pollManagement(api, 250);
      const polled = await load(b, s, { size: KIB }).finally(() => poller.stop());
      const counts = poller.counts();
      checkErrors(polled);
      if (counts.failures > 0 && counts.requests === 0) {
        throw new Error(`the management API at ${api} answered no request`);
      }
      return {
        values: {
          quiet: quiet.consumeRate,
          polled: polled.consumeRate,
          kept: quiet.consumeRate > 0 ? polled.consumeRate / quiet.consumeRate : null,
          requests: counts.requests / (s.duration + s.warmup),
        },
        detail: { quiet: loadDetail(quiet), polled: loadDetail(polled), api: counts },
      };
    },
  },
  {
    id: 'connections',
    title: 'idle connections, each with a channel (RSS slope over 5 counts)',
    once: true,
    metrics: [
      { key: 'rssPerConnection', label: 'RSS per connection', unit: 'bytes', better: 'lower' },
      {
        key: 'accountedPerConnection',
        label: 'self-accounted per connection',
        unit: 'bytes',
        better: 'lower',
      },
      { key: 'openRate', label: 'opened', unit: 'calls/s', better: 'higher' },
    ],
    async run(b, s, dedicated) {
      // The suite lowers s.connections for every broker when RabbitMQ cannot take that many.
      const count = s.connections;
      const d = await dedicated(b);
      try {
        const r = await runConnections(
          d.url(),
          count,
          d.pid(),
          () => (b.collectGarbage !== undefined ? b.collectGarbage() : Promise.resolve()),
          () => (b.connectionMemory !== undefined ? b.connectionMemory() : Promise.resolve(null)),
        );
        return {
          values: {
            rssPerConnection: r.rssPerConnection,
            accountedPerConnection: r.accountedPerConnection,
            openRate: r.openPerSecond,
          },
          detail: r,
        };
      } finally {
        await d.dispose();
      }
    },
  },
  {
    id: 'message-64m',
    title: '64 MiB messages, one at a time (confirm, then consume)',
    once: true,
    metrics: [
      { key: 'p50', label: 'publish to delivery p50', unit: 'us', better: 'lower' },
      { key: 'rssGrowth', label: 'peak RSS growth', unit: 'bytes', better: 'lower' },
    ],
    async run(b, s) {
      const r = await load(b, s, {
        size: 64 * 1024 * 1024,
        confirm: 1,
        messages: s.largeMessages,
        warmup: 0,
        duration: 600,
        prefetch: 1,
      });
      checkErrors(r);
      return {
        values: {
          p50: r.latency?.p50 ?? null,
          rssGrowth: r.broker !== null ? r.broker.rssPeak - r.broker.rssStart : null,
        },
        detail: loadDetail(r),
      };
    },
  },
  {
    id: 'queued-1m',
    title: 'deep queue: persistent 1 KiB messages, confirms; restart',
    once: true,
    metrics: [
      {
        key: 'rssFull',
        label: 'RSS at full depth',
        unit: 'bytes',
        better: 'lower',
        target: { kind: 'ratio', op: '<=', value: 0.5 },
      },
      { key: 'rssGrowth', label: 'RSS growth, 1/4 -> full depth', unit: 'bytes', better: 'lower' },
      { key: 'publishRate', label: 'confirmed publishes', unit: 'msg/s', better: 'higher' },
      {
        key: 'restartMs',
        label: 'restart until first message',
        unit: 'ms',
        better: 'lower',
        target: { kind: 'absolute', op: '<=', value: 10_000 },
        // Warren restarts its whole process; RabbitMQ only stop_app/start_app inside a running VM.
        noRatio: true,
      },
      {
        key: 'crashRestartMs',
        label: 'kill -9, until first message',
        unit: 'ms',
        better: 'lower',
        noRatio: true,
      },
    ],
    async run(b, s, dedicated) {
      const control = await dedicated(b);
      try {
        const r = await runQueued(control, s.queued);
        const quarter = r.rss[1]?.rss ?? null;
        const full = r.rss[r.rss.length - 1]?.rss ?? null;
        return {
          values: {
            rssFull: full,
            rssGrowth: quarter !== null && full !== null ? full - quarter : null,
            publishRate: r.publishRate,
            restartMs: r.restartMs,
            crashRestartMs: r.crashRestartMs,
          },
          detail: r,
        };
      } finally {
        await control.dispose();
      }
    },
  },
];
