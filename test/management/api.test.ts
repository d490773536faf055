/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-return -- tests walk JSON answers freely */
import amqplib from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { exportDefinitions } from '../../src/management/index.js';
import { apiClient, startManagedBroker, waitUntil } from './helpers.js';
import type { ManagedBroker } from './helpers.js';

let w: ManagedBroker;
beforeAll(async () => {
  w = await startManagedBroker();
});
afterAll(async () => {
  await w.stop();
});

describe('authentication and errors', () => {
  it('asks for credentials, refuses wrong ones and users without a management tag', async () => {
    const none = await w.api('GET', '/overview', undefined, null);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Basic realm="Warren Management"');
    expect(none.body).toEqual({ error: 'not_authorized', reason: 'Login failed' });

    expect(
      (await w.api('GET', '/overview', undefined, { user: 'guest', password: 'x' })).status,
    ).toBe(401);

    w.broker.users.addUser('plain', 'pw', []);
    const plain = await w.api('GET', '/overview', undefined, { user: 'plain', password: 'pw' });
    expect(plain.status).toBe(401);
    expect(plain.body.reason).toBe('Not management user');
  });

  it('gives RabbitMQ-style JSON for 404, 405 and bad bodies', async () => {
    const nf = await w.api('GET', '/queues/%2F/nope');
    expect(nf.status).toBe(404);
    expect(nf.body).toEqual({ error: 'Object Not Found', reason: 'Not Found' });
    expect((await w.api('GET', '/no/such/path')).status).toBe(404);
    const na = await w.api('PATCH', '/queues');
    expect(na.status).toBe(405);
    expect(na.headers.get('allow')).toContain('GET');
    const bad = await w.api('PUT', '/queues/%2F/q-bad', '[1,2');
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ error: 'bad_request', reason: 'not_json' });
    const badType = await w.api('PUT', '/queues/%2F/q-bad', { durable: 'maybe' });
    expect(badType.status).toBe(400);
    expect(badType.body.reason).toContain('durable');
    const badArg = await w.api('PUT', '/queues/%2F/q-bad', { arguments: { 'x-max-length': -1 } });
    expect(badArg.status).toBe(400);
    expect(badArg.body.reason).toContain("invalid arg 'x-max-length'");
    expect(w.broker.getVhost('/')!.queues.has('q-bad')).toBe(false);
  });

  it('keeps management users to their vhosts and their permissions', async () => {
    await w.api('PUT', '/vhosts/other');
    await w.api('PUT', '/users/mgr', { password: 'pw', tags: 'management' });
    await w.api('PUT', '/permissions/other/mgr', { configure: '^mine', write: '.*', read: '.*' });
    const mgr = apiClient(w.http, 'mgr', 'pw');
    const vhosts = await mgr('GET', '/vhosts');
    expect(vhosts.body.map((v: any) => v.name)).toEqual(['other']);
    expect((await mgr('GET', '/queues/%2F')).status).toBe(401);
    expect((await mgr('GET', '/users')).status).toBe(401);
    expect((await mgr('PUT', '/queues/other/theirs', {})).status).toBe(401);
    expect((await mgr('PUT', '/queues/other/mine-1', {})).status).toBe(201);
    expect(w.broker.getVhost('other')!.queues.has('mine-1')).toBe(true);
  });
});

