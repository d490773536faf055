import amqp from 'amqplib';
import { describe, expect, it } from 'vitest';
import { Method, PROTOCOL_HEADER } from '../../src/protocol/index.js';
import type { Logger } from '../../src/broker/index.js';
import { startTestBroker, waitFor } from '../helpers/broker.js';
import { RawClient } from '../helpers/raw-client.js';
import {
  MUTATION_CLASSES,
  PROBE_CHANNEL,
  Rng,
  WORK_CHANNEL,
  describeOutcome,
  outcomeAllowed,
  validCommand,
} from './mutations.js';
import type { MutationClass, MutationContext, Outcome } from './mutations.js';

/** Replay a failure with WARREN_FUZZ_SEED=<seed>; iteration i always builds the same bytes. */
const SEED = Number(process.env.WARREN_FUZZ_SEED ?? 0x5eed_2024);
const MAX_ITERATIONS = 2000;
const TIME_BUDGET_MS = 35_000;
/** Many at once: most time is spent waiting for the broker to hang up, not computing. */
const WORKERS = 16;
const MAX_MESSAGE_SIZE = 1024 * 1024;
const STEADY_QUEUE = 'fuzz-steady';

interface IterationResult {
  iteration: number;
  cls: string;
  outcome: Outcome | null;
  /** Set when something went wrong: a disallowed outcome, a hang, a failed handshake. */
  failure: string | null;
  stalled: boolean;
}

/** Logger that keeps error lines: the broker logs internal errors (541) there. */
function capturingLogger(errors: string[]): Logger {
  return {
    debug: () => undefined,
    info: () => undefined,
    warn: () => undefined,
    error: (m) => errors.push(m),
  };
}

/** The first event after frame index `from` that tells how the mutation was taken. */
function classify(c: RawClient, from: number): Outcome | undefined {
  for (let i = from; i < c.frames.length; i++) {
    const f = c.frames[i]!;
    const m = f.method;
    if (m === undefined) continue;
    if (m.id === Method.ConnectionClose && f.channel === 0) {
      return { kind: 'connection-close', code: m.replyCode };
    }
    if (m.id === Method.ChannelClose && f.channel === WORK_CHANNEL) {
      return { kind: 'channel-close', code: m.replyCode };
    }
    if (m.id === Method.ChannelOpenOk && f.channel === PROBE_CHANNEL) return { kind: 'ok' };
  }
  if (c.closed) return { kind: 'socket-close' };
  return undefined;
}

function hex(bufs: Buffer[]): string {
  const all = Buffer.concat(bufs);
  const shown = all.subarray(0, 96).toString('hex');
  return all.length > 96 ? `${shown}... (${all.length} octets)` : shown;
}

