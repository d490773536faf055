import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from '../../src/broker/index.js';
import {
  FrameType,
  Method,
  PROTOCOL_HEADER,
  ReplyCode,
  decodeContentHeader,
} from '../../src/protocol/index.js';
import type {
  BasicDeliver,
  ChannelClose,
  ConnectionClose,
  ConnectionStart,
  FieldTable,
} from '../../src/protocol/index.js';
import { startTestBroker, waitFor } from '../helpers/broker.js';
import type { TestBroker } from '../helpers/broker.js';
import { RawClient, encodeFrame, encodeMethodFrame, saslResponse } from '../helpers/raw-client.js';

let tb: TestBroker;
const clients: RawClient[] = [];

beforeAll(async () => {
  tb = await startTestBroker();
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  await tb.stop();
});

async function connect(port = tb.port): Promise<RawClient> {
  const c = await RawClient.connect(port);
  clients.push(c);
  return c;
}

/** The broker's side of a raw client's connection. */
function brokerSide(c: RawClient, broker = tb.broker): Connection | undefined {
  for (const conn of broker.connections) {
    if (conn.remotePort === c.socket.localPort) return conn;
  }
  return undefined;
}

/** A client that has completed the handshake and opened channel 1. */
async function openClient(): Promise<RawClient> {
  const c = await connect();
  await c.handshake();
  await c.openChannel(1);
  return c;
}

/** Send bytes and expect connection.close with `code`; answer it and see the socket close. */
async function expectConnectionClose(
  c: RawClient,
  bytes: Buffer | Buffer[],
  code: number,
): Promise<ConnectionClose> {
  const from = c.frames.length;
  for (const b of Array.isArray(bytes) ? bytes : [bytes]) await c.send(b);
  const close = await c.waitForMethod<ConnectionClose>(Method.ConnectionClose, {
    channel: 0,
    from,
  });
  expect({ code: close.replyCode, text: close.replyText }).toMatchObject({ code });
  await c.sendCloseOk();
  await c.waitForSocketClose();
  return close;
}

describe('protocol header', () => {
  it.each([
    ['HTTP', Buffer.from('GET / HTTP/1.1\r\n\r\n')],
    ['AMQP 1.0', Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 1, 0, 0])],
    ['AMQP 1.0 over SASL', Buffer.from([0x41, 0x4d, 0x51, 0x50, 3, 1, 0, 0])],
    ['AMQP 0-9', Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 0])],
    ['AMQP 0-8', Buffer.from([0x41, 0x4d, 0x51, 0x50, 1, 1, 8, 0])],
    ['a frame instead of a header', encodeMethodFrame(0, { id: Method.ConnectionCloseOk })],
  ])('answers a %s header with the 0-9-1 header and closes the socket', async (_name, header) => {
    const c = await connect();
    await c.send(header);
    await c.waitForSocketClose();
    expect(c.rawHead).toEqual(PROTOCOL_HEADER);
  });

  it('accepts the header split into single octets', async () => {
    const c = await connect();
    for (const octet of PROTOCOL_HEADER) await c.send(Buffer.from([octet]));
    const start = await c.waitForMethod<ConnectionStart>(Method.ConnectionStart);
    expect(start.versionMajor).toBe(0);
    expect(start.versionMinor).toBe(9);
  });
});

