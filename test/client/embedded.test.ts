import { describe, expect, it } from 'vitest';
import { connect, startBroker } from '../../src/client/index.js';
import type { Connection } from '../../src/client/index.js';

/** Application code that knows nothing of where its broker runs. */
async function greet(producer: Connection, consumer: Connection, queue: string): Promise<string> {
  const pch = await producer.channel({ confirm: true });
  await pch.queueDeclare(queue, { autoDelete: true });
  const cch = await consumer.channel();
  const got = new Promise<string>((resolve) => {
    void cch.consume(queue, (m) => {
      m.ack();
      resolve(m.text());
    });
  });
  await pch.publish('', queue, 'hello from the same code');
  return got;
}

describe('embedded mode', () => {
  it('startBroker() opens no TCP port; connect(broker) speaks AMQP over in-process streams', async () => {
    const broker = await startBroker({ logLevel: 'silent' });
    try {
      expect(broker.config.port).toBeNull();
      expect(broker.port).toBe(0);
      const a = await connect(broker);
      const b = await connect(broker, { connectionName: 'second' });
      expect(a.heartbeat).toBe(0);
      expect(a.serverProperties.product).toBe('Warren');
      const sides = [...broker.connections];
      expect(sides.length).toBe(2);
      expect(sides.every((c) => c.remoteAddress === 'in-process')).toBe(true);
      expect(await greet(a, b, 'embedded-greeting')).toBe('hello from the same code');
      await a.close();
      await b.close();
      expect(broker.connections.size).toBe(0);
    } finally {
      await broker.stop();
    }
  });

  it('with a port, the same broker serves in-process and TCP clients together', async () => {
    const broker = await startBroker({ port: 0, host: '127.0.0.1', logLevel: 'silent' });
    try {
      expect(broker.port).toBeGreaterThan(0);
      const inProcess = await connect(broker);
      const overTcp = await connect(`amqp://guest:guest@127.0.0.1:${broker.port}`);
      expect(await greet(inProcess, overTcp, 'mixed-greeting')).toBe('hello from the same code');
      expect(await greet(overTcp, inProcess, 'mixed-greeting-2')).toBe('hello from the same code');
      await inProcess.close();
      await overTcp.close();
    } finally {
      await broker.stop();
    }
  });

  it('stopping the embedded broker closes its connections with CONNECTION_FORCED', async () => {
    const broker = await startBroker({ logLevel: 'silent' });
    const conn = await connect(broker, { reconnect: false });
    const closed = new Promise<Error | null>((r) => conn.once('close', r));
    await broker.stop();
    const err = await closed;
    expect((err as { replyCode?: number }).replyCode).toBe(320);
    expect(conn.state).toBe('closed');
  });

  it('moves large volumes through the in-process pipe with backpressure intact', async () => {
    const broker = await startBroker({ logLevel: 'silent' });
    try {
      const conn = await connect(broker);
      const ch = await conn.channel();
      const { queue } = await ch.queueDeclare('', { exclusive: true });
      const body = Buffer.alloc(256 * 1024, 1);
      let received = 0;
      const sub = await conn.channel({ prefetch: 4 });
      await sub.consume(queue, (m) => {
        received += m.body.length;
        m.ack();
      });
      // Awaiting each publish is the backpressure: memory stays bounded by the pipe's buffers.
      for (let i = 0; i < 200; i++) await ch.publish('', queue, body);
      const deadline = Date.now() + 20_000;
      while (received < 200 * body.length && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(received).toBe(200 * body.length);
      await conn.close();
    } finally {
      await broker.stop();
    }
  });
});
