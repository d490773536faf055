/**
 * Differential harness: one scenario, written with amqplib (a client nobody here wrote), runs
 * against the local RabbitMQ and against a Warren broker; each run records what the client
 * observed, and the two lists must be equal.
 *
 * Only what differs by design is normalised: server-generated names (amq.gen-*, amq.ctag-*,
 * direct reply-to addresses) and the random suffix that keeps each run's names unique. Timing is
 * never observed; scenarios wait for conditions and record results at points they choose.
 *
 * Order is compared only where the broker defines it: events of one channel (deliveries, returns,
 * confirms, basic.cancel) are recorded as their frames are read; promise results resolve a
 * microtask later, so `rpcInOrder` exists for a reply whose place among events matters. Order
 * across channels is never recorded as it happens.
 *
 * DIFF_VERBOSE=1 prints RabbitMQ's observations for every scenario.
 */
import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'amqplib';
import type {
  Channel,
  ChannelModel,
  ConfirmChannel,
  ConsumeMessage,
  Message,
  Options,
} from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker } from '../helpers/broker.js';
import type { TestBroker } from '../helpers/broker.js';
import { RABBITMQ_URL, requireRabbitmq } from '../helpers/rabbitmq.js';

/** How long a scenario waits for a condition before it records a failure. */
const WAIT_MS = 5_000;
/** The bounded wait used to show that something did NOT arrive (the same on both brokers). */
const QUIET_MS = 250;
/** A whole scenario run; past this it is recorded as hung. */
const RUN_MS = 30_000;

/** amqplib's channel methods that its typings leave out but the runtime has. */
interface RawChannel {
  rpc(method: number, fields: Record<string, unknown>, expect: number): Promise<unknown>;
  _rpc(
    method: number,
    fields: Record<string, unknown>,
    expect: number,
    cb: (err: unknown, frame?: { fields: Record<string, unknown> }) => void,
  ): void;
  sendMessage(
    fields: Record<string, unknown>,
    properties: Record<string, unknown>,
    content: Buffer,
  ): boolean;
}

/** Method ids for RPCs made below amqplib's API (tx, confirm on an open channel, ...). */
export const MethodId = {
  TxSelect: 0x005a000a,
  TxSelectOk: 0x005a000b,
  TxCommit: 0x005a0014,
  TxCommitOk: 0x005a0015,
  TxRollback: 0x005a001e,
  TxRollbackOk: 0x005a001f,
  ConfirmSelect: 0x0055000a,
  ConfirmSelectOk: 0x0055000b,
  QueueDelete: 0x00320028,
  QueueDeleteOk: 0x00320029,
} as const;

/** What a failed operation or a server-side close told the client. */
export interface ErrorInfo {
  code?: number;
  text: string;
  classId?: number;
  methodId?: number;
}

/** Reply code, text and blamed method from an amqplib error; anything else by its message. */
export function describeError(err: unknown): ErrorInfo {
  const e = err as { message?: unknown; classId?: unknown; methodId?: unknown };
  const message = typeof e.message === 'string' ? e.message : String(err);
  const m = /(\d{3}) \([A-Z_-]+\) with message "([\s\S]*)"$/.exec(message);
  if (m === null) return { text: message };
  const info: ErrorInfo = { code: Number(m[1]), text: m[2]! };
  if (typeof e.classId === 'number') info.classId = e.classId;
  if (typeof e.methodId === 'number') info.methodId = e.methodId;
  return info;
}

/** A delivered, got or returned message as observations compare it. */
export function describeMessage(m: Message): Record<string, unknown> {
  const fields: Record<string, unknown> = { ...(m.fields as unknown as Record<string, unknown>) };
  const props: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m.properties as unknown as Record<string, unknown>)) {
    if (v !== undefined) props[k] = v;
  }
  return { body: describeBody(m.content), fields, props };
}