describe('queues, exchanges, bindings', () => {
  it('declares, lists, shows and deletes a queue', async () => {
    const put = await w.api('PUT', '/queues/%2F/q1', {
      durable: false,
      arguments: { 'x-max-length': 10 },
    });
    expect(put.status).toBe(201);
    expect(
      (await w.api('PUT', '/queues/%2F/q1', { durable: false, arguments: { 'x-max-length': 10 } }))
        .status,
    ).toBe(204);
    const inequivalent = await w.api('PUT', '/queues/%2F/q1', { durable: true });
    expect(inequivalent.status).toBe(400);
    expect(inequivalent.body.reason).toBe(
      "inequivalent arg 'durable' for queue 'q1' in vhost '/': received 'true' but current is 'false'",
    );
    const list = await w.api('GET', '/queues');
    const q1 = list.body.find((q: any) => q.name === 'q1');
    expect(q1).toMatchObject({ vhost: '/', durable: false, arguments: { 'x-max-length': 10 } });
    expect((await w.api('DELETE', '/queues/%2F/q1')).status).toBe(204);
    expect((await w.api('GET', '/queues/%2F/q1')).status).toBe(404);
    expect((await w.api('DELETE', '/queues/%2F/q1')).status).toBe(404);
  });

  it('publishes over HTTP, routes through bindings, gets, peeks and purges', async () => {
    expect(
      (await w.api('PUT', '/exchanges/%2F/hx', { type: 'topic', durable: false })).status,
    ).toBe(201);
    await w.api('PUT', '/queues/%2F/hq', { durable: false });
    const bind = await w.api('POST', '/bindings/%2F/e/hx/q/hq', {
      routing_key: 'k.*',
      arguments: {},
    });
    expect(bind.status).toBe(201);
    expect(bind.headers.get('location')).toBe('k.*');
    const p1 = await w.api('POST', '/exchanges/%2F/hx/publish', {
      properties: { content_type: 'text/plain', headers: { n: 1 }, delivery_mode: 2 },
      routing_key: 'k.one',
      payload: 'first',
      payload_encoding: 'string',
    });
    expect(p1.body).toEqual({ routed: true });
    const binary = Buffer.from([0, 1, 2, 255]).toString('base64');
    await w.api('POST', '/exchanges/%2F/hx/publish', {
      properties: {},
      routing_key: 'k.two',
      payload: binary,
      payload_encoding: 'base64',
    });
    const miss = await w.api('POST', '/exchanges/%2F/hx/publish', {
      properties: {},
      routing_key: 'other',
      payload: 'x',
      payload_encoding: 'string',
    });
    expect(miss.body).toEqual({ routed: false });

    // Peek: shows both, leaves them in place, unflagged.
    const peek = await w.api('POST', '/queues/%2F/hq/peek', { count: 10 });
    expect(peek.status).toBe(200);
    expect(peek.body.map((m: any) => m.payload)).toEqual(['first', binary]);
    expect(peek.body[0]).toMatchObject({
      routing_key: 'k.one',
      exchange: 'hx',
      redelivered: false,
      payload_encoding: 'string',
      properties: { content_type: 'text/plain', headers: { n: 1 }, delivery_mode: 2 },
    });
    expect(peek.body[1].payload_encoding).toBe('base64');
    const peekGet = await w.api('GET', '/queues/%2F/hq/peek?count=1');
    expect(peekGet.body).toHaveLength(1);
    const q = w.broker.getVhost('/')!.queues.get('hq')!;
    expect(q.messageCount).toBe(2);
    expect(q.stats.got).toBe(0);

    // Get with requeue: RabbitMQ's semantics (message comes back, marked redelivered).
    const get = await w.api('POST', '/queues/%2F/hq/get', {
      count: 1,
      ackmode: 'ack_requeue_true',
      encoding: 'auto',
    });
    expect(get.body).toHaveLength(1);
    expect(get.body[0]).toMatchObject({ payload: 'first', message_count: 1, payload_bytes: 5 });
    expect(q.messageCount).toBe(2);
    const again = await w.api('POST', '/queues/%2F/hq/peek', { count: 1 });
    expect(again.body[0]).toMatchObject({ payload: 'first', redelivered: true });

    // Get and remove.
    const take = await w.api('POST', '/queues/%2F/hq/get', {
      count: 1,
      ackmode: 'ack_requeue_false',
      encoding: 'base64',
    });
    expect(take.body[0].payload).toBe(Buffer.from('first').toString('base64'));
    expect(q.messageCount).toBe(1);
    const noAck = await w.api('POST', '/queues/%2F/hq/get', { count: 1, encoding: 'auto' });
    expect(noAck.status).toBe(400);

    expect((await w.api('DELETE', '/queues/%2F/hq/contents')).status).toBe(204);
    expect(q.messageCount).toBe(0);

    const bindings = await w.api('GET', '/queues/%2F/hq/bindings');
    expect(bindings.body.map((b: any) => [b.source, b.routing_key])).toEqual([
      ['', 'hq'],
      ['hx', 'k.*'],
    ]);
    const key = bindings.body[1].properties_key;
    expect((await w.api('GET', `/bindings/%2F/e/hx/q/hq/${encodeURIComponent(key)}`)).status).toBe(
      200,
    );
    expect(
      (await w.api('DELETE', `/bindings/%2F/e/hx/q/hq/${encodeURIComponent(key)}`)).status,
    ).toBe(204);
    expect((await w.api('GET', '/queues/%2F/hq/bindings')).body).toHaveLength(1);
    expect((await w.api('DELETE', '/exchanges/%2F/hx')).status).toBe(204);
    expect(w.broker.getVhost('/')!.exchanges.has('hx')).toBe(false);
  });

  it('binds exchanges to exchanges and lists both directions', async () => {
    await w.api('PUT', '/exchanges/%2F/e-src', { type: 'fanout', durable: false });
    await w.api('PUT', '/exchanges/%2F/e-dst', { type: 'fanout', durable: false });
    const r = await w.api('POST', '/bindings/%2F/e/e-src/e/e-dst', {});
    expect(r.status).toBe(201);
    const src = await w.api('GET', '/exchanges/%2F/e-src/bindings/source');
    expect(src.body[0]).toMatchObject({ destination: 'e-dst', destination_type: 'exchange' });
    const dst = await w.api('GET', '/exchanges/%2F/e-dst/bindings/destination');
    expect(dst.body[0]).toMatchObject({ source: 'e-src' });
    expect(src.body[0].properties_key).toBe('~');
  });

  it('supports listing parameters: name filter, sort, columns and pages', async () => {
    for (const n of ['pg-b', 'pg-a', 'pg-c'])
      await w.api('PUT', `/queues/%2F/${n}`, { durable: false });
    const sorted = await w.api('GET', '/queues?name=pg-&sort=name&columns=name,vhost');
    expect(sorted.body).toEqual([
      { name: 'pg-a', vhost: '/' },
      { name: 'pg-b', vhost: '/' },
      { name: 'pg-c', vhost: '/' },
    ]);
    const page = await w.api(
      'GET',
      '/queues?name=pg-&sort=name&sort_reverse=true&page=2&page_size=2',
    );
    expect(page.body).toMatchObject({ page: 2, page_count: 2, filtered_count: 3, item_count: 1 });
    expect(page.body.items[0].name).toBe('pg-a');
  });
});

