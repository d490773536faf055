import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { AmqpError, connect } from '../../src/client/index.js';
import type { ConnectOptions, Connection, ClientError } from '../../src/client/index.js';
import { Method } from '../../src/protocol/index.js';
import { startTestBroker } from '../helpers/broker.js';
import { requireRabbitmq } from '../helpers/rabbitmq.js';
import { describeBrokers, until } from './brokers.js';
import { FakeBroker } from './fake-broker.js';
import { TcpProxy } from './tcp-proxy.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

async function fake(): Promise<FakeBroker> {
  const f = await new FakeBroker().start();
  cleanup.push(() => f.stop());
  return f;
}

async function open(url: string, options: ConnectOptions = {}): Promise<Connection> {
  const c = await connect(url, options);
  cleanup.push(() => c.close({ timeout: 100 }));
  return c;
}

describe('connection behaviour against a scripted broker', () => {
  it('emits blocked and unblocked', async () => {
    const f = await fake();
    const conn = await open(f.url);
    const seen: string[] = [];
    conn.on('blocked', (reason) => seen.push(`blocked:${reason}`));
    conn.on('unblocked', () => seen.push('unblocked'));
    f.send(f.socket, 0, { id: Method.ConnectionBlocked, reason: 'low on memory' });
    await until(() => seen.length === 1, 'blocked');
    expect(conn.blocked).toBe('low on memory');
    f.send(f.socket, 0, { id: Method.ConnectionUnblocked });
    await until(() => seen.length === 2, 'unblocked');
    expect(seen).toEqual(['blocked:low on memory', 'unblocked']);
    expect(conn.blocked).toBeNull();
  });

  it('settles confirms by tag: out of order, multiple, and nack as WARREN_ERR_PUBLISH_NACKED', async () => {
    const f = await fake();
    const conn = await open(f.url);
    const ch = await conn.channel({ confirm: true });
    const outcome: string[] = [];
    const pubs = Array.from({ length: 6 }, (_, i) =>
      ch.publish('', 'q', `m${i}`).then(
        () => void outcome.push(`ok${i + 1}`),
        (e: unknown) => void outcome.push(`${(e as ClientError).code}${i + 1}`),
      ),
    );
    const waitAll = ch.waitForConfirms().then(
      () => 'resolved',
      (e: unknown) => (e as ClientError).code,
    );
    await until(() => f.publishes.get(ch.id) === 6, 'six publishes at the broker');
    const s = f.socket;
    f.send(s, ch.id, { id: Method.BasicAck, deliveryTag: 3, multiple: false });
    f.send(s, ch.id, { id: Method.BasicNack, deliveryTag: 2, multiple: false, requeue: false });
    f.send(s, ch.id, { id: Method.BasicAck, deliveryTag: 4, multiple: true });
    f.send(s, ch.id, { id: Method.BasicNack, deliveryTag: 6, multiple: true, requeue: false });
    await Promise.all(pubs);
    expect(outcome).toEqual([
      'ok3',
      'WARREN_ERR_PUBLISH_NACKED2',
      'ok1',
      'ok4',
      'WARREN_ERR_PUBLISH_NACKED5',
      'WARREN_ERR_PUBLISH_NACKED6',
    ]);
    expect(await waitAll).toBe('WARREN_ERR_PUBLISH_NACKED');
    expect(ch.unconfirmed).toBe(0);
  });

  it('publish honours timeout and signal: never sent if still waiting, unseen confirm if sent', async () => {
    const f = await fake();
    const conn = await open(f.url);
    const ch = await conn.channel({ confirm: { window: 1 } });
    const first = ch.publish('', 'q', 'first');
    const waiting = ch.publish('', 'q', 'second', { timeout: 50 }).catch((e: unknown) => e);
    expect(((await waiting) as ClientError).code).toBe('WARREN_ERR_TIMEOUT');
    const ac = new AbortController();
    await until(() => f.publishes.get(ch.id) === 1, 'the first publish');
    f.send(f.socket, ch.id, { id: Method.BasicAck, deliveryTag: 1, multiple: false });
    await first;
    const sent = ch.publish('', 'q', 'third', { signal: ac.signal }).catch((e: unknown) => e);
    await until(() => f.publishes.get(ch.id) === 2, 'the third publish');
    ac.abort();
    expect(((await sent) as ClientError).code).toBe('WARREN_ERR_ABORTED');
    expect(ch.unconfirmed).toBe(1);
    f.send(f.socket, ch.id, { id: Method.BasicAck, deliveryTag: 2, multiple: false });
    await until(() => ch.unconfirmed === 0, 'the confirm of the aborted publish');
    const fourth = ch.publish('', 'q', 'fourth', { timeout: 5000 });
    // 'second' was never sent: the broker saw first, third, and now fourth.
    await until(() => f.publishes.get(ch.id) === 3, 'the fourth publish');
    f.send(f.socket, ch.id, { id: Method.BasicAck, deliveryTag: 3, multiple: false });
    await fourth;
    expect(f.methods(Method.BasicPublish).length).toBe(3);
  });

  it('rejects confirm-mode publishes with the broker error when it closes the channel', async () => {
    const f = await fake();
    const conn = await open(f.url);
    const ch = await conn.channel({ confirm: true });
    const p = ch.publish('no-such-exchange', 'k', 'x');
    await until(() => f.publishes.get(ch.id) === 1, 'the publish');
    f.send(f.socket, ch.id, {
      id: Method.ChannelClose,
      replyCode: 404,
      replyText: "NOT_FOUND - no exchange 'no-such-exchange' in vhost '/'",
      classId: 60,
      methodId: 40,
    });
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AmqpError);
    expect((err as AmqpError).replyCode).toBe(404);
    await until(() => f.methods(Method.ChannelCloseOk).length === 1, 'close-ok from the client');
    expect(ch.state).toBe('closed');
  });

  it('answers a protocol violation with connection.close and reconnects', async () => {
    const f = await fake();
    const conn = await open(f.url, { reconnect: { initialDelay: 1, maxDelay: 10 } });
    const ch = await conn.channel();
    const disconnected = new Promise<Error>((r) => conn.once('disconnect', r));
    const reconnected = new Promise((r) => conn.once('reconnected', r));
    // A reply nobody asked for.
    f.send(f.socket, ch.id, { id: Method.QueuePurgeOk, messageCount: 0 });
    const err = await disconnected;
    expect((err as ClientError).code).toBe('WARREN_ERR_PROTOCOL');
    await until(() => f.methods(Method.ConnectionClose).length === 1, 'connection.close');
    const close = f.methods(Method.ConnectionClose)[0]!.method as { replyCode: number };
    expect(close.replyCode).toBe(505);
    await reconnected;
    expect(f.sockets.length).toBe(2);
    expect(ch.isOpen).toBe(true);
  });

  it('answers a corrupt frame with 501 and reconnects', async () => {
    const f = await fake();
    const conn = await open(f.url, { reconnect: { initialDelay: 1, maxDelay: 10 } });
    const reconnected = new Promise((r) => conn.once('reconnected', r));
    f.sendRaw(Buffer.from([1, 0, 0, 0, 0, 0, 4, 0, 10, 0, 50, 0x00]));
    await reconnected;
    const close = f.methods(Method.ConnectionClose)[0]!.method as { replyCode: number };
    expect(close.replyCode).toBe(501);
  });

  it('reconnects after connection.close 320 but closes for good on 530', async () => {
    const f = await fake();
    const conn = await open(f.url, { reconnect: { initialDelay: 1, maxDelay: 10 } });
    const reconnected = new Promise((r) => conn.once('reconnected', r));
    f.send(f.socket, 0, {
      id: Method.ConnectionClose,
      replyCode: 320,
      replyText: 'CONNECTION_FORCED - broker forced connection closure',
      classId: 0,
      methodId: 0,
    });
    await reconnected;
    await until(() => f.methods(Method.ConnectionCloseOk).length === 1, 'close-ok');
    const closed = new Promise<Error | null>((r) => conn.once('close', r));
    f.send(f.socket, 0, {
      id: Method.ConnectionClose,
      replyCode: 530,
      replyText: "NOT_ALLOWED - vhost '/' is gone",
      classId: 0,
      methodId: 0,
    });
    const err = await closed;
    expect(err).toBeInstanceOf(AmqpError);
    expect((err as AmqpError).replyCode).toBe(530);
    expect(conn.state).toBe('closed');
    expect(f.sockets.length).toBe(2);
  });

  it('fails (does not retry) a request the broker answered by closing the connection', async () => {
    const f = await fake();
    f.refuseFlow = true;
    const conn = await open(f.url, { reconnect: { initialDelay: 1, maxDelay: 10 } });
    let drops = 0;
    conn.on('disconnect', () => drops++);
    const ch = await conn.channel();
    const err = await ch.flow(false).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AmqpError);
    expect((err as AmqpError).replyCode).toBe(540);
    await until(() => conn.state === 'open' && ch.isOpen, 'the reconnect');
    // One drop, and the refused request was not sent to the new session.
    expect(drops).toBe(1);
    expect(f.methods(Method.ChannelFlow).length).toBe(1);
  });

  it('gives up when every new session is closed with a hard error', async () => {
    const f = await fake();
    const conn = await open(f.url, { reconnect: { initialDelay: 1, maxDelay: 10 } });
    f.failEverySession = true;
    const closed = new Promise<Error | null>((r) => conn.once('close', r));
    f.send(f.socket, 0, {
      id: Method.ConnectionClose,
      replyCode: 541,
      replyText: 'INTERNAL_ERROR - first',
      classId: 0,
      methodId: 0,
    });
    const err = await closed;
    expect((err as AmqpError).replyCode).toBe(541);
    expect(f.sockets.length).toBe(3);
    expect(conn.state).toBe('closed');
  });

  it('close() while reconnecting resolves at once, whether the broker is down or mid-handshake', async () => {
    const f = await fake();
    const conn = await open(f.url, { reconnect: { initialDelay: 1, maxDelay: 10 } });
    const attempts: number[] = [];
    conn.on('reconnecting', (i) => attempts.push(i.attempt));
    await f.stop();
    await until(() => attempts.length >= 2, 'failed attempts');
    const events: (Error | null)[] = [];
    conn.on('close', (e) => events.push(e));
    await conn.close();
    expect(conn.state).toBe('closed');
    expect(events).toEqual([null]);
    // A server that accepts but never answers the protocol header: close during the handshake.
    const { createServer } = await import('node:net');
    const accepted: Socket[] = [];
    const silent = createServer((sock) => void accepted.push(sock));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    cleanup.push(async () => {
      for (const sock of accepted) sock.destroy();
      await new Promise((r) => silent.close(r));
    });
    const silentPort = (silent.address() as { port: number }).port;
    const f2 = await fake();
    let sessions = 0;
    const conn2 = await open(f2.url, {
      reconnect: { initialDelay: 1, maxDelay: 10 },
      // The first session goes to the scripted broker, the next ones to the silent server.
      transport: () => netConnect(sessions++ === 0 ? f2.port : silentPort, '127.0.0.1'),
    });
    f2.send(f2.socket, 0, {
      id: Method.ConnectionClose,
      replyCode: 320,
      replyText: 'CONNECTION_FORCED - go away',
      classId: 0,
      methodId: 0,
    });
    await until(() => accepted.length === 1, 'a reconnect attempt to reach the silent server');
    // Before the handshake fails (connectTimeout is 30 s), close() has its answer.
    await conn2.close();
    expect(conn2.state).toBe('closed');
  });

  it('sends heartbeats and drops a broker that goes silent', async () => {
    const f = await fake();
    f.heartbeat = 1;
    const conn = await open(f.url, { reconnect: { initialDelay: 1, maxDelay: 10 } });
    expect(conn.heartbeat).toBe(1);
    let beats = 0;
    f.socket.on('data', (chunk: Buffer) => {
      if (chunk.length === 8 && chunk[0] === 8) beats++;
    });
    const err = await new Promise<Error>((r) => conn.once('disconnect', r));
    expect(beats).toBeGreaterThanOrEqual(2);
    expect((err as ClientError).code).toBe('WARREN_ERR_CONNECTION_LOST');
    expect(err.message).toContain('two heartbeat intervals');
    await until(() => conn.state === 'open', 'the reconnect');
  });

  it('updates the secret (connection.update-secret)', async () => {
    const f = await fake();
    const conn = await open(f.url);
    const done = conn.updateSecret('new-token', 'refresh', { timeout: 5000 });
    await until(() => f.methods(Method.ConnectionUpdateSecret).length === 1, 'update-secret');
    f.send(f.socket, 0, { id: Method.ConnectionUpdateSecretOk });
    await done;
    const m = f.methods(Method.ConnectionUpdateSecret)[0]!.method as { newSecret: Buffer };
    expect(m.newSecret.toString()).toBe('new-token');
  });

  it('fails fast with WARREN_ERR_CONNECT_FAILED when nothing listens, and honours connectTimeout', async () => {
    const f = await fake();
    const port = f.port;
    await f.stop();
    const refused = await connect(`amqp://127.0.0.1:${port}`).catch((e: unknown) => e);
    expect((refused as ClientError).code).toBe('WARREN_ERR_CONNECT_FAILED');
    expect((refused as Error).message).toContain(`127.0.0.1:${port}`);
    // A server that accepts but never speaks AMQP.
    const { createServer } = await import('node:net');
    const accepted: Socket[] = [];
    const silent = createServer((s) => void accepted.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    cleanup.push(async () => {
      for (const s of accepted) s.destroy();
      await new Promise((r) => silent.close(r));
    });
    const addr = silent.address() as { port: number };
    const slow = await connect(`amqp://127.0.0.1:${addr.port}`, { connectTimeout: 100 }).catch(
      (e: unknown) => e,
    );
    expect((slow as ClientError).code).toBe('WARREN_ERR_CONNECT_FAILED');
    expect((slow as Error).message).toContain('within 100 ms');
    const ac = new AbortController();
    const aborted = connect(`amqp://127.0.0.1:${addr.port}`, { signal: ac.signal });
    ac.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'WARREN_ERR_ABORTED' });
  });
});

