import { connect } from '../client/index.js';
import type { Channel, Connection, Consumer, Message, PublishOptions } from '../client/index.js';
import { monoNow, sleep, yieldToIo } from './clock.js';
import { Histogram } from './histogram.js';
import type { HistogramData } from './histogram.js';
import type { AckMode } from './load-options.js';

/** One publisher or consumer of a run, as handed to the thread that runs it. */
export interface AgentSpec {
  kind: 'publisher' | 'consumer';
  /** Index of its counters in the shared counter array. */
  slot: number;
  url: string;
  exchange: string;
  routingKey: string;
  size: number;
  confirm: number;
  persistent: boolean;
  rate: number;
  messages: number;
  queue: string;
  prefetch: number;
  ack: AckMode;
}

/** Run phases, in the shared control word: latencies are recorded only while measuring. */
export const Phase = { Warmup: 0, Measuring: 1, Stopping: 2 } as const;

/** Counters per agent in the shared Float64Array: published, confirmed, consumed, finished. */
export const COUNTERS = 4;
export const C_PUBLISHED = 0;
export const C_CONFIRMED = 1;
export const C_CONSUMED = 2;
/** 1 once a publisher has sent its --messages. */
export const C_FINISHED = 3;

/**
 * Memory shared by the main thread and the agent threads: the phase word and the counters.
 * Each counter has one writer (its agent), so plain stores suffice; the main thread only reads.
 */
export class SharedState {
  readonly buffer: SharedArrayBuffer;
  readonly control: Int32Array;
  readonly counters: Float64Array;

  constructor(agents: number, buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(8 + agents * COUNTERS * 8);
    this.control = new Int32Array(this.buffer, 0, 2);
    this.counters = new Float64Array(this.buffer, 8, agents * COUNTERS);
  }

  get phase(): number {
    return Atomics.load(this.control, 0);
  }

  set phase(p: number) {
    Atomics.store(this.control, 0, p);
  }

  /** Sum of counter `which` over all agents. */
  total(which: number): number {
    let n = 0;
    for (let i = which; i < this.counters.length; i += COUNTERS) n += this.counters[i]!;
    return n;
  }
}

/** What a group of agents hands back at the end. */
export interface AgentResults {
  /** Publish-to-delivery latency of messages consumed while measuring. */
  latency: HistogramData;
  /** Publish-to-confirm latency while measuring. */
  confirmLatency: HistogramData;
  errors: string[];
}

/** Publishers sent without confirms write this many messages between yields to the event loop. */
const BATCH = 256;

/**
 * The agents of one thread. Each has its own connection (as separate applications would), and
 * none allocates per message beyond what the client itself does: a publisher stamps the send
 * time into one reused body (the client copies small bodies into its output buffer as it
 * publishes), a consumer reads the stamp back.
 */
export class AgentGroup {
  private readonly specs: AgentSpec[];
  private readonly state: SharedState;
  private readonly connections: Connection[] = [];
  private readonly channels: Channel[] = [];
  private readonly consumers: Consumer[] = [];
  private readonly latency = new Histogram();
  private readonly confirmLatency = new Histogram();
  private readonly errors: string[] = [];
  private readonly loops: Promise<void>[] = [];

  constructor(specs: AgentSpec[], state: SharedState) {
    this.specs = specs;
    this.state = state;
  }

  /** Connect every agent and open its channel. */
  async connect(): Promise<void> {
    await Promise.all(
      this.specs.map(async (spec, i) => {
        const conn = await connect(spec.url, {
          reconnect: false,
          connectionName: `warren-bench ${spec.kind} ${spec.slot}`,
        });
        conn.on('error', (err) => this.fail(err));
        conn.on('close', (err) => {
          if (err !== null) this.fail(err);
        });
        this.connections[i] = conn;
        const ch = await conn.channel(
          spec.kind === 'publisher' && spec.confirm > 0
            ? { confirm: { window: spec.confirm, unconfirmed: 'fail' } }
            : {},
        );
        this.channels[i] = ch;
      }),
    );
  }

  /** Start consuming and publishing; returns at once. */
  start(): void {
    this.specs.forEach((spec, i) => {
      const ch = this.channels[i]!;
      if (spec.kind === 'consumer') {
        this.loops.push(this.consume(spec, ch));
      } else {
        const loop = spec.confirm > 0 ? this.publishConfirmed(spec, ch) : this.publish(spec, ch);
        this.loops.push(loop.catch((err: unknown) => this.fail(err)));
      }
    });
  }

  /** Wait for the publishers to stop (the phase is Stopping), cancel consumers, close. */
  async stop(): Promise<AgentResults> {
    await Promise.all(this.loops);
    await Promise.all(this.consumers.map((c) => c.cancel().catch(() => undefined)));
    await Promise.all(this.connections.map((c) => c.close({ timeout: 5000 }).catch(() => {})));
    return {
      latency: this.latency.data(),
      confirmLatency: this.confirmLatency.data(),
      errors: this.errors,
    };
  }

  private fail(err: unknown): void {
    const text = err instanceof Error ? err.message : String(err);
    if (this.errors.length < 10 && !this.errors.includes(text)) this.errors.push(text);
  }

  private async consume(spec: AgentSpec, ch: Channel): Promise<void> {
    const counters = this.state.counters;
    const slot = spec.slot * COUNTERS + C_CONSUMED;
    const state = this.state;
    const hist = this.latency;
    const manual = spec.ack === 'manual';
    const stamped = spec.size >= 8;
    const handler = (m: Message): void => {
      counters[slot]!++;
      if (stamped && state.phase === Phase.Measuring && m.body.length >= 8) {
        hist.record((monoNow() - m.body.readDoubleLE(0)) * 1000);
      }
      if (manual) m.ack();
    };
    const c = await ch.consume(spec.queue, handler, {
      noAck: !manual,
      ...(spec.prefetch > 0 ? { prefetch: spec.prefetch } : {}),
    });
    this.consumers.push(c);
  }

