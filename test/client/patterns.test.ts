import { expect, it } from 'vitest';
import { ClientError } from '../../src/client/index.js';
import { countBecomes, describeBrokers, until } from './brokers.js';

describeBrokers('classic patterns', (target) => {
  it('work queue: competing workers, each task done once, fair dispatch with prefetch 1', async () => {
    const t = target();
    const name = t.name('tasks');
    const producer = await (await t.connect()).workQueue(name);
    const workerConn = await t.connect();
    const jobs = await workerConn.workQueue(name);
    const done: { worker: string; task: string }[] = [];
    const slow = async (worker: string, task: string): Promise<void> => {
      await new Promise((r) => setTimeout(r, worker === 'slow' ? 40 : 1));
      done.push({ worker, task });
    };
    await jobs.work((m) => slow('slow', m.text()));
    await jobs.work((m) => slow('fast', m.text()));
    for (let i = 0; i < 20; i++) await producer.send(`task-${i}`);
    await until(() => done.length === 20, 'all tasks');
    expect(done.map((d) => d.task).sort()).toEqual(
      Array.from({ length: 20 }, (_, i) => `task-${i}`).sort(),
    );
    // With prefetch 1 the fast worker does most of the work instead of half.
    expect(done.filter((d) => d.worker === 'fast').length).toBeGreaterThan(10);
    const ch = await workerConn.channel();
    const info = await ch.queueCheck(name);
    expect(info.messageCount).toBe(0);
    await jobs.close();
  });

  it('publish/subscribe (fanout): every subscriber gets every message', async () => {
    const t = target();
    const conn = await t.connect();
    const logs = await conn.fanout(t.name('logs'));
    const a: string[] = [];
    const b: string[] = [];
    const subA = await logs.subscribe((m) => void a.push(m.text()));
    const subB = await logs.subscribe((m) => void b.push(m.text()));
    expect(subA.queue).not.toBe(subB.queue);
    for (const s of ['one', 'two', 'three']) await logs.publish(s);
    await until(() => a.length === 3 && b.length === 3, 'both subscribers');
    expect(a).toEqual(['one', 'two', 'three']);
    expect(b).toEqual(['one', 'two', 'three']);
    await subA.cancel();
    await logs.publish('four');
    await until(() => b.length === 4, 'the remaining subscriber');
    expect(a.length).toBe(3);
    await logs.close();
  });

  it('routing (direct): subscribers get only the keys they bound', async () => {
    const t = target();
    const conn = await t.connect();
    const logs = await conn.direct(t.name('direct-logs'));
    const errors: string[] = [];
    const infoAndWarnings: string[] = [];
    await logs.subscribe('error', (m) => void errors.push(m.text()));
    await logs.subscribe(
      ['info', 'warning'],
      (m) => void infoAndWarnings.push(`${m.routingKey}:${m.text()}`),
    );
    await logs.publish('info', 'i1');
    await logs.publish('error', 'e1');
    await logs.publish('debug', 'nobody');
    await logs.publish('warning', 'w1');
    await until(() => errors.length === 1 && infoAndWarnings.length === 2, 'routed messages');
    expect(errors).toEqual(['e1']);
    expect(infoAndWarnings).toEqual(['info:i1', 'warning:w1']);
  });

  it('topics: * matches one word, # any number', async () => {
    const t = target();
    const conn = await t.connect();
    const events = await conn.topic(t.name('events'));
    const kern: string[] = [];
    const critical: string[] = [];
    const all: string[] = [];
    await events.subscribe('kern.*', (m) => void kern.push(m.routingKey));
    await events.subscribe(['*.critical'], (m) => void critical.push(m.routingKey));
    await events.subscribe('#', (m) => void all.push(m.routingKey));
    const keys = ['kern.critical', 'kern.info', 'app.critical', 'kern.disk.full', 'app.info'];
    for (const k of keys) await events.publish(k, k);
    await until(() => all.length === keys.length, 'every event');
    await until(() => kern.length === 2 && critical.length === 2, 'matching events');
    expect(kern).toEqual(['kern.critical', 'kern.info']);
    expect(critical).toEqual(['kern.critical', 'app.critical']);
    expect(all).toEqual(keys);
  });

  it('request/reply: correlated replies over direct reply-to, errors and missing servers reported', async () => {
    const t = target();
    const serverConn = await t.connect();
    const name = t.name('rpc');
    const server = await serverConn.rpcServer(name, async (req) => {
      const n = req.json<number>();
      if (n < 0) throw new Error('negative input');
      await new Promise((r) => setTimeout(r, n % 3));
      return { body: JSON.stringify(n * 2), properties: { contentType: 'application/json' } };
    });
    const conn = await t.connect();
    expect(conn.capabilities.direct_reply_to).toBe(true);
    const client = await conn.rpcClient();
    const replies = await Promise.all(
      Array.from({ length: 25 }, (_, i) =>
        client.call(name, JSON.stringify(i), { timeout: 20_000 }),
      ),
    );
    expect(replies.map((r) => r.json<number>())).toEqual(
      Array.from({ length: 25 }, (_, i) => i * 2),
    );
    expect(replies[0]!.properties.contentType).toBe('application/json');
    const remote = await client.call(name, '-1', { timeout: 20_000 }).catch((e: unknown) => e);
    expect(remote).toBeInstanceOf(ClientError);
    expect((remote as ClientError).code).toBe('WARREN_ERR_REMOTE');
    expect((remote as Error).message).toContain('negative input');
    const nobody = await client
      .call(t.name('no-server'), 'x', { timeout: 20_000 })
      .catch((e: unknown) => e);
    expect((nobody as ClientError).code).toBe('WARREN_ERR_REMOTE');
    expect((nobody as Error).message).toContain('no RPC server');
    expect(client.inFlight).toBe(0);
    await server.close();
    const ch = await serverConn.channel();
    expect(await countBecomes(ch, name, 0)).toBe(0);
    await client.close();
  });

  it('request/reply: a call times out when the server does not answer', async () => {
    const t = target();
    const conn = await t.connect();
    const name = t.name('rpc-silent');
    const q = await conn.queue(name);
    // A "server" that takes requests and never answers.
    const seen: string[] = [];
    await q.notify((m) => {
      seen.push(m.properties.expiration ?? 'none');
      m.ack();
    });
    const client = await conn.rpcClient();
    const err = await client.call(name, 'ping', { timeout: 200 }).catch((e: unknown) => e);
    expect((err as ClientError).code).toBe('WARREN_ERR_TIMEOUT');
    // The request carried the timeout as its expiration, so a late server would not see it.
    expect(seen).toEqual(['200']);
    expect(client.inFlight).toBe(0);
  });
});