/** Short printable bodies as text; others by size and digest. */
export function describeBody(body: Buffer): unknown {
  const text = body.toString('utf8');
  if (body.length <= 200 && /^[\x20-\x7e]*$/.test(text)) return text;
  return { bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') };
}

/** A consumer's deliveries, in arrival order. */
export class Inbox {
  readonly messages: ConsumeMessage[] = [];
  /** The broker cancelled the consumer (basic.cancel from the server). */
  cancelledByServer = false;
  tag = '';
  private readonly ctx: ScenarioContext;

  constructor(ctx: ScenarioContext) {
    this.ctx = ctx;
  }

  get bodies(): string[] {
    return this.messages.map((m) => m.content.toString());
  }

  /** Wait until at least `n` messages have arrived. */
  async waitFor(n: number): Promise<void> {
    await this.ctx.until(() => this.messages.length >= n, `${n} deliveries to ${this.tag}`);
  }
}

/**
 * What a scenario gets: unique names (cleaned up afterwards), tracked connections and channels
 * whose server-side errors are recorded, and `see` to record an observation.
 */
export class ScenarioContext {
  readonly url: string;
  readonly suffix: string;
  readonly lines: string[] = [];
  readonly queues = new Set<string>();
  readonly exchanges = new Set<string>();
  readonly connections: ChannelModel[] = [];

  constructor(url: string) {
    this.url = url;
    this.suffix = randomBytes(5).toString('hex');
  }

  /** A queue name unique to this run, deleted when the scenario ends. */
  q(base: string): string {
    const name = `diff.${base}.${this.suffix}`;
    this.queues.add(name);
    return name;
  }

  /** An exchange name unique to this run, deleted when the scenario ends. */
  x(base: string): string {
    const name = `diff.${base}.${this.suffix}`;
    this.exchanges.add(name);
    return name;
  }

  /** Record an observation. */
  see(label: string, value?: unknown): void {
    this.lines.push(value === undefined ? label : `${label}: ${this.format(value)}`);
  }

  /** Normalised, key-sorted, one-line JSON. */
  format(value: unknown): string {
    return JSON.stringify(this.normalise(value));
  }

  private normalise(value: unknown): unknown {
    if (typeof value === 'string') {
      return value
        .split(this.suffix)
        .join('<sfx>')
        .replace(/amq\.gen-[A-Za-z0-9_-]+/g, 'amq.gen-*')
        .replace(/amq\.ctag-[A-Za-z0-9_-]+/g, 'amq.ctag-*')
        .replace(/amq\.rabbitmq\.reply-to\.[A-Za-z0-9_.=+/-]+/g, 'amq.rabbitmq.reply-to.*');
    }
    if (Buffer.isBuffer(value)) return { buffer: describeBody(value) };
    if (typeof value === 'bigint') return `${value}n`;
    if (Array.isArray(value)) return value.map((v) => this.normalise(v));
    if (value !== null && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(value).sort()) {
        const v = (value as Record<string, unknown>)[k];
        if (v !== undefined) out[k] = this.normalise(v);
      }
      return out;
    }
    return value;
  }

  /** Open a connection; a server-side connection.close is recorded under `label`. */
  async connect(label = 'conn'): Promise<ChannelModel> {
    const conn = await connect(this.url);
    this.connections.push(conn);
    conn.on('error', (err) => this.see(`${label} error`, describeError(err)));
    return conn;
  }

  /** Open a channel; a server-side channel.close is recorded under `label`. */
  async channel(conn: ChannelModel, label = 'ch'): Promise<Channel> {
    const ch = await conn.createChannel();
    this.watch(ch, label);
    return ch;
  }

  async confirmChannel(conn: ChannelModel, label = 'ch'): Promise<ConfirmChannel> {
    const ch = await conn.createConfirmChannel();
    this.watch(ch, label);
    return ch;
  }

  private watch(ch: Channel, label: string): void {
    ch.on('error', (err) => this.see(`${label} error`, describeError(err)));
    ch.on('return', (m: Message) => this.see(`${label} return`, describeMessage(m)));
  }

  /** Run an operation and record its result (or its error) under `label`. */
  async attempt<T>(label: string, op: () => Promise<T>): Promise<T | undefined> {
    try {
      const result = await op();
      this.see(`${label} ok`, result ?? {});
      return result;
    } catch (err) {
      this.see(`${label} failed`, describeError(err));
      return undefined;
    }
  }

  /** Publish on a confirm channel, recording the ack or nack (in arrival order) under `label`. */
  publish(
    ch: ConfirmChannel,
    label: string,
    exchange: string,
    routingKey: string,
    body: string | Buffer,
    options: Options.Publish = {},
  ): Promise<void> {
    return new Promise((resolve) => {
      ch.publish(
        exchange,
        routingKey,
        typeof body === 'string' ? Buffer.from(body) : body,
        options,
        (err: unknown) => {
          this.see(`${label} ${err === null || err === undefined ? 'ack' : 'nack'}`);
          resolve();
        },
      );
    });
  }

  /** Publish with any method fields and properties, including ones amqplib hides. */
  publishRaw(
    ch: Channel,
    fields: { exchange: string; routingKey: string; mandatory?: boolean; immediate?: boolean },
    properties: Record<string, unknown>,
    body: Buffer,
  ): void {
    (ch as unknown as RawChannel).sendMessage(
      { mandatory: false, immediate: false, ...fields },
      properties,
      body,
    );
  }

  /** An RPC amqplib has no API for (tx.*, confirm.select), recorded under `label`. */
  async rpc(ch: Channel, label: string, method: number, expect: number): Promise<void> {
    await this.attempt(label, async () => {
      await (ch as unknown as RawChannel).rpc(method, { nowait: false }, expect);
      return {};
    });
  }

  /**
   * An RPC whose reply is recorded the moment its frame is read, so its order against events
   * on the same channel (basic.cancel, basic.return) is the order the broker sent them in.
   * (A promise resolves a microtask later, after events from frames read in the same chunk.)
   */
  rpcInOrder(
    ch: Channel,
    label: string,
    method: number,
    fields: Record<string, unknown>,
    expect: number,
  ): Promise<void> {
    return new Promise((resolve) => {
      (ch as unknown as RawChannel)._rpc(method, fields, expect, (err, frame) => {
        if (err === null) this.see(`${label} ok`, frame?.fields ?? {});
        else this.see(`${label} failed`, describeError(err));
        resolve();
      });
    });
  }

  /**
   * Consume into an inbox. A server-side cancel is recorded under `label` when it arrives, unless
   * `recordCancel` is false (when its order against other channels' events would be compared:
   * that order is not defined, so the scenario records `inbox.cancelledByServer` itself).
   */
  async consume(
    ch: Channel,
    queue: string,
    label: string,
    options: Options.Consume = {},
    recordCancel = true,
  ): Promise<Inbox> {
    const inbox = new Inbox(this);
    const ok = await ch.consume(
      queue,
      (m) => {
        if (m === null) {
          inbox.cancelledByServer = true;
          if (recordCancel) this.see(`${label} cancelled by server`);
        } else inbox.messages.push(m);
      },
      options,
    );
    inbox.tag = ok.consumerTag;
    return inbox;
  }

  /** basic.get until empty (with ack), recording the bodies under `label`. */
  async drain(ch: Channel, queue: string, label: string): Promise<string[]> {
    const bodies: string[] = [];
    for (;;) {
      const m = await ch.get(queue, { noAck: true });
      if (m === false) break;
      bodies.push(m.content.toString());
    }
    this.see(label, bodies);
    return bodies;
  }

  /** Wait until `check` holds, or fail with a message naming what was awaited. */
  async until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** A short bounded wait, to show that something does not arrive. */
  quiet(): Promise<void> {
    return new Promise((r) => setTimeout(r, QUIET_MS));
  }

  /** Wait for a channel or connection to emit 'close'. */
  closed(emitter: Channel | ChannelModel, what = 'close'): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS);
      emitter.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Close every connection, then delete every queue and exchange named through q() / x(). */
  async cleanup(): Promise<void> {
    for (const c of this.connections) {
      try {
        await c.close();
      } catch {
        // already closed by the server
      }
    }
    if (this.queues.size === 0 && this.exchanges.size === 0) return;
    const conn = await connect(this.url);
    conn.on('error', () => undefined);
    let ch: Channel | null = null;
    const run = async (op: (c: Channel) => Promise<unknown>): Promise<void> => {
      try {
        if (ch === null) {
          ch = await conn.createChannel();
          ch.on('error', () => undefined);
        }
        await op(ch);
      } catch {
        ch = null;
      }
    };
    for (const q of this.queues) await run((c) => c.deleteQueue(q));
    for (const x of this.exchanges) await run((c) => c.deleteExchange(x));
    await conn.close();
  }
}

