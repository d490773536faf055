import type { Broker, Connection, Exchange, Queue } from '../broker/index.js';

/** Queue counters sampled into rates, in this order. */
export const QUEUE_COUNTERS = [
  'publish',
  'deliver',
  'deliver_no_ack',
  'get',
  'get_no_ack',
  'get_empty',
  'ack',
  'redeliver',
  'messages',
  'messages_ready',
  'messages_unacknowledged',
] as const;
export type QueueCounter = (typeof QUEUE_COUNTERS)[number];

/** Broker-wide counters (message_stats of the overview and of each vhost). */
export const GLOBAL_COUNTERS = [
  'publish',
  'confirm',
  'deliver',
  'deliver_no_ack',
  'get',
  'get_no_ack',
  'get_empty',
  'ack',
  'redeliver',
] as const;
export type GlobalCounter = (typeof GLOBAL_COUNTERS)[number];

/** One point of the overview history the web UI charts. */
export interface HistorySample {
  timestamp: number;
  publish: number;
  deliver_get: number;
  ack: number;
  confirm: number;
  messages_ready: number;
  messages_unacknowledged: number;
  connections: number;
}

interface ChannelSeen {
  vhost: string;
  confirm: number;
  latencyCount: number;
  latencyMs: number;
}

interface Track {
  last: Float64Array;
  rates: Float64Array;
}

/** The counters of a queue right now; only field reads, no iteration over messages. */
export function queueCounters(q: Queue, into: Float64Array): Float64Array {
  const s = q.stats;
  into[0] = s.published;
  into[1] = s.delivered - s.deliveredNoAck;
  into[2] = s.deliveredNoAck;
  into[3] = s.got - s.gotNoAck;
  into[4] = s.gotNoAck;
  into[5] = s.getEmpty;
  into[6] = s.acked;
  into[7] = s.redelivered;
  into[8] = q.messageCount + q.unackedCount;
  into[9] = q.messageCount;
  into[10] = q.unackedCount;
  return into;
}

/**
 * Turns the broker's cumulative counters into rates by sampling them on a timer. The broker does
 * no per-message work for management beyond the counters it keeps anyway: everything here runs
 * once per interval (default 5 s) and costs O(queues + exchanges + connections + channels).
 * Objects are tracked in WeakMaps, so deleted queues and closed connections need no cleanup.
 */
export class StatsCollector {
  readonly intervalMs: number;
  private readonly broker: Broker;
  private timer: NodeJS.Timeout | null = null;
  private lastAt = 0;
  private readonly queues = new WeakMap<Queue, Track>();
  private readonly exchanges = new WeakMap<Exchange, Track>();
  private readonly connections = new WeakMap<Connection, Track>();
  /** Unacknowledged body bytes per queue, counted at each sample. */
  private unackedBytes = new WeakMap<Queue, number>();
  /** Global and per-vhost rates of GLOBAL_COUNTERS, from the last sample. */
  private globalRates: Float64Array = new Float64Array(GLOBAL_COUNTERS.length);
  private lastGlobal: Float64Array | null = null;
  private readonly vhostRates = new Map<string, Float64Array>();
  private readonly lastVhost = new Map<string, Float64Array>();
  /** Counts of objects gone since the collector started, so totals do not go backwards. */
  private readonly retired = new Map<string, Float64Array>();
  private seenQueues = new Set<Queue>();
  private seenExchanges = new Set<Exchange>();
  private seenChannels = new Map<object, ChannelSeen>();
  /** Confirm latency of closed channels, and the totals at the previous sample. */
  private retiredLatency = { count: 0, totalMs: 0 };
  private lastLatency = { count: 0, totalMs: 0 };
  private latencyMean = 0;
  private readonly history: HistorySample[] = [];
  readonly historySize: number;
  private readonly scratch = new Float64Array(QUEUE_COUNTERS.length);

  constructor(broker: Broker, intervalMs = 5000, historySize = 120) {
    this.broker = broker;
    this.intervalMs = intervalMs;
    this.historySize = historySize;
  }

