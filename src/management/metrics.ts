import type { Broker } from '../broker/index.js';
import { VERSION } from '../version.js';
import { DISK_FREE_LIMIT, resources } from './controllers/overview.js';
import { queueMemory } from './controllers/queues.js';
import type { StatsCollector } from './stats.js';

type Labels = Record<string, string>;

/**
 * Prometheus text exposition format (version 0.0.4), written by hand: one HELP and TYPE line per
 * family, then its samples. Cheap to produce: it reads the same counters as the HTTP API.
 */
class Exposition {
  private readonly lines: string[] = [];

  family(
    name: string,
    type: 'gauge' | 'counter',
    help: string,
    samples: [Labels, number][] | number,
  ): void {
    this.lines.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
    this.lines.push(`# TYPE ${name} ${type}`);
    const list: [Labels, number][] = typeof samples === 'number' ? [[{}, samples]] : samples;
    for (const [labels, value] of list)
      this.lines.push(`${name}${labelText(labels)} ${num(value)}`);
  }

  /** A summary without quantiles: only _count and _sum. */
  summary(name: string, help: string, count: number, sum: number): void {
    this.lines.push(`# HELP ${name} ${help}`);
    this.lines.push(`# TYPE ${name} summary`);
    this.lines.push(`${name}_sum ${num(sum)}`);
    this.lines.push(`${name}_count ${num(count)}`);
  }

  text(): string {
    return this.lines.join('\n') + '\n';
  }
}

function labelText(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  const parts = keys.map((k) => `${k}="${escapeLabel(labels[k]!)}"`);
  return `{${parts.join(',')}}`;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export function renderMetrics(broker: Broker, stats: StatsCollector): string {
  const m = new Exposition();
  const r = resources(broker);
  m.family('warren_build_info', 'gauge', 'Warren version; always 1.', [[{ version: VERSION }, 1]]);
  m.family(
    'warren_uptime_seconds',
    'gauge',
    'Seconds since the broker was created.',
    (Date.now() - broker.startedAt) / 1000,
  );
  m.family(
    'warren_process_resident_memory_bytes',
    'gauge',
    'Resident set size of the broker process.',
    r.memUsed,
  );
  m.family('warren_memory_limit_bytes', 'gauge', 'Memory high watermark (40% of RAM).', r.memLimit);
  m.family(
    'warren_disk_free_bytes',
    'gauge',
    'Free space on the data directory filesystem.',
    r.diskFree,
  );
  m.family(
    'warren_disk_free_limit_bytes',
    'gauge',
    'Free disk space below which an alarm is raised.',
    DISK_FREE_LIMIT,
  );
  m.family('warren_open_fds', 'gauge', 'Open file descriptors of the process.', r.fdUsed);

  let channels = 0;
  let recv = 0;
  let send = 0;
  for (const c of broker.connections) {
    channels += c.channels.size;
    recv += c.stats.recvOct;
    send += c.stats.sendOct;
  }
  m.family('warren_connections', 'gauge', 'Open AMQP connections.', broker.connections.size);
  m.family('warren_channels', 'gauge', 'Open AMQP channels.', channels);
  m.family(
    'warren_connection_received_bytes',
    'gauge',
    'Bytes received on the open connections.',
    recv,
  );
  m.family('warren_connection_sent_bytes', 'gauge', 'Bytes sent on the open connections.', send);

  const totals = stats.totals().get('') ?? new Float64Array(9);
  const counter = (name: string, help: string, value: number): void =>
    m.family(name, 'counter', help, value);
  counter('warren_messages_published_total', 'Messages published to exchanges.', totals[0]!);
  counter('warren_messages_confirmed_total', 'Publisher confirms sent.', totals[1]!);
  counter(
    'warren_messages_delivered_total',
    'Messages delivered to consumers (with or without acks).',
    totals[2]! + totals[3]!,
  );
  counter('warren_messages_got_total', 'Messages fetched with basic.get.', totals[4]! + totals[5]!);
  counter('warren_messages_get_empty_total', 'basic.get on an empty queue.', totals[6]!);
  counter('warren_messages_acked_total', 'Messages acknowledged by consumers.', totals[7]!);
  counter('warren_messages_redelivered_total', 'Messages delivered again.', totals[8]!);

  const rates = stats.rates();
  m.family(
    'warren_message_rate_per_second',
    'gauge',
    `Message rates over the last ${stats.intervalMs / 1000} s sampling interval.`,
    [
      [{ kind: 'publish' }, rates[0]!],
      [{ kind: 'confirm' }, rates[1]!],
      [{ kind: 'deliver_get' }, rates[2]! + rates[3]! + rates[4]! + rates[5]!],
      [{ kind: 'ack' }, rates[7]!],
    ],
  );
  const latency = stats.confirmLatency();
  m.summary(
    'warren_confirm_latency_seconds',
    'Time from a publish to its confirm, one observation per confirm batch (its oldest publish).',
    latency.count,
    latency.totalSeconds,
  );
  m.family(
    'warren_confirm_latency_mean_seconds',
    'gauge',
    'Mean confirm latency over the last sampling interval (0 when nothing was confirmed).',
    latency.meanSeconds,
  );

  const ready: [Labels, number][] = [];
  const unacked: [Labels, number][] = [];
  const consumers: [Labels, number][] = [];
  const memory: [Labels, number][] = [];
  const published: [Labels, number][] = [];
  const delivered: [Labels, number][] = [];
  const acked: [Labels, number][] = [];
  let queues = 0;
  let exchanges = 0;
  for (const v of broker.vhosts.values()) {
    exchanges += v.exchanges.size;
    for (const q of v.queues.values()) {
      queues++;
      const l = { vhost: v.name, queue: q.name };
      ready.push([l, q.messageCount]);
      unacked.push([l, q.unackedCount]);
      consumers.push([l, q.consumerCount]);
      memory.push([l, queueMemory(q, stats.queueUnackedBytes(q))]);
      published.push([l, q.stats.published]);
      delivered.push([l, q.stats.delivered + q.stats.got]);
      acked.push([l, q.stats.acked]);
    }
  }
  m.family('warren_queues', 'gauge', 'Queues in all vhosts.', queues);
  m.family('warren_exchanges', 'gauge', 'Exchanges in all vhosts.', exchanges);
  m.family('warren_queue_messages_ready', 'gauge', 'Messages ready for delivery.', ready);
  m.family(
    'warren_queue_messages_unacked',
    'gauge',
    'Messages delivered and not yet acknowledged.',
    unacked,
  );
  m.family('warren_queue_consumers', 'gauge', 'Consumers on the queue.', consumers);
  m.family(
    'warren_queue_memory_bytes',
    'gauge',
    'Estimated memory held by the queue and its messages.',
    memory,
  );
  m.family(
    'warren_queue_messages_published_total',
    'counter',
    'Messages routed to the queue.',
    published,
  );
  m.family(
    'warren_queue_messages_delivered_total',
    'counter',
    'Messages delivered or fetched from the queue.',
    delivered,
  );
  m.family(
    'warren_queue_messages_acked_total',
    'counter',
    'Messages acknowledged from the queue.',
    acked,
  );
  return m.text();
}