async function fuzzOne(
  port: number,
  iteration: number,
  cls: MutationClass,
): Promise<IterationResult> {
  const rng = new Rng((SEED ^ Math.imul(iteration + 1, 0x9e3779b1)) >>> 0);
  const result: IterationResult = {
    iteration,
    cls: cls.name,
    outcome: null,
    failure: null,
    stalled: false,
  };
  const c = await RawClient.connect(port);
  let writes: Buffer[] = [];
  try {
    if (cls.replacesProtocolHeader === true) {
      writes = cls.build({
        rng,
        frameMax: 131072,
        maxMessageSize: MAX_MESSAGE_SIZE,
        queue: '',
      }).writes;
      for (const w of writes) await c.send(w);
      await c.waitForSocketClose(15_000);
      result.outcome = { kind: 'socket-close' };
      if (!c.rawHead.equals(PROTOCOL_HEADER)) {
        result.failure = `answered ${c.rawHead.toString('hex')} instead of the 0-9-1 header`;
      }
      return result;
    }
    const requestedFrameMax = rng.pick([0, 4096, 8192, 65536, 131072]);
    await c.handshake({
      mechanism: rng.pick(['PLAIN', 'AMQPLAIN'] as const),
      frameMax: requestedFrameMax,
      channelMax: rng.pick([0, 16, 2047]),
      heartbeat: 0,
    });
    await c.openChannel(WORK_CHANNEL);
    const queue = `fz-${iteration}`;
    await c.call(
      WORK_CHANNEL,
      {
        id: Method.QueueDeclare,
        ticket: 0,
        queue,
        passive: false,
        durable: false,
        exclusive: true,
        autoDelete: false,
        nowait: false,
        arguments: {},
      },
      Method.QueueDeclareOk,
    );
    const ctx: MutationContext = {
      rng,
      frameMax: c.frameMax,
      maxMessageSize: MAX_MESSAGE_SIZE,
      queue,
    };

    // A valid prefix puts the channel in some state; the barrier proves it was all accepted.
    const prefix = rng.int(5);
    for (let i = 0; i < prefix; i++) for (const f of validCommand(ctx)) await c.send(f);
    const barrierFrom = c.frames.length;
    await c.sendMethod(WORK_CHANNEL, { id: Method.ChannelFlow, active: true });
    await c.waitUntil(() => {
      const o = classify(c, barrierFrom);
      if (o !== undefined && o.kind !== 'ok') return o;
      return c.findMethod(Method.ChannelFlowOk, { channel: WORK_CHANNEL, from: barrierFrom });
    }, 'the valid prefix to be accepted');
    const bad = classify(c, barrierFrom);
    if (bad !== undefined && bad.kind !== 'ok') {
      result.failure = `valid prefix was refused: ${describeOutcome(bad)}`;
      return result;
    }

    const from = c.frames.length;
    const mutation = cls.build(ctx);
    writes = mutation.writes;
    for (const w of writes) await c.send(w);
    if (mutation.endAfter === true) {
      c.socket.end();
    } else {
      await c.sendMethod(PROBE_CHANNEL, { id: Method.ChannelOpen, outOfBand: '' });
    }

    let outcome: Outcome | undefined;
    if (mutation.mayStall === true) {
      outcome = await c.waitUntil(() => classify(c, from), 'outcome', 2000).catch(() => undefined);
      if (outcome === undefined) {
        // The broker is waiting for the rest of a frame that announced more than was sent:
        // complete it with zeros (which cannot end a frame).
        result.stalled = true;
        await c.send(Buffer.alloc(c.frameMax + 8));
      }
    }
    outcome ??= await c.waitUntil(() => classify(c, from), 'the broker to react', 15_000);
    result.outcome = outcome;
    if (!outcomeAllowed(cls.expect, outcome)) {
      const close =
        c.findMethod(Method.ConnectionClose, { from }) ??
        c.findMethod(Method.ChannelClose, { from });
      result.failure =
        `unexpected ${describeOutcome(outcome)}` +
        (close !== undefined && 'replyText' in close ? ` (${close.replyText})` : '');
      return result;
    }

    // Finish the conversation in one of the ways a peer may.
    switch (outcome.kind) {
      case 'connection-close': {
        const how = rng.int(4);
        if (how === 0) {
          c.destroy();
        } else if (how === 1) {
          // Say nothing: the broker must hang up on its own after its close-ok timeout.
          await c.waitForSocketClose(15_000);
        } else {
          await c.sendCloseOk();
          await c.waitForSocketClose(15_000);
        }
        break;
      }
      case 'channel-close':
        await c.sendMethod(WORK_CHANNEL, { id: Method.ChannelCloseOk });
        await c.waitForMethod(Method.ChannelOpenOk, { channel: PROBE_CHANNEL, from });
        await c.closeConnection();
        await c.waitForSocketClose();
        break;
      case 'ok':
        await c.closeConnection();
        await c.waitForSocketClose();
        break;
      case 'socket-close':
        break;
    }
  } catch (err) {
    result.failure = `${(err as Error).message}`;
  } finally {
    if (result.failure !== null) result.failure += ` | sent ${hex(writes)}`;
    c.destroy();
  }
  return result;
}

