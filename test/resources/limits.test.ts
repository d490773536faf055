import { randomBytes } from 'node:crypto';
import { connect } from 'amqplib';
import type { ChannelModel } from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { Method } from '../../src/protocol/index.js';
import type { ConnectionClose } from '../../src/protocol/index.js';
import { runScenario } from '../differential/harness.js';
import type { ScenarioContext } from '../differential/harness.js';
import { startTestBroker, waitFor } from '../helpers/broker.js';
import type { TestBroker } from '../helpers/broker.js';
import { RABBITMQ_URL, requireRabbitmq } from '../helpers/rabbitmq.js';
import { RawClient } from '../helpers/raw-client.js';
import { rabbitmqAdmin, warrenAdmin } from '../security/admin.js';
import type { Admin } from '../security/admin.js';

describe('limits', () => {
  let b: TestBroker | undefined;
  afterEach(async () => {
    await b?.stop();
    b = undefined;
  });

  it('maxConnections: connection.open beyond the limit gets 530, a freed slot is reusable', async () => {
    b = await startTestBroker({ maxConnections: 2 });
    const held: ChannelModel[] = [await connect(b.url), await connect(b.url)];
    const raw = await RawClient.connect(b.port);
    try {
      await raw.handshake({ skipOpen: true });
      await raw.sendMethod(0, {
        id: Method.ConnectionOpen,
        virtualHost: '/',
        capabilities: '',
        insist: false,
      });
      const close: ConnectionClose = await raw.waitForConnectionClose();
      expect({ ...close, id: undefined }).toEqual({
        id: undefined,
        replyCode: 530,
        replyText: 'NOT_ALLOWED - connection refused: node connection limit (2) is reached',
        classId: Method.ConnectionOpen >>> 16,
        methodId: Method.ConnectionOpen & 0xffff,
      });
    } finally {
      raw.destroy();
    }
    // amqplib sees the refusal as a failed connect.
    await expect(connect(b.url)).rejects.toThrow();
    await held.pop()!.close();
    await waitFor(() => b!.broker.connections.size === 1, 'the closed connection to go');
    const again = await connect(b.url);
    await again.close();
    await held.pop()!.close();
  });

  it('maxConnections 0 refuses everyone; a negative limit is a configuration error', async () => {
    b = await startTestBroker({ maxConnections: 0 });
    await expect(connect(b.url)).rejects.toThrow();
    expect(() => new Broker({ maxConnections: -1, dataDir: null })).toThrow(
      /maxConnections must be an integer from 0/,
    );
  });

  it('maxMessageSize: a larger body closes the channel with 406, as RabbitMQ', async () => {
    b = await startTestBroker({ maxMessageSize: 1000 });
    const conn = await connect(b.url);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('limits.size', { durable: false });
    ch.sendToQueue('limits.size', Buffer.alloc(1000));
    await ch.waitForConfirms();
    const closed = new Promise<Error>((resolve) => ch.once('error', resolve));
    ch.sendToQueue('limits.size', Buffer.alloc(1001));
    expect((await closed).message).toContain(
      '406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - message size 1001 is larger than configured max size 1000"',
    );
    const ch2 = await conn.createChannel();
    expect((await ch2.checkQueue('limits.size')).messageCount).toBe(1);
    await conn.close();
  });

  it('maxQueuesPerVhost applies to every vhost, new ones too', async () => {
    b = await startTestBroker({ maxQueuesPerVhost: 1 });
    expect(b.broker.getVhost('/')!.maxQueues).toBe(1);
    expect(b.broker.addVhost('other').maxQueues).toBe(1);
    const conn = await connect(b.url);
    conn.on('error', () => undefined);
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    await ch.assertQueue('limits.one', { durable: false });
    await expect(ch.assertQueue('limits.two', { durable: false })).rejects.toThrow(
      "cannot declare queue 'limits.two': queue limit in vhost '/' (1) is reached",
    );
    await conn.close();
  });
});

describe('per-vhost max-queues, compared with RabbitMQ', () => {
  let b: TestBroker | undefined;
  afterEach(async () => {
    await b?.stop();
  });

  it('declares beyond the limit are refused with 406; redeclares and freed slots are fine', async () => {
    await requireRabbitmq();
    b = await startTestBroker();
    const vhost = `limits-${randomBytes(4).toString('hex')}`;
    const scenario = async (ctx: ScenarioContext): Promise<void> => {
      const conn = await ctx.connect();
      let ch = await ctx.channel(conn, 'ch1');
      await ctx.attempt('declare a', () => ch.assertQueue('a', { durable: false }));
      await ctx.attempt('declare b', () => ch.assertQueue('b', { durable: false }));
      await ctx.attempt('redeclare a', () => ch.assertQueue('a', { durable: false }));
      await ctx.attempt('passive b', () => ch.checkQueue('b'));
      await ctx.attempt('declare c', () => ch.assertQueue('c', { durable: false }));
      ch = await ctx.channel(conn, 'ch2');
      await ctx.attempt('declare server-named', () => ch.assertQueue('', { exclusive: true }));
      ch = await ctx.channel(conn, 'ch3');
      await ctx.attempt('declare c with a bad argument', () =>
        ch.assertQueue('c', { durable: false, arguments: { 'x-max-length': -1 } }),
      );
      ch = await ctx.channel(conn, 'ch4');
      await ctx.attempt('delete b', () => ch.deleteQueue('b'));
      await ctx.attempt('declare c after the delete', () =>
        ch.assertQueue('c', { durable: false }),
      );
    };
    const run = async (base: string, admin: Admin): Promise<string[]> => {
      await admin.addVhost(vhost);
      await admin.setPermissions(vhost, 'guest', '.*', '.*', '.*');
      await admin.setMaxQueues(vhost, 2);
      try {
        const { hostname, port } = new URL(base);
        const result = await runScenario(
          `amqp://guest:guest@${hostname}:${port}/${encodeURIComponent(vhost)}`,
          scenario,
        );
        if (result.failure !== null)
          throw new Error(`${result.failure}\n${result.lines.join('\n')}`);
        return result.lines;
      } finally {
        await admin.deleteVhost(vhost);
      }
    };
    const rabbit = await run(RABBITMQ_URL, rabbitmqAdmin());
    const ours = await run(b.url, warrenAdmin(b.broker));
    expect(rabbit.join('\n')).toContain('queue limit');
    expect(ours).toEqual(rabbit);
  });
});
