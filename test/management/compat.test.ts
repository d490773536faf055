/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-return -- tests walk JSON answers freely */
import { randomBytes } from 'node:crypto';
import amqplib from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RABBITMQ_URL, requireRabbitmq } from '../helpers/rabbitmq.js';
import { apiClient, shapeDiff, shapeOf, startManagedBroker, waitUntil } from './helpers.js';
import type { ApiClient, ManagedBroker } from './helpers.js';

/**
 * The same topology on RabbitMQ (its management plugin on 127.0.0.1:15672, enabled by
 * scripts/ensure-rabbitmq.sh) and on Warren; every field RabbitMQ returns must be in Warren's
 * answer with the same JSON type, except the fields listed here as deliberately left out.
 */
const RABBITMQ_HTTP = process.env.RABBITMQ_MANAGEMENT_URL ?? 'http://127.0.0.1:15672';

/** Erlang VM internals and features Warren does not have. */
const ERLANG = ['garbage_collection', 'reductions', 'reductions_details'];
const LEFT_OUT: Record<string, string[]> = {
  overview: [
    'churn_rates',
    'release_series_support_status',
    'message_stats.disk_reads',
    'message_stats.disk_reads_details',
    'message_stats.disk_writes',
    'message_stats.disk_writes_details',
    'message_stats.drop_unroutable',
    'message_stats.drop_unroutable_details',
    'message_stats.return_unroutable',
    'message_stats.return_unroutable_details',
    'listeners[].socket_opts.',
    'contexts[].ssl_opts',
    'contexts[].cowboy_opts',
  ],
  node: [
    'cluster_links',
    'context_switches',
    'context_switches_details',
    'fd_total',
    'fd_used_details',
    'mem_used_details',
    'disk_free_details',
    'sockets_total',
    'sockets_used_details',
    'proc_total',
    'proc_used',
    'proc_used_details',
    'run_queue',
    'net_ticktime',
    'metrics_gc_queue_length',
    'ra_open_file_metrics',
    'gc_num',
    'gc_num_details',
    'gc_bytes_reclaimed',
    'gc_bytes_reclaimed_details',
    'io_',
    'mnesia_',
    'msg_store_',
    'queue_index_',
    'channel_closed',
    'channel_closed_details',
    'channel_created',
    'channel_created_details',
    'connection_closed',
    'connection_closed_details',
    'connection_created',
    'connection_created_details',
    'queue_created',
    'queue_created_details',
    'queue_declared',
    'queue_declared_details',
    'queue_deleted',
    'queue_deleted_details',
    'contexts[].cowboy_opts',
  ],
  channel: ['idle_since', 'pending_raft_commands', 'message_stats'],
  queue: ['backing_queue_status', 'idle_since', 'message_bytes_persistent', 'messages_persistent'],
  vhost: [
    // Keyed by node name, which differs.
    'cluster_state.',
    'message_stats.drop_unroutable',
    'message_stats.drop_unroutable_details',
    'message_stats.return_unroutable',
    'message_stats.return_unroutable_details',
  ],
};

function diff(reference: unknown, ours: unknown, ignore: string[] = []): string[] {
  return shapeDiff(shapeOf(reference), shapeOf(ours), [...ERLANG, ...ignore]).filter(
    // io_*, mnesia_* ...: prefixes of node fields.
    (d) => !ignore.some((i) => i.endsWith('_') && d.startsWith(i)),
  );
}

interface Topology {
  conn: amqplib.ChannelModel;
  tag: string;
}

async function buildTopology(url: string, suffix: string): Promise<Topology> {
  const tag = `mgmt-compat-${suffix}`;
  const conn = await amqplib.connect(url, { clientProperties: { connection_name: tag } });
  const ch = await conn.createConfirmChannel();
  await ch.assertExchange(`cx-${suffix}`, 'topic', { durable: false, autoDelete: false });
  await ch.assertQueue(`cq-${suffix}`, {
    durable: false,
    autoDelete: false,
    arguments: { 'x-max-length': 100 },
  });
  await ch.assertQueue(`cq2-${suffix}`, { durable: false, autoDelete: false });
  await ch.bindQueue(`cq-${suffix}`, `cx-${suffix}`, 'a.#');
  for (let i = 0; i < 5; i++) {
    ch.publish(`cx-${suffix}`, 'a.b', Buffer.from(`hello ${i}`), {
      headers: { h: 1 },
      contentType: 'text/plain',
    });
  }
  await ch.waitForConfirms();
  const consumer = await conn.createChannel();
  await consumer.prefetch(1);
  await consumer.consume(`cq-${suffix}`, () => undefined, { noAck: false });
  return { conn, tag };
}

