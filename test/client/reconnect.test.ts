import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { ClientError, connect } from '../../src/client/index.js';
import type { ConnectOptions, Connection, Message } from '../../src/client/index.js';
import { describeBrokers, until } from './brokers.js';
import type { BrokerTarget } from './brokers.js';
import { TcpProxy } from './tcp-proxy.js';

const FAST_RECONNECT = { initialDelay: 5, maxDelay: 100 } as const;

/** A connection that the test can break: from the broker's side on Warren, by the network on RabbitMQ. */
interface Killable {
  conn: Connection;
  /** 'destroy' drops the socket; 'close' has a Warren broker send connection.close 320 first. */
  kill(how: 'destroy' | 'close'): void;
}

const proxies: TcpProxy[] = [];
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.stop()));
});

let counter = 0;
async function killable(t: BrokerTarget, options: ConnectOptions = {}): Promise<Killable> {
  const name = `killable-${process.pid}-${++counter}`;
  if (t.kind === 'rabbitmq') {
    const proxy = await new TcpProxy('127.0.0.1', 5672).start();
    proxies.push(proxy);
    const conn = await t.connect({ ...options, port: proxy.port, connectionName: name });
    return { conn, kill: () => proxy.cut() };
  }
  const conn = await t.connect({ ...options, connectionName: name });
  const broker = t.warren!;
  return {
    conn,
    kill(how) {
      const side = [...broker.connections].find((c) => c.clientProperties.connection_name === name);
      if (side === undefined) throw new Error(`no broker-side connection named ${name}`);
      if (how === 'destroy') side.destroy();
      else side.close('killed by the test');
    },
  };
}

/** Publishes ids 0..count-1 in confirm mode, at most `window` unsettled, calling `at` along the way. */
async function publishIds(
  conn: Connection,
  queue: string,
  count: number,
  at: (i: number) => void,
): Promise<('ok' | 'failed')[]> {
  const ch = await conn.channel({ confirm: { window: 50 } });
  const results: ('ok' | 'failed')[] = new Array<'ok' | 'failed'>(count);
  const inflight = new Set<Promise<void>>();
  for (let i = 0; i < count; i++) {
    const p = ch.publish('', queue, String(i)).then(
      () => {
        results[i] = 'ok';
      },
      (err: unknown) => {
        results[i] = 'failed';
        // The only acceptable failure: the drop made the outcome unknown, and we were told.
        expect((err as ClientError).code).toBe('WARREN_ERR_CONNECTION_LOST');
      },
    );
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
    if (inflight.size >= 100) await Promise.race(inflight);
    at(i);
  }
  await Promise.all(inflight);
  return results;
}

function events(conn: Connection): { disconnects: number; reconnects: number } {
  const e = { disconnects: 0, reconnects: 0 };
  conn.on('disconnect', () => e.disconnects++);
  conn.on('reconnected', () => e.reconnects++);
  return e;
}