describe('authentication', () => {
  it.each(['PLAIN', 'AMQPLAIN'] as const)('logs in with %s', async (mechanism) => {
    const c = await connect();
    const { start } = await c.handshake({ mechanism });
    expect(start.mechanisms.toString().split(' ')).toEqual(
      expect.arrayContaining(['PLAIN', 'AMQPLAIN']),
    );
    const conn = brokerSide(c)!;
    expect(conn.isOpen).toBe(true);
    expect(conn.user?.name).toBe('guest');
    expect(conn.authMechanism).toBe(mechanism);
    await c.closeConnection();
  });

  it.each([
    ['PLAIN', 'guest', 'wrong'],
    ['AMQPLAIN', 'guest', 'wrong'],
    ['PLAIN', 'nobody', 'guest'],
  ] as const)(
    'refuses %s login %s/%s with connection.close 403, not a dropped socket',
    async (mechanism, user, password) => {
      const c = await connect();
      await c.sendProtocolHeader();
      await c.waitForMethod(Method.ConnectionStart);
      await c.sendMethod(0, {
        id: Method.ConnectionStartOk,
        clientProperties: { capabilities: { authentication_failure_close: true } },
        mechanism,
        response: saslResponse(mechanism, user, password),
        locale: 'en_US',
      });
      const close = await c.waitForConnectionClose();
      expect(close.replyCode).toBe(ReplyCode.AccessRefused);
      expect(close.replyText).toMatch(
        new RegExp(
          `^ACCESS_REFUSED - Login was refused using authentication mechanism ${mechanism}`,
        ),
      );
      expect(c.findMethod(Method.ConnectionTune)).toBeUndefined();
      await c.sendCloseOk();
      await c.waitForSocketClose();
    },
  );
});

describe('tuning', () => {
  it('advertises the capabilities RabbitMQ clients look for', async () => {
    const c = await connect();
    const { start } = await c.handshake();
    const caps = start.serverProperties.capabilities as FieldTable;
    for (const cap of [
      'publisher_confirms',
      'exchange_exchange_bindings',
      'basic.nack',
      'consumer_cancel_notify',
      'connection.blocked',
      'consumer_priorities',
      'authentication_failure_close',
      'per_consumer_qos',
      'direct_reply_to',
    ]) {
      expect(caps[cap], cap).toBe(true);
    }
    expect(start.serverProperties.product).toBe('Warren');
    await c.closeConnection();
  });

  it('proposes its configured limits in connection.tune', async () => {
    const other = await startTestBroker({ channelMax: 100, frameMax: 8192, heartbeat: 7 });
    try {
      const c = await connect(other.port);
      const { tune } = await c.handshake({ skipOpen: true });
      expect(tune).toMatchObject({ channelMax: 100, frameMax: 8192, heartbeat: 7 });
      c.destroy();
    } finally {
      await other.stop();
    }
  });

  it.each([
    ['frame_max above the server maximum', { frameMax: 131073 }, /frame_max=131073 > 131072/],
    ['frame_max below 4096', { frameMax: 4095 }, /frame_max=4095 < 4096/],
    ['channel_max above the server maximum', { channelMax: 2048 }, /channel_max=2048 > 2047/],
  ])('closes with 530 for tune-ok with %s', async (_name, tuneOk, text) => {
    const c = await connect();
    await c.handshake({ ...tuneOk, skipOpen: true });
    const close = await c.waitForConnectionClose();
    expect(close.replyCode).toBe(ReplyCode.NotAllowed);
    expect(close.replyText).toMatch(text);
    expect(close.classId).toBe(10);
    expect(close.methodId).toBe(31);
    await c.sendCloseOk();
    await c.waitForSocketClose();
  });

  it('enforces the negotiated frame_max on frames it receives and sends', async () => {
    const c = await connect();
    await c.handshake({ frameMax: 4096 });
    await c.openChannel(1);
    await c.call(
      1,
      {
        id: Method.QueueDeclare,
        ticket: 0,
        queue: 'fm-split',
        passive: false,
        durable: false,
        exclusive: true,
        autoDelete: false,
        nowait: false,
        arguments: {},
      },
      Method.QueueDeclareOk,
    );
    // A 10 000-octet body must come back in body frames of at most 4096 octets.
    const body = Buffer.alloc(10_000, 7);
    await c.publish(1, '', 'fm-split', body);
    const from = c.frames.length;
    await c.sendMethod(1, { id: Method.BasicGet, ticket: 0, queue: 'fm-split', noAck: true });
    await c.waitUntil(() => {
      const got = c.frames.slice(from).filter((f) => f.type === FrameType.Body);
      return got.reduce((n, f) => n + f.payload.length, 0) === body.length ? true : undefined;
    }, 'the whole body');
    const bodyFrames = c.frames.slice(from).filter((f) => f.type === FrameType.Body);
    expect(bodyFrames.length).toBe(3);
    for (const f of bodyFrames) expect(f.payload.length + 8).toBeLessThanOrEqual(4096);

    const close = await expectConnectionClose(
      c,
      encodeFrame(FrameType.Body, 1, Buffer.alloc(4097 - 8)),
      ReplyCode.FrameError,
    );
    expect(close.replyText).toMatch(/frame size 4097 exceeds negotiated frame_max 4096/);
  });

  it('takes a frame of exactly frame_max octets', async () => {
    const c = await connect();
    await c.handshake({ frameMax: 4096 });
    await c.openChannel(1);
    await c.call(
      1,
      {
        id: Method.QueueDeclare,
        ticket: 0,
        queue: 'fm-exact',
        passive: false,
        durable: false,
        exclusive: true,
        autoDelete: false,
        nowait: false,
        arguments: {},
      },
      Method.QueueDeclareOk,
    );
    const body = Buffer.alloc(4096 - 8, 1);
    await c.publish(1, '', 'fm-exact', body);
    const q = tb.broker.getVhost('/')!.getQueue('fm-exact');
    await waitFor(() => q.messageCount === 1, 'the message to be queued');
    await c.closeConnection();
  });

  it.each([
    ['10', 10, 10],
    ['0 (the server maximum)', 0, 2047],
  ])('negotiates channel_max %s', async (_name, channelMax, highest) => {
    const c = await connect();
    await c.handshake({ channelMax });
    expect(brokerSide(c)!.channelMax).toBe(highest);
    await c.openChannel(highest);
    const close = await expectConnectionClose(
      c,
      encodeMethodFrame(highest + 1, { id: Method.ChannelOpen, outOfBand: '' }),
      ReplyCode.NotAllowed,
    );
    expect(close.replyText).toMatch(
      `channel number ${highest + 1} exceeds the negotiated channel_max ${highest}`,
    );
  });
});

