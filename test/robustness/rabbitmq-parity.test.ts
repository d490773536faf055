import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameType, Method, ReplyCode } from '../../src/protocol/index.js';
import { startTestBroker } from '../helpers/broker.js';
import type { TestBroker } from '../helpers/broker.js';
import { RawClient, encodeFrame, encodeMethodFrame } from '../helpers/raw-client.js';
import { requireRabbitmq } from '../helpers/rabbitmq.js';
import { PROBE_CHANNEL, WORK_CHANNEL, contentHeader, describeOutcome } from './mutations.js';
import type { Outcome } from './mutations.js';

/**
 * The same damaged bytes sent to Warren and to RabbitMQ 3.10 after a clean handshake: both must
 * answer with the reply code in the table. Where the two differ on purpose, the table says so and
 * why, and the RabbitMQ column is checked too, so the claim stays true.
 */

const ch = WORK_CHANNEL;

const qos = (channel: number): Buffer =>
  encodeMethodFrame(channel, {
    id: Method.BasicQos,
    prefetchSize: 0,
    prefetchCount: 1,
    global: false,
  });

const publish = (exchange = ''): Buffer =>
  encodeMethodFrame(ch, {
    id: Method.BasicPublish,
    ticket: 0,
    exchange,
    routingKey: 'parity-nowhere',
    mandatory: false,
    immediate: false,
  });

/** A method frame with raw payload octets (class-id, method-id, arguments). */
const rawMethod = (channel: number, payload: number[]): Buffer =>
  encodeFrame(FrameType.Method, channel, Buffer.from(payload));

const conn = (code: number): Outcome => ({ kind: 'connection-close', code });
const chan = (code: number): Outcome => ({ kind: 'channel-close', code });

interface ParityCase {
  name: string;
  bytes: () => Buffer[];
  warren: Outcome;
  /** RabbitMQ's answer when it differs from Warren's (with the reason in `why`). */
  rabbitmq?: Outcome;
  why?: string;
}

const CASES: ParityCase[] = [
  {
    name: 'frame larger than frame_max',
    bytes: () => [encodeFrame(FrameType.Body, ch, Buffer.alloc(200_000))],
    warren: conn(ReplyCode.FrameError),
  },
  {
    name: 'bad frame-end octet',
    bytes: () => {
      const f = qos(ch);
      f[f.length - 1] = 0;
      return [f];
    },
    warren: conn(ReplyCode.FrameError),
  },
  {
    name: 'unknown frame type',
    bytes: () => [encodeFrame(9, ch, Buffer.from('abc'))],
    warren: conn(ReplyCode.FrameError),
  },
  {
    name: 'empty method frame',
    bytes: () => [encodeFrame(FrameType.Method, ch, Buffer.alloc(0))],
    warren: conn(ReplyCode.FrameError),
  },
  {
    name: 'method arguments cut short',
    bytes: () => [rawMethod(ch, [0, 50, 0, 10, 0, 0, 20, 0x61])],
    warren: conn(ReplyCode.FrameError),
  },
  {
    name: 'octets after the method arguments',
    bytes: () => {
      const args = qos(ch).subarray(7, -1);
      return [encodeFrame(FrameType.Method, ch, Buffer.concat([args, Buffer.from([1, 2, 3])]))];
    },
    warren: conn(ReplyCode.FrameError),
  },
  {
    name: 'field table longer than its frame',
    bytes: () => [
      // queue.declare 'q' with an arguments table announcing 256 octets and holding 4
      rawMethod(ch, [0, 50, 0, 10, 0, 0, 1, 0x71, 0, 0, 0, 1, 0, 1, 0x61, 0x74, 1]),
    ],
    warren: conn(ReplyCode.FrameError),
  },
  {
    name: 'content header shorter than its fixed fields',
    bytes: () => [publish(), encodeFrame(FrameType.Header, ch, Buffer.from([0, 60, 0, 0, 0, 0]))],
    warren: conn(ReplyCode.FrameError),
  },
  {
    name: 'heartbeat frame with a payload',
    bytes: () => [encodeFrame(FrameType.Heartbeat, 0, Buffer.from('ab'))],
    warren: conn(ReplyCode.FrameError),
  },
  {
    name: 'heartbeat frame on a channel other than 0',
    bytes: () => [encodeFrame(FrameType.Heartbeat, ch, Buffer.alloc(0))],
    warren: conn(ReplyCode.UnexpectedFrame),
  },
  {
    name: 'content body without a publish',
    bytes: () => [encodeFrame(FrameType.Body, ch, Buffer.from('abc'))],
    warren: conn(ReplyCode.UnexpectedFrame),
  },
  {
    name: 'content header without a publish',
    bytes: () => [contentHeader(ch, 3)],
    warren: conn(ReplyCode.UnexpectedFrame),
  },
  {
    name: 'content header of another class',
    bytes: () => [publish(), contentHeader(ch, 3, 50)],
    warren: conn(ReplyCode.UnexpectedFrame),
  },
  {
    name: 'method where a content header belongs',
    bytes: () => [publish(), qos(ch)],
    warren: conn(ReplyCode.UnexpectedFrame),
  },
  {
    name: 'method where a content body belongs',
    bytes: () => [publish(), contentHeader(ch, 3), qos(ch)],
    warren: conn(ReplyCode.UnexpectedFrame),
  },
  {
    name: 'body after a zero-size content header',
    bytes: () => [
      publish(),
      contentHeader(ch, 0),
      encodeFrame(FrameType.Body, ch, Buffer.from('a')),
    ],
    warren: conn(ReplyCode.UnexpectedFrame),
  },
  {
    name: 'content header on channel 0',
    bytes: () => [contentHeader(0, 3)],
    warren: conn(ReplyCode.UnexpectedFrame),
  },
  {
    name: 'content body on channel 0',
    bytes: () => [encodeFrame(FrameType.Body, 0, Buffer.from('abc'))],
    warren: conn(ReplyCode.UnexpectedFrame),
  },
  {
    name: 'method on a channel never opened',
    bytes: () => [qos(5)],
    warren: conn(ReplyCode.ChannelError),
  },
  {
    name: 'second channel.open',
    bytes: () => [encodeMethodFrame(ch, { id: Method.ChannelOpen, outOfBand: '' })],
    warren: conn(ReplyCode.ChannelError),
  },
  {
    name: 'channel.open on channel 0',
    bytes: () => [encodeMethodFrame(0, { id: Method.ChannelOpen, outOfBand: '' })],
    warren: conn(ReplyCode.ChannelError),
  },
  {
    name: 'basic.qos on channel 0',
    bytes: () => [qos(0)],
    warren: conn(ReplyCode.ChannelError),
  },
  {
    name: 'connection.tune-ok after the handshake',
    bytes: () => [
      encodeMethodFrame(0, {
        id: Method.ConnectionTuneOk,
        channelMax: 2047,
        frameMax: 131072,
        heartbeat: 0,
      }),
    ],
    warren: conn(ReplyCode.ChannelError),
  },
  {
    name: 'unsolicited connection.close-ok',
    bytes: () => [encodeMethodFrame(0, { id: Method.ConnectionCloseOk })],
    warren: conn(ReplyCode.ChannelError),
  },
  {
    name: 'a method only the server sends (basic.qos-ok)',
    bytes: () => [encodeMethodFrame(ch, { id: Method.BasicQosOk })],
    warren: conn(ReplyCode.CommandInvalid),
  },
  {
    name: 'basic.qos with prefetch_size',
    bytes: () => [
      encodeMethodFrame(ch, {
        id: Method.BasicQos,
        prefetchSize: 5,
        prefetchCount: 1,
        global: false,
      }),
    ],
    warren: conn(ReplyCode.NotImplemented),
  },
  {
    name: 'ack of an unknown delivery tag',
    bytes: () => [encodeMethodFrame(ch, { id: Method.BasicAck, deliveryTag: 7, multiple: false })],
    warren: chan(ReplyCode.PreconditionFailed),
  },
  {
    name: 'publish to a missing exchange',
    bytes: () => [publish('parity-no-such-exchange'), contentHeader(ch, 0)],
    warren: chan(ReplyCode.NotFound),
  },
  {
    name: 'unknown class and method ids',
    bytes: () => [rawMethod(ch, [0, 99, 0, 10])],
    warren: conn(ReplyCode.NotImplemented),
    rabbitmq: { kind: 'socket-close' },
    why: 'RabbitMQ drops the socket without a word; 540 tells the client what happened',
  },
  {
    name: 'field table value of an unknown type',
    bytes: () => [
      // queue.declare 'q' whose arguments hold one entry of type 'Z'
      rawMethod(ch, [0, 50, 0, 10, 0, 0, 1, 0x71, 0, 0, 0, 0, 7, 1, 0x61, 0x5a, 0, 0, 0, 0]),
    ],
    warren: conn(ReplyCode.SyntaxError),
    rabbitmq: { kind: 'socket-close' },
    why: "RabbitMQ's table parser crashes the connection; 502 is the spec's code for bad fields",
  },
];