describeBrokers('reconnection', (target) => {
  for (const policy of ['retry', 'fail'] as const) {
    it(`publisher and consumer resume after their connections are killed mid-stream (unconfirmed: ${policy})`, async () => {
      const t = target();
      const queue = t.name('resume');
      const pub = await killable(t, { reconnect: FAST_RECONNECT, unconfirmed: policy });
      const sub = await killable(t, { reconnect: FAST_RECONNECT });
      const pubEvents = events(pub.conn);
      const subEvents = events(sub.conn);
      const setup = await pub.conn.channel();
      await setup.queueDeclare(queue, { durable: true });
      const received = new Map<number, number>();
      let afterResume = 0;
      const subCh = await sub.conn.channel({ prefetch: 20 });
      await subCh.consume(queue, (m) => {
        const id = Number(m.text());
        received.set(id, (received.get(id) ?? 0) + 1);
        if (subEvents.reconnects > 0) afterResume++;
        m.ack();
      });
      const count = 3000;
      const results = await publishIds(pub.conn, queue, count, (i) => {
        if (i === 800) pub.kill('destroy');
        if (i === 1600) sub.kill('close');
        if (i === 2200) pub.kill('close');
      });
      expect(pubEvents.reconnects).toBe(2);
      expect(subEvents.reconnects).toBe(1);
      // Every publish settled, and the ones reported ok were all consumed (none silently lost).
      expect(results.filter((r) => r === undefined).length).toBe(0);
      const ok = results.flatMap((r, i) => (r === 'ok' ? [i] : []));
      if (policy === 'retry') expect(ok.length).toBe(count);
      await until(() => ok.every((i) => received.has(i)), 'every confirmed message to arrive');
      expect(afterResume).toBeGreaterThan(0);
      expect(pub.conn.state).toBe('open');
      expect(sub.conn.state).toBe('open');
    });
  }

  it('an iterating consumer keeps iterating across a drop', async () => {
    const t = target();
    const queue = t.name('iter');
    const sub = await killable(t, { reconnect: FAST_RECONNECT });
    const producer = await t.connect();
    const pch = await producer.channel({ confirm: true });
    await pch.queueDeclare(queue);
    const consumer = await (await sub.conn.channel()).consume(queue, { prefetch: 10 });
    const seen = new Set<string>();
    const loop = (async () => {
      for await (const m of consumer) {
        seen.add(m.text());
        m.ack();
        if (m.text() === 'last') break;
      }
    })();
    for (let i = 0; i < 50; i++) await pch.publish('', queue, `a${i}`);
    await until(() => seen.size === 50, 'messages before the drop');
    const reconnected = new Promise((r) => sub.conn.once('reconnected', r));
    sub.kill('destroy');
    await reconnected;
    for (let i = 0; i < 50; i++) await pch.publish('', queue, `b${i}`);
    await pch.publish('', queue, 'last');
    await loop;
    for (let i = 0; i < 50; i++) expect(seen.has(`b${i}`)).toBe(true);
  });

  it('re-declares the topology: exchanges, server-named queues (renamed), bindings and consumers', async () => {
    const t = target();
    const k = await killable(t, { reconnect: FAST_RECONNECT });
    const renamed: [string, string][] = [];
    k.conn.on('queueRenamed', (from, to) => renamed.push([from, to]));
    const news = await k.conn.fanout(t.name('news'));
    const got: string[] = [];
    const sub = await news.subscribe((m: Message) => void got.push(m.text()));
    const before = sub.queue;
    await news.publish('before');
    await until(() => got.length === 1, 'the first message');
    const reconnected = new Promise((r) => k.conn.once('reconnected', r));
    k.kill('destroy');
    await reconnected;
    expect(renamed.length).toBe(1);
    expect(renamed[0]![0]).toBe(before);
    expect(sub.queue).toBe(renamed[0]![1]);
    expect(sub.queue).not.toBe(before);
    await news.publish('after');
    await until(() => got.length === 2, 'the message published after reconnecting');
    expect(got).toEqual(['before', 'after']);
  });

  it('request/reply resumes: calls in flight fail as lost, later calls work on both sides', async () => {
    const t = target();
    const name = t.name('rpc');
    const server = await killable(t, { reconnect: FAST_RECONNECT });
    let hold: (() => void) | null = null;
    await server.conn.rpcServer(name, async (req) => {
      if (req.text() === 'hold') await new Promise<void>((r) => (hold = r));
      return `echo:${req.text()}`;
    });
    const client = await killable(t, { reconnect: FAST_RECONNECT });
    const rpc = await client.conn.rpcClient();
    expect((await rpc.call(name, 'one', { timeout: 10_000 })).text()).toBe('echo:one');
    // A call whose reply would go to the old connection fails, and says why.
    const held = rpc.call(name, 'hold', { timeout: 10_000 }).catch((e: unknown) => e);
    await until(() => hold !== null, 'the server to hold the request');
    const clientBack = new Promise((r) => client.conn.once('reconnected', r));
    client.kill('destroy');
    expect(((await held) as ClientError).code).toBe('WARREN_ERR_CONNECTION_LOST');
    hold!();
    await clientBack;
    expect((await rpc.call(name, 'two', { timeout: 10_000 })).text()).toBe('echo:two');
    // The server side drops: requests wait in its queue and are served once it is back.
    const serverBack = new Promise((r) => server.conn.once('reconnected', r));
    server.kill('close');
    const during = rpc.call(name, 'three', { timeout: 10_000 });
    await serverBack;
    expect((await during).text()).toBe('echo:three');
  });

  it('calls made while reconnecting wait and then complete; new channels open', async () => {
    const t = target();
    const k = await killable(t, { reconnect: FAST_RECONNECT });
    const ch = await k.conn.channel();
    const disconnected = new Promise((r) => k.conn.once('disconnect', r));
    k.kill('destroy');
    await disconnected;
    expect(k.conn.state).toBe('reconnecting');
    expect(ch.state).toBe('recovering');
    const declared = ch.queueDeclare('', { exclusive: true });
    const opened = k.conn.channel({ confirm: true });
    const { queue } = await declared;
    const ch2 = await opened;
    await ch2.publish('', queue, 'works');
    const m = await ch.get(queue, { noAck: true });
    expect(m?.text()).toBe('works');
    expect(k.conn.state).toBe('open');
  });

  it('a transaction interrupted by a drop fails its commit with WARREN_ERR_CONNECTION_LOST', async () => {
    const t = target();
    const k = await killable(t, { reconnect: FAST_RECONNECT });
    const ch = await k.conn.channel();
    const { queue } = await ch.queueDeclare(t.name('tx'));
    await ch.txSelect();
    await ch.publish('', queue, 'lost with the transaction');
    const reconnected = new Promise((r) => k.conn.once('reconnected', r));
    k.kill('destroy');
    await reconnected;
    const err = await ch.txCommit().catch((e: unknown) => e);
    expect((err as ClientError).code).toBe('WARREN_ERR_CONNECTION_LOST');
    await ch.publish('', queue, 'committed');
    await ch.txCommit();
    const m = await ch.get(queue, { noAck: true });
    expect(m?.text()).toBe('committed');
    await ch.txCommit();
    expect(await ch.get(queue)).toBeNull();
  });

  it('with reconnect off, a drop closes the connection for good and pending work fails', async () => {
    const t = target();
    const k = await killable(t, { reconnect: false });
    const ch = await k.conn.channel();
    const { queue } = await ch.queueDeclare('', { exclusive: true });
    const consumer = await ch.consume(queue, { prefetch: 5 });
    const closed = new Promise<Error | null>((r) => k.conn.once('close', r));
    const next = consumer.next().catch((e: unknown) => e);
    k.kill('destroy');
    const err = await closed;
    expect(err).toBeInstanceOf(ClientError);
    expect((err as ClientError).code).toBe('WARREN_ERR_CONNECTION_LOST');
    expect(k.conn.state).toBe('closed');
    expect(((await next) as ClientError).code).toBe('WARREN_ERR_CHANNEL_CLOSED');
    await expect(ch.queueDeclare('')).rejects.toMatchObject({ code: 'WARREN_ERR_CHANNEL_CLOSED' });
    await expect(k.conn.channel()).rejects.toMatchObject({ code: 'WARREN_ERR_CONNECTION_CLOSED' });
  });
});