describe('connections, channels, consumers and rates', () => {
  it('shows an AMQP client and closes its connection on request', async () => {
    const conn = await amqplib.connect(w.url, {
      clientProperties: { connection_name: 'api-test' },
    });
    const closed = new Promise<void>((resolve) => conn.once('close', () => resolve()));
    conn.on('error', () => undefined);
    const ch = await conn.createChannel();
    await ch.assertQueue('cq', { durable: false });
    await ch.prefetch(3);
    await ch.consume('cq', () => undefined, { consumerTag: 'ctag-1' });
    const c = await waitUntil(async () => {
      const r = await w.api('GET', '/connections');
      return r.body.find((x: any) => x.user_provided_name === 'api-test');
    }, 'connection listed');
    expect(c).toMatchObject({
      user: 'guest',
      vhost: '/',
      state: 'running',
      channels: 1,
      protocol: 'AMQP 0-9-1',
    });
    expect(c.client_properties.product).toBe('amqplib');
    const chans = await w.api('GET', `/connections/${encodeURIComponent(c.name)}/channels`);
    expect(chans.body[0]).toMatchObject({ number: 1, prefetch_count: 3, consumer_count: 1 });
    const consumers = await w.api('GET', '/consumers/%2F');
    expect(consumers.body.find((k: any) => k.consumer_tag === 'ctag-1')).toMatchObject({
      queue: { name: 'cq', vhost: '/' },
      ack_required: true,
      prefetch_count: 3,
    });
    const detail = await w.api('GET', '/queues/%2F/cq');
    expect(detail.body.consumer_details).toHaveLength(1);

    const del = await fetch(`${w.http}/api/connections/${encodeURIComponent(c.name)}`, {
      method: 'DELETE',
      headers: {
        authorization: 'Basic ' + Buffer.from('guest:guest').toString('base64'),
        'x-reason': 'test says bye',
      },
    });
    expect(del.status).toBe(204);
    await closed;
    await waitUntil(
      async () => (await w.api('GET', '/connections')).body.length === 0,
      'no connections',
    );
  });

  it('turns counters into rates and totals', async () => {
    const conn = await amqplib.connect(w.url);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('rq', { durable: false });
    let sent = 0;
    // Publish until a sample shows a publish rate; bounded.
    const overview = await waitUntil(async () => {
      for (let i = 0; i < 50; i++) ch.sendToQueue('rq', Buffer.from('x'));
      sent += 50;
      await ch.waitForConfirms();
      const o = await w.api('GET', '/overview');
      return o.body.message_stats.publish_details.rate > 0 ? o.body : undefined;
    }, 'a publish rate');
    expect(overview.message_stats.publish).toBeGreaterThanOrEqual(50);
    expect(overview.message_stats.confirm).toBeGreaterThanOrEqual(50);
    const q = await waitUntil(async () => {
      const r = await w.api('GET', '/queues/%2F/rq');
      return r.body.message_stats.publish_details.rate > 0 ? r.body : undefined;
    }, 'a queue publish rate');
    expect(q.message_stats.publish).toBe(q.messages_ready);
    expect(q.messages_ready).toBe(sent);
    expect(q.memory).toBeGreaterThan(sent);
    const history = await w.api('GET', '/warren/history');
    expect(history.body.samples.some((s: any) => s.publish > 0)).toBe(true);
    await conn.close();
  });
});

