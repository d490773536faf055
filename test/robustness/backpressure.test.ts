import amqp from 'amqplib';
import { describe, expect, it } from 'vitest';
import type { Connection } from '../../src/broker/index.js';
import { FrameType, Method } from '../../src/protocol/index.js';
import type { BasicDeliver, BasicGetOk } from '../../src/protocol/index.js';
import { encodeMethodFrame, encodePublish } from '../helpers/raw-client.js';
import { startTestBroker, waitFor } from '../helpers/broker.js';
import type { TestBroker } from '../helpers/broker.js';
import { RawClient } from '../helpers/raw-client.js';
import type { RawFrame } from '../helpers/raw-client.js';

const MESSAGE_SIZE = 64 * 1024;
/** What the broker may hold for one socket: its 1 MiB high-water mark plus a flush's worth. */
const OUTPUT_BOUND = 4 * 1024 * 1024;
const CONFIRM_WINDOW = 64;

/** Methods whose content the checker follows. */
const CONTENT_METHODS = new Set<number>([
  Method.BasicDeliver,
  Method.BasicGetOk,
  Method.BasicReturn,
]);

/**
 * Follows content as it streams in (deliveries, get-oks or returns), without keeping the bodies:
 * each body starts with its publish sequence number, which must be exactly the next one expected.
 */
class DeliveryChecker {
  count = 0;
  lastTag = 0;
  errors: string[] = [];
  private inBody = false;
  private bodyReceived = 0;
  private bodySize = 0;

  onFrame = (f: RawFrame): void => {
    const m = f.method;
    if (f.type === FrameType.Method && m !== undefined && CONTENT_METHODS.has(m.id)) {
      if (this.inBody) this.errors.push(`delivery ${this.count} started before the last ended`);
      if (m.id !== Method.BasicReturn) {
        const d = m as BasicDeliver | BasicGetOk;
        this.lastTag = d.deliveryTag;
        if (d.redelivered) this.errors.push(`redelivered at ${this.count}`);
      }
      this.inBody = true;
      this.bodyReceived = 0;
      this.bodySize = -1;
    } else if (f.type === FrameType.Header && this.inBody) {
      this.bodySize = Number(f.payload.readBigUInt64BE(4));
      if (this.bodySize !== MESSAGE_SIZE) this.errors.push(`body size ${this.bodySize}`);
    } else if (f.type === FrameType.Body && this.inBody) {
      if (this.bodyReceived === 0) {
        const seq = f.payload.readUInt32BE(0);
        if (seq !== this.count && this.errors.length < 10) {
          this.errors.push(`expected message ${this.count}, got ${seq}`);
        }
      }
      this.bodyReceived += f.payload.length;
      if (this.bodyReceived >= this.bodySize) {
        this.inBody = false;
        this.count++;
      }
    }
  };
}

/** Everything but content is recorded, so replies can be awaited without keeping 200 MB. */
const repliesOnly = (f: RawFrame): boolean =>
  f.type === FrameType.Method && !CONTENT_METHODS.has(f.method?.id ?? 0);

function brokerSide(tb: TestBroker, c: RawClient): Connection {
  for (const conn of tb.broker.connections) {
    if (conn.remotePort === c.socket.localPort) return conn;
  }
  throw new Error('no broker connection for the client');
}