describe('reconnection across a Warren broker restart on the same port', () => {
  it('publishers and consumers resume on the new broker; topology is declared again; nothing is lost silently', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'warren-client-restart-'));
    const options = { host: '127.0.0.1', logLevel: 'silent', dataDir } as const;
    let broker = await new Broker({ ...options, port: 0 }).start();
    const port = broker.port;
    const url = `amqp://guest:guest@127.0.0.1:${port}`;
    const conns: Connection[] = [];
    try {
      const opts = { reconnect: FAST_RECONNECT };
      const pubConn = await connect(url, opts);
      const subConn = await connect(url, opts);
      conns.push(pubConn, subConn);
      const pubEvents = events(pubConn);
      const subEvents = events(subConn);
      const exchange = 'restart-x';
      const queue = 'restart-q';
      const setup = await subConn.channel();
      await setup.exchangeDeclare(exchange, 'direct');
      await setup.queueDeclare(queue);
      await setup.queueBind(queue, exchange, 'k');
      const received = new Set<number>();
      const subCh = await subConn.channel({ prefetch: 20 });
      await subCh.consume(queue, (m) => {
        received.add(Number(m.text()));
        m.ack();
      });
      // The publisher declares what it publishes to, so that it exists on a new broker whichever
      // client reconnects first; mandatory publishes report the ones a binding was not back for.
      const ch = await pubConn.channel({ confirm: { window: 50 } });
      await ch.exchangeDeclare(exchange, 'direct');
      const results: ('ok' | 'failed')[] = [];
      const count = 2000;
      let held = new Set<number>();
      let restart: Promise<void> | null = null;
      const inflight = new Set<Promise<void>>();
      for (let i = 0; i < count; i++) {
        const p = ch.publish(exchange, 'k', String(i), { mandatory: true }).then(
          () => {
            results[i] = 'ok';
          },
          (err: unknown) => {
            results[i] = 'failed';
            expect(['WARREN_ERR_CONNECTION_LOST', 'WARREN_ERR_UNROUTABLE']).toContain(
              (err as ClientError).code,
            );
          },
        );
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
        if (inflight.size >= 100) await Promise.race(inflight);
        if (i === 700) {
          // What the old broker holds when it stops is lost with it (this broker keeps
          // non-durable queues in memory); everything else must be accounted for.
          held = heldBy(broker, queue);
          const old = broker;
          restart = old.stop().then(async () => {
            broker = await new Broker({ ...options, port }).start();
          });
        }
      }
      await restart;
      await Promise.all(inflight);
      expect(pubEvents.reconnects).toBe(1);
      expect(subEvents.reconnects).toBe(1);
      // The new broker got the exchange, queue and binding back from the clients.
      const vhost = broker.getVhost('/')!;
      expect(vhost.exchanges.has(exchange)).toBe(true);
      expect(vhost.queues.has(queue)).toBe(true);
      const ok = results.flatMap((r, i) => (r === 'ok' ? [i] : []));
      expect(results.filter((r) => r !== undefined).length).toBe(count);
      // Retried publishes succeed; only those that reached the new broker before the binding
      // was back are reported (unroutable), never dropped silently.
      expect(ok.length).toBeGreaterThan(count / 2);
      await until(
        () => ok.every((i) => received.has(i) || held.has(i)),
        'every confirmed message to be consumed or accounted for by the old broker',
      );
      // Publishing and consuming go on after the restart.
      expect([...received].some((i) => i > 1500)).toBe(true);
    } finally {
      await Promise.all(conns.map((c) => c.close()));
      await broker.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('gives up after maxAttempts when the broker does not come back', async () => {
    const broker = await new Broker({
      port: 0,
      host: '127.0.0.1',
      logLevel: 'silent',
      dataDir: tmpdir(),
    }).start();
    const conn = await connect(`amqp://guest:guest@127.0.0.1:${broker.port}`, {
      reconnect: { initialDelay: 1, maxDelay: 5, maxAttempts: 3 },
    });
    const attempts: number[] = [];
    conn.on('reconnecting', (info) => attempts.push(info.attempt));
    const closed = new Promise<Error | null>((r) => conn.once('close', r));
    await broker.stop();
    const err = await closed;
    expect(attempts).toEqual([1, 2, 3]);
    expect((err as ClientError).code).toBe('WARREN_ERR_CONNECTION_CLOSED');
    expect(err!.message).toContain('after 3 attempts');
    expect(conn.state).toBe('closed');
  });
});

/** Message ids a Warren broker holds for `queue`: ready, and delivered but unacknowledged. */
function heldBy(broker: Broker, queue: string): Set<number> {
  const ids = new Set<number>();
  const q = broker.getVhost('/')?.queues.get(queue);
  if (q !== undefined) {
    for (const e of q.peek(q.messageCount)) ids.add(Number(e.message.body.toString()));
  }
  for (const c of broker.connections) {
    for (const ch of c.channels.values()) {
      for (const e of ch.unacked) ids.add(Number(e.message.body.toString()));
    }
  }
  return ids;
}
