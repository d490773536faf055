/**
 * The same service with RabbitMQ in the middle instead of Warren's broker: the load balancer and
 * the workers use only the client, RPC and transfer layers, so nothing changes but the URL.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connect } from '../../src/client/index.js';
import { RABBITMQ_URL, requireRabbitmq } from '../helpers/rabbitmq.js';
import type { Proc } from './cluster.js';
import { killAll, spawnCli } from './cluster.js';
import { NOT_FOUND, OK, WireClient } from './wire-client.js';

const ns = `warren-kv-test.${randomBytes(4).toString('hex')}`;

beforeAll(requireRabbitmq);
afterAll(async () => {
  await killAll();
  // What the cluster leaves on a shared broker: its exchanges and the RPC service queues.
  const conn = await connect(RABBITMQ_URL, { reconnect: false });
  const ch = await conn.channel();
  await ch.exchangeDelete(`${ns}.replicate`).catch(() => undefined);
  await ch.exchangeDelete(`${ns}.announce`).catch(() => undefined);
  await ch.exchangeDelete(`${ns}.rpc`).catch(() => undefined);
  for (const svc of ['warren-kv-lb', 'warren-kv-worker']) {
    await ch.queueDelete(`${ns}.rpc.svc.${svc}@1.0.0`).catch(() => 0);
  }
  await conn.close();
});

async function worker(name: string): Promise<Proc> {
  const p = spawnCli(name, ['worker', '--broker', RABBITMQ_URL, '--namespace', ns, '--name', name]);
  await p.waitFor(/^ready \(/, 60_000);
  return p;
}

it('runs through RabbitMQ: round robin, replication, export to a new worker', async () => {
  const lb = spawnCli('lb', ['lb', '--port', '0', '--broker', RABBITMQ_URL, '--namespace', ns]);
  const port = Number((await lb.waitFor(/^listening (\d+)$/))[1]);
  const first = await worker('rmq1');
  const c = await WireClient.connect(port);
  for (let i = 0; i < 100; i++) expect(await c.put(`r-${i}`, `v-${i}`)).toBe(OK);
  expect(await c.del('r-0')).toBe(OK);
  const second = await worker('rmq2');
  await second.waitFor(/^export from \S+ complete: 100 entries/);
  // Only the new worker is left to answer.
  first.kill('SIGTERM');
  expect((await first.exited).code).toBe(0);
  await lb.waitFor(/^worker rmq1-\S+ left$/);
  for (let i = 1; i < 100; i++) expect((await c.get(`r-${i}`)).value.toString()).toBe(`v-${i}`);
  expect((await c.get('r-0')).result).toBe(NOT_FOUND);
  c.close();
  lb.kill('SIGTERM');
  expect((await lb.exited).code).toBe(0);
  expect((await second.exited).code).toBe(0);
}, 120_000);