async function runBackpressure(options: {
  queue: string;
  messages: number;
  noAck: boolean;
  prefetch: number;
}): Promise<void> {
  const { queue, messages, noAck, prefetch } = options;
  const tb = await startTestBroker();
  const checker = new DeliveryChecker();
  const consumer = await RawClient.connect(tb.port, {
    record: repliesOnly,
    onFrame: checker.onFrame,
  });
  const publisherConn = await amqp.connect(tb.url);
  try {
    await consumer.handshake();
    await consumer.openChannel(1);
    await consumer.call(
      1,
      {
        id: Method.QueueDeclare,
        ticket: 0,
        queue,
        passive: false,
        durable: false,
        exclusive: false,
        autoDelete: false,
        nowait: false,
        arguments: {},
      },
      Method.QueueDeclareOk,
    );
    if (prefetch > 0) {
      await consumer.call(
        1,
        { id: Method.BasicQos, prefetchSize: 0, prefetchCount: prefetch, global: false },
        Method.BasicQosOk,
      );
    }
    await consumer.call(
      1,
      {
        id: Method.BasicConsume,
        ticket: 0,
        queue,
        consumerTag: 'slow',
        noLocal: false,
        noAck,
        exclusive: false,
        nowait: false,
        arguments: {},
      },
      Method.BasicConsumeOk,
    );
    // From now on the consumer reads nothing: the broker's writes back up.
    consumer.pause();
    const conn = brokerSide(tb, consumer);
    const q = tb.broker.getVhost('/')!.getQueue(queue);

    const pub = await publisherConn.createConfirmChannel();
    let maxQueuedForSocket = 0;
    const sample = (): void => {
      maxQueuedForSocket = Math.max(maxQueuedForSocket, conn.transport.writableLength);
    };
    const sampler = setInterval(sample, 2);
    const body = Buffer.alloc(MESSAGE_SIZE, 0x5a);
    for (let i = 0; i < messages; i++) {
      body.writeUInt32BE(i, 0);
      // amqplib copies the content into its frame, so reusing `body` is safe.
      pub.publish('', queue, body);
      if ((i + 1) % CONFIRM_WINDOW === 0 || i === messages - 1) {
        await pub.waitForConfirms();
        sample();
      }
    }
    clearInterval(sampler);
    sample();

    // The broker stopped writing at its bound and kept the rest in the queue.
    expect(maxQueuedForSocket).toBeGreaterThan(0);
    expect(maxQueuedForSocket).toBeLessThan(OUTPUT_BOUND);
    expect(q.messageCount + q.stats.delivered).toBe(messages);
    expect(q.messageCount).toBeGreaterThan(messages / 2);

    // Once the consumer reads again, everything arrives exactly once and in order.
    // Draining the backlog must respect the same bound: it goes out as the socket takes it.
    let maxWhileResuming = 0;
    const resumeSampler = setInterval(() => {
      maxWhileResuming = Math.max(maxWhileResuming, conn.transport.writableLength);
    }, 1);
    consumer.resume();
    let acked = 0;
    await consumer.waitUntil(
      () => {
        if (!noAck && checker.lastTag > acked) {
          acked = checker.lastTag;
          void consumer.sendMethod(1, { id: Method.BasicAck, deliveryTag: acked, multiple: true });
        }
        return checker.count >= messages || checker.errors.length > 0 ? true : undefined;
      },
      `${messages} deliveries`,
      90_000,
    );
    clearInterval(resumeSampler);
    expect(checker.errors).toEqual([]);
    expect(checker.count).toBe(messages);
    // A round trip after the last delivery: nothing more (no duplicate) was on its way.
    await consumer.call(
      1,
      { id: Method.BasicQos, prefetchSize: 0, prefetchCount: prefetch, global: false },
      Method.BasicQosOk,
      30_000,
    );
    expect(checker.count).toBe(messages);
    expect(q.messageCount).toBe(0);
    if (!noAck) await waitFor(() => q.unackedCount === 0, 'every delivery to be acked');
    await consumer.closeConnection();
  } finally {
    consumer.destroy();
    await publisherConn.close().catch(() => undefined);
    await tb.stop();
  }
}

describe('backpressure towards a consumer that stops reading', () => {
  it('holds 200 MB for a stalled no-ack consumer in the queue, not in socket buffers', async () => {
    await runBackpressure({
      queue: 'bp-noack',
      messages: 3200, // 200 MiB
      noAck: true,
      prefetch: 0,
    });
  }, 120_000);

  it('does the same when only a prefetch larger than the backlog limits an acking consumer', async () => {
    await runBackpressure({
      queue: 'bp-prefetch',
      messages: 1600, // 100 MiB, all of it within the prefetch window
      noAck: false,
      prefetch: 5000,
    });
  }, 120_000);
});

/**
 * Requests whose answers carry content, pipelined by a client that reads nothing: the broker must
 * stop taking requests when its output is full instead of answering them all into memory.
 */