export type Scenario = (ctx: ScenarioContext) => Promise<void>;

export interface RunResult {
  lines: string[];
  failure: string | null;
}

/** Run a scenario against one broker; a thrown error becomes the last observation. */
export async function runScenario(url: string, scenario: Scenario): Promise<RunResult> {
  const ctx = new ScenarioContext(url);
  let failure: string | null = null;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      scenario(ctx),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`scenario still running after ${RUN_MS} ms`)),
          RUN_MS,
        );
      }),
    ]);
  } catch (err) {
    failure = err instanceof Error ? err.message : String(err);
    ctx.see('scenario threw', failure);
  } finally {
    clearTimeout(timer);
  }
  await ctx.cleanup();
  return { lines: ctx.lines, failure };
}

export type DefineScenario = (name: string, scenario: Scenario) => void;

/**
 * A describe block whose tests each run a scenario on RabbitMQ and on a Warren broker (one per
 * block, on an ephemeral port) and require equal observations.
 */
export function differentialSuite(title: string, define: (scenario: DefineScenario) => void): void {
  describe(title, () => {
    let warren: TestBroker | undefined;
    beforeAll(async () => {
      await requireRabbitmq();
      warren = await startTestBroker();
    });
    afterAll(async () => {
      await warren?.stop();
    });
    define((name, scenario) => {
      it(name, async () => {
        const [rabbit, ours] = await Promise.all([
          runScenario(RABBITMQ_URL, scenario),
          runScenario(warren!.url, scenario),
        ]);
        if (process.env.DIFF_VERBOSE !== undefined) {
          console.log(`--- ${name}\n${rabbit.lines.join('\n')}`);
        }
        if (rabbit.failure !== null) {
          throw new Error(
            `the scenario failed on RabbitMQ itself, so it is wrong: ${rabbit.failure}\n` +
              rabbit.lines.join('\n'),
          );
        }
        expect(rabbit.lines.length, 'a scenario must observe something').toBeGreaterThan(0);
        expect(ours.lines, 'observations on Warren (received) vs RabbitMQ (expected)').toEqual(
          rabbit.lines,
        );
      });
    });
  });
}