  /** Without confirms: batches of writes, awaiting the client's backpressure, then yielding. */
  private async publish(spec: AgentSpec, ch: Channel): Promise<void> {
    const counters = this.state.counters;
    const slot = spec.slot * COUNTERS;
    const state = this.state;
    const body = makeBody(spec.size);
    const stamped = spec.size >= 8;
    const large = spec.size >= LARGE_BODY;
    const props: PublishOptions | undefined = spec.persistent ? { deliveryMode: 2 } : undefined;
    const { exchange, routingKey, rate, messages } = spec;
    const start = monoNow();
    let sent = 0;
    while (state.phase !== Phase.Stopping) {
      let n = BATCH;
      if (rate > 0) {
        n = Math.min(BATCH, Math.floor((rate * (monoNow() - start)) / 1000) - sent);
        if (n <= 0) {
          await sleep(Math.max(1, Math.ceil(1000 / rate)));
          continue;
        }
      }
      if (messages > 0) n = Math.min(n, messages - sent);
      let last: Promise<void> | null = null;
      // The batch leaves in one write at the end of this tick: one send time serves it all.
      const t = monoNow();
      for (let i = 0; i < n; i++) {
        // A large body is handed to the socket as it is: each message needs its own.
        const b = large ? makeBody(spec.size) : body;
        if (stamped) b.writeDoubleLE(large ? monoNow() : t, 0);
        last = ch.publish(exchange, routingKey, b, props);
      }
      sent += n;
      counters[slot + C_PUBLISHED] = sent;
      if (last !== null) {
        // The socket drains, unless the broker blocks publishers: then stop when the run does.
        const drained = last.then(() => true);
        // Observed by the race below; a rejection after the run stopped changes nothing.
        drained.catch(() => undefined);
        while (!(await Promise.race([drained, sleep(100).then(() => false)]))) {
          if (state.phase === Phase.Stopping) break;
        }
      }
      if (messages > 0 && sent >= messages) break;
      await yieldToIo();
    }
    counters[slot + C_FINISHED] = 1;
  }

  /**
   * With confirms: keep `confirm` publishes in flight. Send times wait in a ring (confirms come
   * back in publish order), so the confirm latency costs no allocation per message.
   */
  private async publishConfirmed(spec: AgentSpec, ch: Channel): Promise<void> {
    const counters = this.state.counters;
    const slot = spec.slot * COUNTERS;
    const state = this.state;
    const window = spec.confirm;
    const body = makeBody(spec.size);
    const stamped = spec.size >= 8;
    const large = spec.size >= LARGE_BODY;
    const props: PublishOptions | undefined = spec.persistent ? { deliveryMode: 2 } : undefined;
    const { exchange, routingKey, rate, messages } = spec;
    const sentAt = new Float64Array(window);
    const hist = this.confirmLatency;
    let head = 0;
    let tail = 0;
    let outstanding = 0;
    let confirmed = 0;
    let failed = null as Error | null;
    let wake: (() => void) | null = null;
    const onConfirm = (): void => {
      const t = sentAt[head]!;
      head = head + 1 === window ? 0 : head + 1;
      outstanding--;
      counters[slot + C_CONFIRMED] = ++confirmed;
      if (state.phase === Phase.Measuring) hist.record((monoNow() - t) * 1000);
      if (wake !== null) {
        const w = wake;
        wake = null;
        w();
      }
    };
    const onFail = (err: unknown): void => {
      failed ??= err instanceof Error ? err : new Error('the publish failed');
      onConfirm();
    };
    const start = monoNow();
    let sent = 0;
    while (state.phase !== Phase.Stopping && failed === null) {
      if (messages > 0 && sent >= messages) break;
      let room = window - outstanding;
      if (rate > 0) {
        room = Math.min(room, Math.floor((rate * (monoNow() - start)) / 1000) - sent);
        if (room <= 0 && outstanding < window) {
          await sleep(Math.max(1, Math.ceil(1000 / rate)));
          continue;
        }
      }
      if (messages > 0) room = Math.min(room, messages - sent);
      const t = monoNow();
      for (let i = 0; i < room; i++) {
        const b = large ? makeBody(spec.size) : body;
        // A large body's clock starts once it is built: filling 64 MiB is not the broker's time.
        const at = large ? monoNow() : t;
        if (stamped) b.writeDoubleLE(at, 0);
        sentAt[tail] = at;
        tail = tail + 1 === window ? 0 : tail + 1;
        outstanding++;
        ch.publish(exchange, routingKey, b, props).then(onConfirm, onFail);
      }
      if (room > 0) {
        sent += room;
        counters[slot + C_PUBLISHED] = sent;
      }
      if (outstanding >= window || room <= 0) {
        // Bounded, so that a broker that stops confirming cannot keep the run from stopping.
        await Promise.race([new Promise<void>((resolve) => (wake = resolve)), sleep(100)]);
      } else {
        await yieldToIo();
      }
    }
    // Wait (bounded) for what is in flight, so that the confirm count is complete.
    const deadline = monoNow() + 10_000;
    while (outstanding > 0 && monoNow() < deadline) {
      await Promise.race([new Promise<void>((resolve) => (wake = resolve)), sleep(100)]);
    }
    counters[slot + C_FINISHED] = 1;
    if (failed !== null) throw failed;
  }
}

/** The client hands bodies from this size on to the socket without copying them. */
const LARGE_BODY = 64 * 1024;

function makeBody(size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  // Stable content (not whatever was in the pool) after the 8-byte timestamp.
  b.fill(0x61, Math.min(8, size));
  return b;
}