async function runRequestFlood(kind: 'get' | 'return', messages: number): Promise<void> {
  const tb = await startTestBroker();
  const checker = new DeliveryChecker();
  const client = await RawClient.connect(tb.port, {
    record: repliesOnly,
    onFrame: checker.onFrame,
  });
  try {
    await client.handshake();
    await client.openChannel(1);
    const conn = brokerSide(tb, client);
    const queue = `flood-${kind}`;
    await client.call(
      1,
      {
        id: Method.QueueDeclare,
        ticket: 0,
        queue,
        passive: false,
        durable: false,
        exclusive: false,
        autoDelete: false,
        nowait: false,
        arguments: {},
      },
      Method.QueueDeclareOk,
    );
    const body = Buffer.alloc(MESSAGE_SIZE, 0x33);
    const q = tb.broker.getVhost('/')!.getQueue(queue);
    let requests: Buffer;
    if (kind === 'get') {
      const batch: Buffer[] = [];
      for (let i = 0; i < messages; i++) {
        body.writeUInt32BE(i, 0);
        batch.push(encodePublish(1, '', queue, body));
      }
      await client.send(Buffer.concat(batch));
      await waitFor(() => q.messageCount === messages, 'the messages to be queued');
      const get = encodeMethodFrame(1, { id: Method.BasicGet, ticket: 0, queue, noAck: true });
      requests = Buffer.concat(Array.from({ length: messages }, () => get));
    } else {
      const batch: Buffer[] = [];
      for (let i = 0; i < messages; i++) {
        body.writeUInt32BE(i, 0);
        const frames = encodePublish(1, '', 'no-such-queue', body);
        const method = encodeMethodFrame(1, {
          id: Method.BasicPublish,
          ticket: 0,
          exchange: '',
          routingKey: 'no-such-queue',
          mandatory: true,
          immediate: false,
        });
        batch.push(method, frames.subarray(frames.readUInt32BE(3) + 8));
      }
      requests = Buffer.concat(batch);
    }
    const total = messages * MESSAGE_SIZE;
    const sentBefore = conn.stats.sendOct;
    client.pause();
    let maxQueuedForSocket = 0;
    const sampler = setInterval(() => {
      maxQueuedForSocket = Math.max(maxQueuedForSocket, conn.transport.writableLength);
    }, 1);
    client.socket.write(requests);
    // Either the broker stops reading with its output full, or (the failure) it answers all.
    await waitFor(
      () =>
        (conn.transport.isPaused() && conn.transport.writableLength > 0) ||
        conn.stats.sendOct - sentBefore >= total,
      'the broker to stop reading or to answer everything',
      30_000,
    );
    maxQueuedForSocket = Math.max(maxQueuedForSocket, conn.transport.writableLength);
    expect(maxQueuedForSocket).toBeLessThan(OUTPUT_BOUND);
    expect(conn.stats.sendOct - sentBefore).toBeLessThan(total / 2);

    client.resume();
    await client.waitUntil(
      () => (checker.count >= messages || checker.errors.length > 0 ? true : undefined),
      `${messages} answers`,
      60_000,
    );
    clearInterval(sampler);
    expect(checker.errors).toEqual([]);
    expect(checker.count).toBe(messages);
    expect(maxQueuedForSocket).toBeLessThan(OUTPUT_BOUND);
    if (kind === 'get') {
      expect(checker.lastTag).toBe(messages);
      expect(q.messageCount).toBe(0);
    }
    // The connection is healthy afterwards.
    await client.call(
      1,
      { id: Method.BasicQos, prefetchSize: 0, prefetchCount: 1, global: false },
      Method.BasicQosOk,
    );
    await client.closeConnection();
  } finally {
    client.destroy();
    await tb.stop();
  }
}

describe('backpressure towards a client that pipelines requests and stops reading', () => {
  it('answers 100 MB of basic.get only as fast as the client reads', async () => {
    await runRequestFlood('get', 1600);
  }, 120_000);

  it('returns 50 MB of unroutable mandatory publishes only as fast as the client reads', async () => {
    await runRequestFlood('return', 800);
  }, 120_000);
});