describe('framing and channel errors', () => {
  it('closes with 501 for a frame larger than the negotiated frame_max', async () => {
    const c = await openClient();
    await expectConnectionClose(
      c,
      encodeFrame(FrameType.Body, 1, Buffer.alloc(131072)),
      ReplyCode.FrameError,
    );
  });

  it('closes with 501 for a bad frame-end octet', async () => {
    const c = await openClient();
    const frame = encodeMethodFrame(1, {
      id: Method.BasicQos,
      prefetchSize: 0,
      prefetchCount: 1,
      global: false,
    });
    frame[frame.length - 1] = 0xcd;
    const close = await expectConnectionClose(c, frame, ReplyCode.FrameError);
    expect(close.replyText).toMatch(/frame end/);
  });

  it('closes with 504 for a method on a channel that was never opened', async () => {
    const c = await openClient();
    const close = await expectConnectionClose(
      c,
      encodeMethodFrame(7, {
        id: Method.BasicQos,
        prefetchSize: 0,
        prefetchCount: 1,
        global: false,
      }),
      ReplyCode.ChannelError,
    );
    expect(close.replyText).toMatch(/expected 'channel.open'/);
  });

  it('closes with 504 for a method on a channel after it was closed', async () => {
    const c = await openClient();
    await c.call(
      1,
      { id: Method.ChannelClose, replyCode: 200, replyText: '', classId: 0, methodId: 0 },
      Method.ChannelCloseOk,
    );
    await expectConnectionClose(
      c,
      encodeMethodFrame(1, {
        id: Method.BasicQos,
        prefetchSize: 0,
        prefetchCount: 1,
        global: false,
      }),
      ReplyCode.ChannelError,
    );
  });

  it('closes with 504 for a second channel.open on an open channel', async () => {
    const c = await openClient();
    const close = await expectConnectionClose(
      c,
      encodeMethodFrame(1, { id: Method.ChannelOpen, outOfBand: '' }),
      ReplyCode.ChannelError,
    );
    expect(close.replyText).toMatch(/second 'channel.open'/);
  });

  it('closes with 504 for a channel frame before connection.open', async () => {
    const c = await connect();
    await c.handshake({ skipOpen: true });
    await expectConnectionClose(
      c,
      encodeMethodFrame(1, { id: Method.ChannelOpen, outOfBand: '' }),
      ReplyCode.ChannelError,
    );
  });

  it('closes only the channel for a channel-level error, and the connection goes on', async () => {
    const c = await openClient();
    await c.openChannel(2);
    const from = c.frames.length;
    await c.sendMethod(1, { id: Method.BasicAck, deliveryTag: 99, multiple: false });
    const close = await c.waitForMethod<ChannelClose>(Method.ChannelClose, { channel: 1, from });
    expect(close.replyCode).toBe(ReplyCode.PreconditionFailed);
    expect(c.findMethod(Method.ConnectionClose, { from })).toBeUndefined();
    await c.sendMethod(1, { id: Method.ChannelCloseOk });
    // Channel 2 still works and channel 1 can be opened again.
    await c.call(
      2,
      { id: Method.BasicQos, prefetchSize: 0, prefetchCount: 5, global: false },
      Method.BasicQosOk,
    );
    await c.openChannel(1);
    await c.closeConnection();
  });
});