/** An amqplib publisher (with confirms) and consumer that run for the whole fuzz. */
async function startSteadyTraffic(url: string) {
  const problems: string[] = [];
  const pubConn = await amqp.connect(url);
  const subConn = await amqp.connect(url);
  for (const [name, conn] of [
    ['publisher', pubConn],
    ['consumer', subConn],
  ] as const) {
    conn.on('error', (err: Error) => problems.push(`${name} connection error: ${err.message}`));
    conn.on('close', () => problems.push(`${name} connection closed`));
  }
  const pub = await pubConn.createConfirmChannel();
  await pub.assertQueue(STEADY_QUEUE, { durable: false });
  const sub = await subConn.createChannel();
  await sub.prefetch(50);
  const received: number[] = [];
  await sub.consume(STEADY_QUEUE, (msg) => {
    if (msg === null) {
      problems.push('consumer cancelled by the broker');
      return;
    }
    if (msg.fields.redelivered) problems.push(`message ${msg.content.toString()} redelivered`);
    received.push(Number(msg.content.toString()));
    sub.ack(msg);
  });

  let stop = false;
  let published = 0;
  const loop = (async () => {
    while (!stop) {
      for (let i = 0; i < 20; i++) {
        pub.publish('', STEADY_QUEUE, Buffer.from(String(published++)), { deliveryMode: 1 });
      }
      // Rejects on a nack or a closed channel, which fails the test.
      await pub.waitForConfirms();
      await new Promise((r) => setTimeout(r, 5));
    }
  })();

  return {
    get published() {
      return published;
    },
    async finish() {
      stop = true;
      await loop;
      await waitFor(() => received.length >= published, 'the steady consumer to catch up', 20_000);
      // One more round trip on each connection, so a stray duplicate would have arrived.
      const q = await pub.checkQueue(STEADY_QUEUE);
      await sub.checkQueue(STEADY_QUEUE);
      pubConn.removeAllListeners('close');
      subConn.removeAllListeners('close');
      await pubConn.close();
      await subConn.close();
      return { published, received, problems, leftInQueue: q.messageCount };
    },
  };
}

describe('fuzzing with damaged frames', () => {
  it('answers each damaged connection as the protocol says, and a good client loses nothing', async () => {
    const errors: string[] = [];
    const tb = await startTestBroker({
      logger: capturingLogger(errors),
      maxMessageSize: MAX_MESSAGE_SIZE,
    });
    try {
      const steady = await startSteadyTraffic(tb.url);
      const results: IterationResult[] = [];
      const deadline = Date.now() + TIME_BUDGET_MS;
      // Every class in turn, with extra turns for the open-ended ones.
      const schedule = [...MUTATION_CLASSES];
      for (const name of ['bit-flip', 'bit-flip', 'bit-flip', 'bit-flip', 'garbage', 'garbage']) {
        schedule.push(MUTATION_CLASSES.find((c) => c.name === name)!);
      }
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < MAX_ITERATIONS && Date.now() < deadline) {
          const i = next++;
          results.push(await fuzzOne(tb.port, i, schedule[i % schedule.length]!));
        }
      };
      await Promise.all(Array.from({ length: WORKERS }, worker));

      const failures = results.filter((r) => r.failure !== null);
      expect(
        failures.slice(0, 20).map((r) => `#${r.iteration} ${r.cls}: ${r.failure}`),
        `seed ${SEED}`,
      ).toEqual([]);

      // Every class ran often enough to mean something, and each produced what it should.
      const byClass = new Map<string, Map<string, number>>();
      for (const r of results) {
        const m = byClass.get(r.cls) ?? new Map<string, number>();
        const key = r.outcome === null ? 'none' : describeOutcome(r.outcome);
        m.set(key, (m.get(key) ?? 0) + 1);
        byClass.set(r.cls, m);
      }
      for (const cls of MUTATION_CLASSES) {
        const seen = [...(byClass.get(cls.name)?.values() ?? [])].reduce((a, b) => a + b, 0);
        expect(seen, `iterations of ${cls.name}`).toBeGreaterThanOrEqual(5);
      }
      if (process.env.WARREN_FUZZ_REPORT !== undefined) {
        for (const [cls, m] of byClass) console.log(cls, Object.fromEntries(m));
        console.log(
          `${results.length} iterations, ${results.filter((r) => r.stalled).length} stalled,`,
          `${steady.published} steady messages`,
        );
      }

      // Nothing reached the broker's internal-error path, and no connection was left behind.
      expect(errors).toEqual([]);
      await waitFor(
        () => tb.broker.connections.size === 2,
        'fuzz connections to be gone from the broker',
        20_000,
      );

      // The broker still accepts and serves a new connection.
      const fresh = await RawClient.connect(tb.port);
      await fresh.handshake();
      await fresh.openChannel(1);
      await fresh.closeConnection();
      fresh.destroy();

      const steadyResult = await steady.finish();
      expect(steadyResult.problems).toEqual([]);
      expect(steadyResult.published).toBeGreaterThan(100);
      expect(steadyResult.leftInQueue).toBe(0);
      // Exactly once, in order: the received sequence is 0..n-1.
      expect(steadyResult.received.length).toBe(steadyResult.published);
      const outOfPlace = steadyResult.received.findIndex((v, i) => v !== i);
      expect(outOfPlace, `first out-of-place message at ${outOfPlace}`).toBe(-1);
    } finally {
      await tb.stop();
    }
  }, 110_000);
});