  start(): void {
    if (this.timer !== null) return;
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Take one sample now: update every rate and append a history point. */
  sample(): void {
    const now = Date.now();
    const dt = this.lastAt === 0 ? 0 : (now - this.lastAt) / 1000;
    this.lastAt = now;
    const liveQueues = new Set<Queue>();
    const liveExchanges = new Set<Exchange>();
    for (const vhost of this.broker.vhosts.values()) {
      for (const q of vhost.queues.values()) {
        liveQueues.add(q);
        this.track(this.queues, q, queueCounters(q, this.scratch), dt);
      }
      for (const ex of vhost.exchanges.values()) {
        liveExchanges.add(ex);
        const c = this.scratch.subarray(0, 2);
        c[0] = ex.stats.publishIn;
        c[1] = ex.stats.publishOut;
        this.track(this.exchanges, ex, c, dt);
      }
    }
    // Queues that disappeared keep contributing their last counts to the totals.
    for (const q of this.seenQueues) {
      if (!liveQueues.has(q)) this.retire(q.vhost, this.queues.get(q)?.last);
    }
    this.seenQueues = liveQueues;
    for (const ex of this.seenExchanges) {
      if (!liveExchanges.has(ex)) {
        for (const key of [ex.vhost, '']) this.retiredFor(key)[0]! += ex.stats.publishIn;
      }
    }
    this.seenExchanges = liveExchanges;

    const liveChannels = new Map<object, ChannelSeen>();
    const unacked = new WeakMap<Queue, number>();
    for (const conn of this.broker.connections) {
      const c = this.scratch.subarray(0, 2);
      c[0] = conn.stats.recvOct;
      c[1] = conn.stats.sendOct;
      this.track(this.connections, conn, c, dt);
      const vhost = conn.vhost?.name ?? '/';
      for (const ch of conn.channels.values()) {
        liveChannels.set(ch, {
          vhost,
          confirm: ch.confirmSent,
          latencyCount: ch.confirmLatency.count,
          latencyMs: ch.confirmLatency.totalMs,
        });
        for (const e of ch.unacked) {
          if (!e.settled) unacked.set(e.queue, (unacked.get(e.queue) ?? 0) + e.message.bodySize);
        }
      }
    }
    for (const [ch, info] of this.seenChannels) {
      if (liveChannels.has(ch)) continue;
      this.retireConfirms(info.vhost, info.confirm);
      this.retiredLatency.count += info.latencyCount;
      this.retiredLatency.totalMs += info.latencyMs;
    }
    this.seenChannels = liveChannels;
    const latency = this.confirmLatency();
    const batches = latency.count - this.lastLatency.count;
    this.latencyMean =
      batches > 0 ? (latency.totalSeconds * 1000 - this.lastLatency.totalMs) / batches / 1000 : 0;
    this.lastLatency = { count: latency.count, totalMs: latency.totalSeconds * 1000 };
    this.unackedBytes = unacked;

    const totals = this.totals();
    const global = totals.get('') ?? new Float64Array(GLOBAL_COUNTERS.length);
    if (this.lastGlobal !== null && dt > 0) {
      this.globalRates = rates(global, this.lastGlobal, dt);
      for (const [vhost, t] of totals) {
        const prev = this.lastVhost.get(vhost);
        if (vhost !== '' && prev !== undefined) this.vhostRates.set(vhost, rates(t, prev, dt));
      }
    }
    this.lastGlobal = global;
    for (const [vhost, t] of totals) if (vhost !== '') this.lastVhost.set(vhost, t);

    const depth = this.depths();
    const g = this.globalRates;
    this.history.push({
      timestamp: now,
      publish: g[0]!,
      deliver_get: g[2]! + g[3]! + g[4]! + g[5]!,
      ack: g[7]!,
      confirm: g[1]!,
      messages_ready: depth.ready,
      messages_unacknowledged: depth.unacked,
      connections: this.broker.connections.size,
    });
    if (this.history.length > this.historySize) this.history.shift();
  }

  private track<K extends object>(
    map: WeakMap<K, Track>,
    key: K,
    counters: Float64Array,
    dt: number,
  ): void {
    let t = map.get(key);
    if (t === undefined) {
      // First sight: no rate yet (RabbitMQ also shows 0.0 until the second sample).
      t = { last: Float64Array.from(counters), rates: new Float64Array(counters.length) };
      map.set(key, t);
      return;
    }
    if (dt > 0) {
      for (let i = 0; i < counters.length; i++) {
        t.rates[i] = Math.max(0, (counters[i]! - t.last[i]!) / dt);
      }
      // Depths (messages*) may fall: their rate is a signed change per second.
      if (counters.length === QUEUE_COUNTERS.length) {
        for (let i = 8; i < 11; i++) t.rates[i] = (counters[i]! - t.last[i]!) / dt;
      }
    }
    t.last.set(counters);
  }

  private retire(vhost: string, last: Float64Array | undefined): void {
    if (last === undefined) return;
    for (const key of [vhost, '']) {
      const r = this.retiredFor(key);
      // Map queue counters onto GLOBAL_COUNTERS ('publish' comes from exchanges; 'confirm' is 1).
      for (let i = 1; i < 8; i++) r[i + 1]! += last[i]!;
    }
  }

  private retireConfirms(vhost: string, confirms: number): void {
    for (const key of [vhost, '']) this.retiredFor(key)[1]! += confirms;
  }

  private retiredFor(key: string): Float64Array {
    let r = this.retired.get(key);
    if (r === undefined) {
      r = new Float64Array(GLOBAL_COUNTERS.length);
      this.retired.set(key, r);
    }
    return r;
  }

  // ---------------------------------------------------------------- reads

  /**
   * Cumulative message counts, broker-wide (key '') and per vhost, computed now from the live
   * objects plus those already gone. 'publish' counts messages published to exchanges (once per
   * publish, like RabbitMQ's overview), not per queue.
   */
  totals(): Map<string, Float64Array> {
    const out = new Map<string, Float64Array>();
    const get = (k: string): Float64Array => {
      let a = out.get(k);
      if (a === undefined) {
        a = Float64Array.from(this.retired.get(k) ?? new Float64Array(GLOBAL_COUNTERS.length));
        out.set(k, a);
      }
      return a;
    };
    get('');
    const c = new Float64Array(QUEUE_COUNTERS.length);
    for (const vhost of this.broker.vhosts.values()) {
      const v = get(vhost.name);
      const g = get('');
      for (const q of vhost.queues.values()) {
        queueCounters(q, c);
        for (let i = 1; i < 8; i++) {
          v[i + 1]! += c[i]!;
          g[i + 1]! += c[i]!;
        }
      }
      for (const ex of vhost.exchanges.values()) {
        v[0]! += ex.stats.publishIn;
        g[0]! += ex.stats.publishIn;
      }
    }
    for (const conn of this.broker.connections) {
      const v = get(conn.vhost?.name ?? '/');
      const g = get('');
      for (const ch of conn.channels.values()) {
        v[1]! += ch.confirmSent;
        g[1]! += ch.confirmSent;
      }
    }
    return out;
  }

  /** Rates of GLOBAL_COUNTERS broker-wide, or for one vhost. */
  rates(vhost?: string): Float64Array {
    if (vhost === undefined) return this.globalRates;
    return this.vhostRates.get(vhost) ?? new Float64Array(GLOBAL_COUNTERS.length);
  }

  queueRates(q: Queue): Float64Array {
    return this.queues.get(q)?.rates ?? new Float64Array(QUEUE_COUNTERS.length);
  }

  exchangeRates(ex: Exchange): Float64Array {
    return this.exchanges.get(ex)?.rates ?? new Float64Array(2);
  }

  connectionRates(conn: Connection): Float64Array {
    return this.connections.get(conn)?.rates ?? new Float64Array(2);
  }

  /**
   * Publisher confirm latency: cumulative batches and seconds (a Prometheus summary's _count and
   * _sum) and the mean over the last sampling interval. Each confirm batch contributes the wait of
   * its oldest publish.
   */
  confirmLatency(): { count: number; totalSeconds: number; meanSeconds: number } {
    let count = this.retiredLatency.count;
    let totalMs = this.retiredLatency.totalMs;
    for (const conn of this.broker.connections) {
      for (const ch of conn.channels.values()) {
        count += ch.confirmLatency.count;
        totalMs += ch.confirmLatency.totalMs;
      }
    }
    return { count, totalSeconds: totalMs / 1000, meanSeconds: this.latencyMean };
  }

  queueUnackedBytes(q: Queue): number {
    return this.unackedBytes.get(q) ?? 0;
  }

  historySamples(): readonly HistorySample[] {
    return this.history;
  }

  depths(vhost?: string): { ready: number; unacked: number; readyBytes: number } {
    let ready = 0;
    let unacked = 0;
    let readyBytes = 0;
    for (const v of this.broker.vhosts.values()) {
      if (vhost !== undefined && v.name !== vhost) continue;
      for (const q of v.queues.values()) {
        ready += q.messageCount;
        unacked += q.unackedCount;
        readyBytes += q.readyBytes;
      }
    }
    return { ready, unacked, readyBytes };
  }
}

function rates(now: Float64Array, prev: Float64Array, dt: number): Float64Array<ArrayBuffer> {
  const out = new Float64Array(now.length);
  for (let i = 0; i < now.length; i++) out[i] = Math.max(0, (now[i]! - prev[i]!) / dt);
  return out;
}