describe('management API shapes match RabbitMQ', () => {
  const suffix = randomBytes(4).toString('hex');
  const q = `cq-${suffix}`;
  const x = `cx-${suffix}`;
  let warren: ManagedBroker;
  let rabbit: ApiClient;
  let ours: ApiClient;
  let topologies: Topology[] = [];

  beforeAll(async () => {
    await requireRabbitmq();
    rabbit = apiClient(RABBITMQ_HTTP);
    const probe = await rabbit('GET', '/overview').catch(() => null);
    if (probe === null || probe.status !== 200) {
      throw new Error(
        `RabbitMQ's management API is not answering on ${RABBITMQ_HTTP}; run scripts/ensure-rabbitmq.sh (it enables rabbitmq_management)`,
      );
    }
    warren = await startManagedBroker();
    ours = warren.api;
    topologies = [
      await buildTopology(RABBITMQ_URL, suffix),
      await buildTopology(warren.url, suffix),
    ];
    // RabbitMQ's stats arrive every few seconds: wait until its numbers are in.
    await waitUntil(
      async () => {
        const r = await rabbit('GET', `/queues/%2F/${q}`);
        return r.status === 200 && r.body.message_stats?.publish === 5 && r.body.consumers === 1;
      },
      'RabbitMQ queue stats',
      50_000,
    );
    await waitUntil(
      async () => {
        const r = await rabbit('GET', '/channels');
        const mine = (r.body as any[]).filter((c) => c.connection_details?.name?.length > 0);
        return mine.some((c) => c.message_stats !== undefined);
      },
      'RabbitMQ channel stats',
      50_000,
    );
  }, 120_000);

  afterAll(async () => {
    for (const t of topologies) await t.conn.close().catch(() => undefined);
    if (rabbit !== undefined) {
      await rabbit('DELETE', `/queues/%2F/${q}`);
      await rabbit('DELETE', `/queues/%2F/cq2-${suffix}`);
      await rabbit('DELETE', `/exchanges/%2F/${x}`);
    }
    await warren?.stop();
  });

  async function both(path: string): Promise<[any, any]> {
    const [r, w] = await Promise.all([rabbit('GET', path), ours('GET', path)]);
    expect(r.status, `RabbitMQ GET ${path}`).toBe(200);
    expect(w.status, `Warren GET ${path}`).toBe(200);
    return [r.body, w.body];
  }

  it('/api/overview', async () => {
    const [r, w] = await both('/overview');
    expect(diff(r, w, LEFT_OUT.overview)).toEqual([]);
    expect(Object.keys(w.message_stats)).toContain('publish_details');
  });

  it('/api/nodes', async () => {
    const [r, w] = await both('/nodes');
    expect(w).toHaveLength(1);
    expect(diff(r[0], w[0], LEFT_OUT.node)).toEqual([]);
  });

  it('/api/connections, /api/channels, /api/consumers', async () => {
    const [rc, wc] = await both('/connections');
    const byTag = (list: any[]): any =>
      list.find((c) => c.client_properties?.connection_name === `mgmt-compat-${suffix}`);
    const rConn = byTag(rc);
    const wConn = byTag(wc);
    expect(rConn).toBeDefined();
    expect(wConn).toBeDefined();
    expect(diff(rConn, wConn)).toEqual([]);

    const [rch, wch] = await both('/channels');
    const ofConn = (list: any[], name: string): any[] =>
      list.filter((c) => c.connection_details.name === name);
    const rChans = ofConn(rch, rConn.name);
    const wChans = ofConn(wch, wConn.name);
    expect(wChans).toHaveLength(rChans.length);
    for (let i = 0; i < rChans.length; i++) {
      expect(diff(rChans[i], wChans[i], LEFT_OUT.channel)).toEqual([]);
    }

    const [rk, wk] = await both('/consumers');
    const ofQueue = (list: any[]): any => list.find((k) => k.queue.name === q);
    expect(diff(ofQueue(rk), ofQueue(wk))).toEqual([]);
  });

  it('/api/exchanges and one exchange', async () => {
    const [r, w] = await both('/exchanges');
    const pick = (list: any[]): any => list.find((e) => e.name === x);
    expect(diff(pick(r), pick(w))).toEqual([]);
    const [r1, w1] = await both(`/exchanges/%2F/${x}`);
    expect(diff(r1, w1)).toEqual([]);
    const [rb, wb] = await both(`/exchanges/%2F/${x}/bindings/source`);
    expect(diff(rb, wb)).toEqual([]);
    expect(wb).toHaveLength(rb.length);
  });

  it('/api/queues and one queue', async () => {
    const [r, w] = await both('/queues');
    const pick = (list: any[]): any => list.find((e) => e.name === q);
    expect(diff(pick(r), pick(w), LEFT_OUT.queue)).toEqual([]);
    const [r1, w1] = await both(`/queues/%2F/${q}`);
    expect(diff(r1, w1, LEFT_OUT.queue)).toEqual([]);
    expect(w1.messages_ready).toBe(r1.messages_ready);
    expect(w1.messages_unacknowledged).toBe(r1.messages_unacknowledged);
    const [rb, wb] = await both(`/queues/%2F/${q}/bindings`);
    expect(diff(rb, wb)).toEqual([]);
    expect(wb.map((b: any) => b.properties_key)).toEqual(rb.map((b: any) => b.properties_key));
  });

  it('/api/bindings, /api/vhosts, /api/users, /api/permissions, /api/whoami', async () => {
    const [rb, wb] = await both('/bindings/%2F');
    const mine = (list: any[]): any[] => list.filter((b) => b.source === x);
    expect(diff(mine(rb), mine(wb))).toEqual([]);
    const [rv, wv] = await both('/vhosts/%2F');
    expect(diff(rv, wv, LEFT_OUT.vhost)).toEqual([]);
    const [ru, wu] = await both('/users');
    expect(diff(ru, wu)).toEqual([]);
    const [rp, wp] = await both('/permissions');
    expect(diff(rp, wp)).toEqual([]);
    const [rw, ww] = await both('/whoami');
    expect(diff(rw, ww)).toEqual([]);
  });

  it('/api/definitions', async () => {
    const [r, w] = await both('/definitions');
    // The first queue, exchange or binding of each list is a different object on each broker.
    expect(
      diff(r, w, ['queues[].arguments', 'exchanges[].arguments', 'bindings[].arguments']),
    ).toEqual([]);
    const pick = (d: any, key: string, name: string): any =>
      d[key].find((o: any) => o.name === name || o.source === name);
    expect(diff(pick(r, 'queues', q), pick(w, 'queues', q))).toEqual([]);
    expect(diff(pick(r, 'exchanges', x), pick(w, 'exchanges', x))).toEqual([]);
    expect(diff(pick(r, 'bindings', x), pick(w, 'bindings', x))).toEqual([]);
  });

  it('health checks, publish and get', async () => {
    const [ra, wa] = await both('/health/checks/alarms');
    expect(wa).toEqual(ra);
    const [rl, wl] = await both('/aliveness-test/%2F');
    expect(wl).toEqual(rl);
    const publish = {
      properties: { content_type: 'text/plain', headers: { k: 'v' }, delivery_mode: 2 },
      routing_key: `cq2-${suffix}`,
      payload: 'over http',
      payload_encoding: 'string',
    };
    const [rp, wp] = await Promise.all([
      rabbit('POST', '/exchanges/%2F/amq.default/publish', publish),
      ours('POST', '/exchanges/%2F/amq.default/publish', publish),
    ]);
    expect(wp.body).toEqual(rp.body);
    const get = { count: 2, ackmode: 'ack_requeue_false', encoding: 'auto', truncate: 50000 };
    const [rg, wg] = await Promise.all([
      rabbit('POST', `/queues/%2F/cq2-${suffix}/get`, get),
      ours('POST', `/queues/%2F/cq2-${suffix}/get`, get),
    ]);
    expect(wg.body).toEqual(rg.body);
  });

  it('errors: 401, 404, 400 have the same status and JSON shape', async () => {
    const bad = { user: 'guest', password: 'wrong' };
    const [r401, w401] = await Promise.all([
      rabbit('GET', '/overview', undefined, bad),
      ours('GET', '/overview', undefined, bad),
    ]);
    expect(w401.status).toBe(r401.status);
    expect(w401.body).toEqual(r401.body);
    expect(w401.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    const [r404, w404] = await Promise.all([
      rabbit('GET', '/queues/%2F/no-such-queue-here'),
      ours('GET', '/queues/%2F/no-such-queue-here'),
    ]);
    expect(w404.status).toBe(404);
    expect(w404.body).toEqual(r404.body);
    const [r400, w400] = await Promise.all([
      rabbit('PUT', `/queues/%2F/cq-never-${suffix}`, '{not json'),
      ours('PUT', `/queues/%2F/cq-never-${suffix}`, '{not json'),
    ]);
    expect(w400.status).toBe(r400.status);
    expect(w400.body).toEqual(r400.body);
    const [rq, wq] = await Promise.all([
      rabbit('PUT', `/queues/%2F/${q}`, { durable: true }),
      ours('PUT', `/queues/%2F/${q}`, { durable: true }),
    ]);
    expect(wq.status).toBe(rq.status);
    expect(wq.body).toEqual(rq.body);
  });
});