/** Wait for the first decisive answer: connection.close, channel.close or a closed socket. */
async function observe(c: RawClient, from: number): Promise<Outcome> {
  return c.waitUntil<Outcome>(
    () => {
      for (let i = from; i < c.frames.length; i++) {
        const f = c.frames[i]!;
        const m = f.method;
        if (m?.id === Method.ConnectionClose && f.channel === 0) {
          return { kind: 'connection-close', code: m.replyCode };
        }
        if (m?.id === Method.ChannelClose && f.channel === ch) {
          return { kind: 'channel-close', code: m.replyCode };
        }
      }
      return c.closed ? { kind: 'socket-close' } : undefined;
    },
    'connection.close, channel.close or the socket to close',
    10_000,
  );
}

async function run(port: number, bytes: Buffer[]): Promise<Outcome> {
  const c = await RawClient.connect(port);
  try {
    await c.handshake({
      clientProperties: { capabilities: { authentication_failure_close: true } },
    });
    await c.openChannel(ch);
    const from = c.frames.length;
    for (const b of bytes) await c.send(b);
    await c.sendMethod(PROBE_CHANNEL, { id: Method.ChannelOpen, outOfBand: '' });
    const outcome = await observe(c, from);
    if (outcome.kind === 'connection-close') await c.sendCloseOk();
    return outcome;
  } finally {
    c.destroy();
  }
}

let tb: TestBroker;

beforeAll(async () => {
  await requireRabbitmq();
  tb = await startTestBroker();
});

afterAll(async () => {
  await tb?.stop();
});

describe('damaged input: Warren answers as RabbitMQ does', () => {
  const named = CASES.map(
    (c) => [c.why === undefined ? c.name : `${c.name} (differs on purpose: ${c.why})`, c] as const,
  );
  it.each(named)('%s', async (_name, c) => {
    const warren = describeOutcome(await run(tb.port, c.bytes()));
    const rabbitmq = describeOutcome(await run(5672, c.bytes()));
    expect({ warren, rabbitmq }).toEqual({
      warren: describeOutcome(c.warren),
      rabbitmq: describeOutcome(c.rabbitmq ?? c.warren),
    });
  });
});