describe('heartbeats', () => {
  it('sends heartbeats to an idle client and keeps it while it sends its own', async () => {
    const c = await connect();
    await c.handshake({ heartbeat: 1 });
    c.startHeartbeats(400);
    await c.waitUntil(
      () => (c.framesOfType(FrameType.Heartbeat).length >= 3 ? true : undefined),
      'three heartbeats from the broker',
      15_000,
    );
    for (const hb of c.framesOfType(FrameType.Heartbeat)) {
      expect(hb.channel).toBe(0);
      expect(hb.payload.length).toBe(0);
    }
    expect(c.closed).toBe(false);
    expect(brokerSide(c)?.isOpen).toBe(true);
    c.stopHeartbeats();
    await c.closeConnection();
  });

  it('disconnects a client that goes silent for more than two intervals', async () => {
    const c = await connect();
    await c.handshake({ heartbeat: 1 });
    const conn = brokerSide(c)!;
    expect(conn.heartbeat).toBe(1);
    await c.waitForSocketClose(15_000);
    // It had been told: the broker kept sending heartbeats until it gave up.
    expect(c.framesOfType(FrameType.Heartbeat).length).toBeGreaterThan(0);
    await waitFor(() => !tb.broker.connections.has(conn), 'the broker to forget the connection');
  });

  it('neither sends heartbeats nor times out when the client disables them', async () => {
    const c = await connect();
    await c.handshake({ heartbeat: 0 });
    const conn = brokerSide(c)!;
    expect(conn.heartbeat).toBe(0);
    // The broker's ticker runs once a second; three ticks must pass without a heartbeat or a
    // disconnect. Observe the ticks through a connection that does heartbeat.
    const witness = await connect();
    await witness.handshake({ heartbeat: 1 });
    witness.startHeartbeats(400);
    await witness.waitUntil(
      () => (witness.framesOfType(FrameType.Heartbeat).length >= 3 ? true : undefined),
      'three broker ticks',
      15_000,
    );
    expect(c.framesOfType(FrameType.Heartbeat)).toEqual([]);
    expect(c.closed).toBe(false);
    witness.stopHeartbeats();
    await witness.closeConnection();
    await c.closeConnection();
  });
});