describe('heartbeats against RabbitMQ', () => {
  it('detects a silent network path and reconnects through it once it works again', async () => {
    await requireRabbitmq();
    const proxy = await new TcpProxy('127.0.0.1', 5672).start();
    cleanup.push(() => proxy.stop());
    const conn = await open(proxy.url, {
      heartbeat: 1,
      reconnect: { initialDelay: 1, maxDelay: 20 },
    });
    const ch = await conn.channel();
    const { queue } = await ch.queueDeclare('', { exclusive: true });
    const renamed = new Promise<[string, string]>((r) =>
      conn.once('queueRenamed', (a, b) => r([a, b])),
    );
    proxy.freeze();
    const err = await new Promise<Error>((r) => conn.once('disconnect', r));
    expect(err.message).toContain('two heartbeat intervals');
    proxy.unfreeze();
    await new Promise((r) => conn.once('reconnected', r));
    // The exclusive queue died with the old connection and was declared again, with a new name.
    const [from, to] = await renamed;
    expect(from).toBe(queue);
    await ch.publish('', to, 'x');
    await until(async () => (await ch.get(to, { noAck: true })) !== null, 'the message');
    expect(conn.state).toBe('open');
  });
});

describe('TLS (amqps)', () => {
  it('connects through TLS with the CA from the URL, and refuses an untrusted certificate', async () => {
    const broker = await startTestBroker();
    cleanup.push(() => broker.stop());
    const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
    const server = createTlsServer(
      {
        cert: readFileSync(join(fixtures, 'tls-cert.pem')),
        key: readFileSync(join(fixtures, 'tls-key.pem')),
      },
      (tlsSocket) => {
        const upstream = netConnect(broker.port, '127.0.0.1');
        tlsSocket.pipe(upstream).pipe(tlsSocket);
        tlsSocket.on('error', () => upstream.destroy());
        upstream.on('error', () => tlsSocket.destroy());
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise((r) => server.close(r)));
    const port = (server.address() as { port: number }).port;
    const ca = encodeURIComponent(join(fixtures, 'tls-cert.pem'));
    const conn = await open(`amqps://guest:guest@localhost:${port}?cacertfile=${ca}`, {
      reconnect: false,
    });
    const ch = await conn.channel();
    const { queue } = await ch.queueDeclare('', { exclusive: true });
    await ch.publish('', queue, 'over tls');
    await until(async () => (await ch.get(queue, { noAck: true }))?.text() === 'over tls', 'it');
    const untrusted = await connect(`amqps://localhost:${port}`).catch((e: unknown) => e);
    expect((untrusted as ClientError).code).toBe('WARREN_ERR_CONNECT_FAILED');
    const unverified = await open(`amqps://localhost:${port}?verify=verify_none`);
    expect(unverified.isOpen).toBe(true);
  });
});

describeBrokers('heartbeats with real brokers', (target) => {
  it('keeps an idle connection with a 1 s heartbeat up: both sides send and accept beats', async () => {
    const conn = await target().connect({ heartbeat: 1 });
    let drops = 0;
    conn.on('disconnect', () => drops++);
    // Silence for two intervals would drop it; wait past that.
    await new Promise((r) => setTimeout(r, 3200));
    expect(drops).toBe(0);
    expect(conn.state).toBe('open');
    const ch = await conn.channel();
    await ch.queueDeclare('', { exclusive: true });
  });
});