describe('vhosts, users, permissions, definitions, health', () => {
  it('manages users and permissions in RabbitMQ form', async () => {
    expect(
      (await w.api('PUT', '/users/alice', { password: 's3cret', tags: 'monitoring' })).status,
    ).toBe(201);
    const alice = await w.api('GET', '/users/alice');
    expect(alice.body).toMatchObject({
      name: 'alice',
      tags: ['monitoring'],
      hashing_algorithm: 'rabbit_password_hashing_sha256',
    });
    expect(w.broker.users.authenticate('alice', 's3cret')).toBeDefined();
    const missing = await w.api('PUT', '/permissions/%2F/alice', { configure: '.*' });
    expect(missing.status).toBe(400);
    const badRe = await w.api('PUT', '/permissions/%2F/alice', {
      configure: '(',
      write: '',
      read: '',
    });
    expect(badRe.status).toBe(400);
    expect(
      (await w.api('PUT', '/permissions/%2F/alice', { configure: '', write: '.*', read: '.*' }))
        .status,
    ).toBe(201);
    expect(w.broker.users.permits('/', 'alice', 'write', 'anything')).toBe(true);
    const perms = await w.api('GET', '/users/alice/permissions');
    expect(perms.body).toEqual([
      { user: 'alice', vhost: '/', configure: '', write: '.*', read: '.*' },
    ]);
    expect((await w.api('DELETE', '/permissions/%2F/alice')).status).toBe(204);
    expect((await w.api('DELETE', '/users/alice')).status).toBe(204);
    expect(w.broker.users.getUser('alice')).toBeUndefined();
  });

  it('creates and deletes a vhost with its queues', async () => {
    expect((await w.api('PUT', '/vhosts/tmp-vh', { description: 'scratch' })).status).toBe(201);
    await w.api('PUT', '/permissions/tmp-vh/guest', { configure: '.*', write: '.*', read: '.*' });
    await w.api('PUT', '/queues/tmp-vh/tq', {});
    const v = await w.api('GET', '/vhosts/tmp-vh');
    expect(v.body).toMatchObject({ name: 'tmp-vh', description: 'scratch' });
    expect((await w.api('DELETE', '/vhosts/tmp-vh')).status).toBe(204);
    expect(w.broker.getVhost('tmp-vh')).toBeUndefined();
    expect((await w.api('GET', '/queues/tmp-vh')).status).toBe(404);
  });

  it('exports definitions and imports them into another broker', async () => {
    await w.api('PUT', '/exchanges/%2F/def-x', {
      type: 'direct',
      durable: true,
      arguments: { 'alternate-exchange': 'amq.fanout' },
    });
    await w.api('PUT', '/queues/%2F/def-q', {
      durable: true,
      arguments: { 'x-message-ttl': 60000 },
    });
    await w.api('POST', '/bindings/%2F/e/def-x/q/def-q', {
      routing_key: 'rk',
      arguments: { a: 1 },
    });
    await w.api('PUT', '/users/bob', { password: 'pw', tags: ['management'] });
    await w.api('PUT', '/permissions/%2F/bob', { configure: 'b.*', write: '.*', read: '.*' });
    const exported = await w.api('GET', '/definitions');
    const defs = exported.body;
    expect(defs).toMatchObject({ policies: [], rabbit_version: expect.any(String) });
    expect(defs.queues).toContainEqual({
      name: 'def-q',
      vhost: '/',
      durable: true,
      auto_delete: false,
      arguments: { 'x-message-ttl': 60000 },
    });
    expect(defs.bindings).toContainEqual({
      source: 'def-x',
      vhost: '/',
      destination: 'def-q',
      destination_type: 'queue',
      routing_key: 'rk',
      arguments: { a: 1 },
    });
    expect(defs.users.find((u: any) => u.name === 'bob').password_hash).toMatch(
      /^[A-Za-z0-9+/=]{48}$/,
    );

    const other = await startManagedBroker({ defaultUser: { name: 'guest', password: 'guest' } });
    try {
      const imp = await other.api('POST', '/definitions', defs);
      expect(imp.status).toBe(204);
      const v = other.broker.getVhost('/')!;
      expect(v.exchanges.get('def-x')!.alternateExchange).toBe('amq.fanout');
      expect(v.queues.get('def-q')!.arguments['x-message-ttl']).toBe(60000);
      expect([...v.queues.get('def-q')!.bindings].map((b) => b.routingKey)).toEqual(['rk']);
      expect(other.broker.users.authenticate('bob', 'pw')).toBeDefined();
      expect(other.broker.users.getPermission('/', 'bob')).toEqual({
        configure: 'b.*',
        write: '.*',
        read: '.*',
      });
      // Same document back out, apart from the generated fields.
      const again = exportDefinitions(other.broker);
      expect(again.queues).toEqual(defs.queues.filter((q: any) => !q.name.startsWith('amq.gen')));
      const bad = await other.api('POST', '/definitions', {
        queues: [{ name: 'x', vhost: 'nowhere' }],
      });
      expect(bad.status).toBe(400);
      expect(bad.body.reason).toContain("unknown vhost 'nowhere'");
    } finally {
      await other.stop();
    }
  });

  it('answers health checks and aliveness', async () => {
    expect((await w.api('GET', '/health/checks/alarms')).body).toEqual({ status: 'ok' });
    expect((await w.api('GET', '/aliveness-test/%2F')).body).toEqual({ status: 'ok' });
    expect((await w.api('GET', '/aliveness-test/nowhere')).status).toBe(404);
    const nodes = await w.api('GET', '/nodes');
    expect(nodes.body[0].mem_used).toBeGreaterThan(0);
    expect(nodes.body[0].disk_free).toBeGreaterThan(0);
  });

  it('starts programmatically for an embedded broker without AMQP port', async () => {
    const { startManagement } = await import('../../src/management/index.js');
    const b = new Broker({ port: null, logLevel: 'silent' });
    await b.start();
    const m = await startManagement(b, { port: 0, host: '127.0.0.1' });
    try {
      const r = await apiClient(`http://127.0.0.1:${m.port}`)('GET', '/overview');
      expect(r.status).toBe(200);
      expect(r.body.listeners.map((l: any) => l.protocol)).toEqual(['http']);
      expect(m.url).toBe(`http://127.0.0.1:${m.port}/`);
    } finally {
      await m.stop();
      await b.stop();
    }
  });
});