describe('closing', () => {
  it('answers a client connection.close with close-ok and hangs up', async () => {
    const c = await openClient();
    const conn = brokerSide(c)!;
    await c.closeConnection();
    await c.waitForSocketClose();
    await waitFor(() => !tb.broker.connections.has(conn), 'the broker to forget the connection');
  });

  it('requeues unacknowledged deliveries when the client closes', async () => {
    const c = await openClient();
    await c.call(
      1,
      {
        id: Method.QueueDeclare,
        ticket: 0,
        queue: 'close-requeue',
        passive: false,
        durable: false,
        exclusive: false,
        autoDelete: false,
        nowait: false,
        arguments: {},
      },
      Method.QueueDeclareOk,
    );
    for (let i = 0; i < 3; i++) await c.publish(1, '', 'close-requeue', Buffer.from(`m${i}`));
    await c.call(
      1,
      {
        id: Method.BasicConsume,
        ticket: 0,
        queue: 'close-requeue',
        consumerTag: 'ct',
        noLocal: false,
        noAck: false,
        exclusive: false,
        nowait: false,
        arguments: {},
      },
      Method.BasicConsumeOk,
    );
    await c.waitUntil(
      () =>
        c.frames.filter((f) => f.method?.id === Method.BasicDeliver).length === 3
          ? true
          : undefined,
      'three deliveries',
    );
    const delivered = c.frames.filter((f) => f.method?.id === Method.BasicDeliver);
    expect(delivered.map((f) => (f.method as BasicDeliver).redelivered)).toEqual([
      false,
      false,
      false,
    ]);
    const q = tb.broker.getVhost('/')!.getQueue('close-requeue');
    expect(q.messageCount).toBe(0);
    await c.closeConnection();
    await waitFor(() => q.messageCount === 3, 'the deliveries to be requeued');
    expect(q.unackedCount).toBe(0);

    // They come back, in order, marked redelivered.
    const c2 = await openClient();
    for (let i = 0; i < 3; i++) {
      const from = c2.frames.length;
      await c2.sendMethod(1, {
        id: Method.BasicGet,
        ticket: 0,
        queue: 'close-requeue',
        noAck: true,
      });
      await c2.waitUntil(
        () => (c2.frames.slice(from).some((f) => f.type === FrameType.Body) ? true : undefined),
        'basic.get-ok and its content',
      );
      const frames = c2.frames.slice(from);
      const getOk = frames.find((f) => f.method?.id === Method.BasicGetOk)!.method!;
      expect(getOk).toMatchObject({ redelivered: true });
      const header = frames.find((f) => f.type === FrameType.Header)!;
      expect(decodeContentHeader(header.payload).bodySize).toBe(2);
      expect(frames.find((f) => f.type === FrameType.Body)!.payload.toString()).toBe(`m${i}`);
    }
    await c2.closeConnection();
  });

  it('closes a connection from the broker side with 320 and waits for close-ok', async () => {
    const c = await openClient();
    const conn = brokerSide(c)!;
    conn.close('closed by the test');
    const close = await c.waitForConnectionClose();
    expect(close.replyCode).toBe(ReplyCode.ConnectionForced);
    expect(close.replyText).toBe('CONNECTION_FORCED - closed by the test');
    // Until close-ok the broker keeps the socket open (and ignores other methods).
    await c.sendMethod(1, {
      id: Method.BasicQos,
      prefetchSize: 0,
      prefetchCount: 1,
      global: false,
    });
    await c.sendCloseOk();
    await c.waitForSocketClose();
    expect(c.findMethod(Method.BasicQosOk)).toBeUndefined();
    await waitFor(() => !tb.broker.connections.has(conn), 'the broker to forget the connection');
  });

  it('hangs up on a client that never answers its connection.close', async () => {
    const c = await openClient();
    const conn = brokerSide(c)!;
    conn.close('closed by the test');
    await c.waitForConnectionClose();
    await c.waitForSocketClose(15_000);
    await waitFor(() => !tb.broker.connections.has(conn), 'the broker to forget the connection');
  });

  it('treats connection.close from both sides at once as a completed close', async () => {
    const c = await openClient();
    const conn = brokerSide(c)!;
    conn.close('closed by the test');
    await c.sendMethod(0, {
      id: Method.ConnectionClose,
      replyCode: 200,
      replyText: 'bye',
      classId: 0,
      methodId: 0,
    });
    await c.waitForMethod(Method.ConnectionCloseOk);
    await c.waitForSocketClose();
  });
});

describe('the tune the broker proposes', () => {
  it('uses the client heartbeat when it differs from the proposal', async () => {
    const c = await connect();
    const { tune } = await c.handshake({ heartbeat: 5 });
    expect(tune.heartbeat).toBe(60);
    expect(brokerSide(c)!.heartbeat).toBe(5);
    await c.closeConnection();
  });
});
