import { connect } from 'amqplib';
import type { ChannelModel, ConsumeMessage } from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestBroker, waitFor } from '../helpers/broker.js';
import type { TestBroker } from '../helpers/broker.js';

/** A connection's connection.blocked / unblocked notifications, as amqplib reports them. */
function watchBlocked(conn: ChannelModel): { events: string[] } {
  const w = { events: [] as string[] };
  conn.on('blocked', (reason: string) => w.events.push(`blocked: ${reason}`));
  conn.on('unblocked', () => w.events.push('unblocked'));
  return w;
}

/** A bounded wait that shows something does not happen (nothing here is timed). */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 300));

describe('resource alarms', () => {
  let b: TestBroker | undefined;
  afterEach(async () => {
    await b?.stop();
    b = undefined;
  });

  it('a memory alarm blocks publishing connections while consumers keep draining', async () => {
    b = await startTestBroker();
    const broker = b.broker;
    const pubConn = await connect(b.url);
    const pubWatch = watchBlocked(pubConn);
    const pub = await pubConn.createConfirmChannel();
    const q = 'alarm.work';
    await pub.assertQueue(q, { durable: false });
    for (let i = 0; i < 20; i++) pub.sendToQueue(q, Buffer.from(`before ${i}`));
    await pub.waitForConfirms();

    const conConn = await connect(b.url);
    const conWatch = watchBlocked(conConn);
    broker.setAlarm('memory', true, () => 'test: memory is short');
    expect(broker.alarms.has('memory')).toBe(true);

    // The publisher is blocked once it publishes; what it sends is not taken in.
    const acked: string[] = [];
    for (let i = 0; i < 10; i++) {
      pub.sendToQueue(q, Buffer.from(`during ${i}`), {}, (err: unknown) => {
        if (err === null || err === undefined) acked.push(`during ${i}`);
      });
    }
    await waitFor(() => pubWatch.events.length > 0, 'connection.blocked');
    expect(pubWatch.events).toEqual(['blocked: memory']);
    const queue = broker.getVhost('/')!.queues.get(q)!;
    await settle();
    expect(queue.messageCount).toBe(20);
    expect(acked).toEqual([]);
    expect([...broker.connections].filter((c) => c.blocked)).toHaveLength(1);

    // A connection that only consumes is not blocked: it drains the queue and can still work.
    const con = await conConn.createChannel();
    await con.prefetch(5);
    const got: ConsumeMessage[] = [];
    await con.consume(q, (m) => {
      if (m === null) return;
      got.push(m);
      con.ack(m);
    });
    await waitFor(() => got.length === 20, 'the 20 queued messages');
    expect(got.map((m) => m.content.toString())).toEqual(
      Array.from({ length: 20 }, (_, i) => `before ${i}`),
    );
    const ok = await con.checkQueue(q);
    expect(ok.messageCount).toBe(0);
    expect(conWatch.events).toEqual([]);
    await settle();
    expect(acked).toEqual([]);

    // Cleared: unblocked, and the held publishes go through, confirmed and delivered in order.
    broker.setAlarm('memory', false);
    await waitFor(() => acked.length === 10, 'the held publishes to be confirmed');
    expect(pubWatch.events).toEqual(['blocked: memory', 'unblocked']);
    await waitFor(() => got.length === 30, 'the held publishes to be delivered');
    expect(got.slice(20).map((m) => m.content.toString())).toEqual(
      Array.from({ length: 10 }, (_, i) => `during ${i}`),
    );
    await pubConn.close();
    await conConn.close();
  });

  it('memoryHighWatermark: resident memory above it raises the alarm; below, it clears', async () => {
    // A watermark below any process's size: the broker's own check raises the alarm.
    b = await startTestBroker({ memoryHighWatermark: 1024 * 1024 });
    const broker = b.broker;
    await waitFor(() => broker.alarms.has('memory'), 'the memory alarm', 5_000);
    const conn = await connect(b.url);
    const watch = watchBlocked(conn);
    const ch = await conn.createChannel();
    await ch.assertQueue('alarm.watermark', { durable: false });
    ch.sendToQueue('alarm.watermark', Buffer.from('held'));
    await waitFor(() => watch.events.length > 0, 'connection.blocked');
    expect(watch.events[0]).toBe('blocked: memory');
    broker.config.memoryHighWatermark = Number.MAX_SAFE_INTEGER;
    await waitFor(() => watch.events.includes('unblocked'), 'connection.unblocked', 5_000);
    await waitFor(
      () => broker.getVhost('/')!.queues.get('alarm.watermark')!.messageCount === 1,
      'the held message',
    );
    await conn.close();
  });

  it('a disk alarm (free space below diskFreeLimit) blocks publishers too', async () => {
    b = await startTestBroker({ diskFreeLimit: Number.MAX_SAFE_INTEGER });
    const broker = b.broker;
    broker.checkAlarms();
    expect([...broker.alarms]).toEqual(['disk']);
    const conn = await connect(b.url);
    const watch = watchBlocked(conn);
    const ch = await conn.createChannel();
    ch.sendToQueue('nowhere', Buffer.from('x'));
    await waitFor(() => watch.events.length > 0, 'connection.blocked');
    expect(watch.events).toEqual(['blocked: disk']);
    broker.config.diskFreeLimit = 0;
    broker.checkAlarms();
    await waitFor(() => watch.events.length > 1, 'connection.unblocked');
    expect(watch.events).toEqual(['blocked: disk', 'unblocked']);
    await conn.close();
  });
});
