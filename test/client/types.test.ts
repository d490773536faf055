/**
 * Compile-time checks on the public API. tsc checks this file in CI (`npx tsc --noEmit`); the
 * `@ts-expect-error` lines fail the build if the API starts accepting what it must refuse, and the
 * expectTypeOf assertions fail it if a type drifts.
 */
import { describe, expectTypeOf, it } from 'vitest';
import type {
  AmqpError,
  Channel,
  ClientError,
  ClientErrorCode,
  Connection,
  ConnectionState,
  ConnectOptions,
  Consumer,
  EmbeddableBroker,
  Message,
  MessageQueue,
  QueueInfo,
  RpcClient,
  Router,
  Subscription,
  WarrenError,
} from '../../src/client/index.js';
import { connect, startBroker } from '../../src/client/index.js';

describe('public API types', () => {
  it('connect and startBroker', () => {
    expectTypeOf(connect)
      .parameter(0)
      .toEqualTypeOf<string | ConnectOptions | EmbeddableBroker | undefined>();
    expectTypeOf(connect).returns.toEqualTypeOf<Promise<Connection>>();
    expectTypeOf(startBroker).returns.resolves.toHaveProperty('attach');
    expectTypeOf<Connection['state']>().toEqualTypeOf<ConnectionState>();
    expectTypeOf<ConnectionState>().toEqualTypeOf<
      'connecting' | 'open' | 'reconnecting' | 'closing' | 'closed'
    >();
  });

  it('channel methods', () => {
    expectTypeOf<Channel['queueDeclare']>().returns.toEqualTypeOf<Promise<QueueInfo>>();
    expectTypeOf<Channel['get']>().returns.toEqualTypeOf<Promise<Message | null>>();
    expectTypeOf<Channel['publish']>().returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf<Channel['queuePurge']>().returns.toEqualTypeOf<Promise<number>>();
    expectTypeOf<Consumer>().toMatchTypeOf<AsyncIterable<Message>>();
    expectTypeOf<Consumer['closed']>().toEqualTypeOf<Promise<Error | null>>();
    expectTypeOf<MessageQueue['get']>().returns.toEqualTypeOf<Promise<Message>>();
    expectTypeOf<MessageQueue['poll']>().returns.toEqualTypeOf<Promise<Message | null>>();
    expectTypeOf<RpcClient['call']>().returns.toEqualTypeOf<Promise<Message>>();
    expectTypeOf<Router['subscribe']>().returns.toEqualTypeOf<Promise<Subscription>>();
  });

  it('errors carry reply codes and stable codes', () => {
    expectTypeOf<AmqpError['replyCode']>().toEqualTypeOf<number>();
    expectTypeOf<AmqpError['replyText']>().toEqualTypeOf<string>();
    expectTypeOf<AmqpError['classId']>().toEqualTypeOf<number>();
    expectTypeOf<AmqpError['closesConnection']>().toEqualTypeOf<boolean>();
    expectTypeOf<ClientError['code']>().toEqualTypeOf<ClientErrorCode>();
    expectTypeOf<'WARREN_ERR_TIMEOUT'>().toMatchTypeOf<ClientErrorCode>();
    expectTypeOf<WarrenError>().toEqualTypeOf<AmqpError | ClientError>();
  });

  it('events are typed', () => {
    expectTypeOf<Parameters<Connection['on']>>().toBeArray();
  });
});

/** Never called: each line must (or must not) compile. */
export async function compileChecks(conn: Connection, ch: Channel, msg: Message): Promise<void> {
  // Consume with a callback or as an iterator.
  const c1 = await ch.consume('q', (m) => {
    expectTypeOf(m).toEqualTypeOf<Message>();
    m.ack();
  });
  const c2 = await ch.consume('q', {
    prefetch: 10,
    noAck: true,
    signal: AbortSignal.timeout(1000),
  });
  for await (const m of c2) expectTypeOf(m).toEqualTypeOf<Message>();
  await c1.cancel({ timeout: 1000 });

  // Publish bodies: strings, Buffers, Uint8Arrays; properties typed.
  await ch.publish('x', 'k', 'text', { persistent: true, timestamp: new Date(), expiration: 5000 });
  await ch.publish('x', 'k', new Uint8Array(2), {
    headers: { n: 1, big: 2n ** 70n, when: new Date() },
  });
  // @ts-expect-error a body must be bytes or a string
  await ch.publish('x', 'k', { not: 'bytes' });
  // @ts-expect-error deliveryMode is a number
  await ch.publish('x', 'k', 'b', { deliveryMode: 'persistent' });
  // @ts-expect-error priority is a number
  await ch.publish('x', 'k', 'b', { priority: 'high' });

  // Declares take typed options.
  await ch.queueDeclare('q', { durable: true, maxLength: 10, deadLetterExchange: 'dlx' });
  // @ts-expect-error durable is a boolean
  await ch.queueDeclare('q', { durable: 'yes' });
  await ch.exchangeDeclare('x', 'topic', { durable: true });
  await ch.exchangeDeclare('x', 'x-consistent-hash');
  // @ts-expect-error an exchange type is a string
  await ch.exchangeDeclare('x', 42);

  // Acknowledgement.
  msg.ack();
  msg.nack({ requeue: false });
  msg.reject({ requeue: true });
  ch.ack(msg, true);
  // @ts-expect-error ack takes a message, not a delivery tag
  ch.ack(msg.deliveryTag);
  // @ts-expect-error a received message is read-only
  msg.body = Buffer.alloc(0);

  // Qos, confirms, transactions.
  await ch.qos(10, { global: true });
  await ch.confirmSelect({ window: 100, unconfirmed: 'fail' });
  // @ts-expect-error the policy is 'retry' or 'fail'
  await ch.confirmSelect({ unconfirmed: 'drop' });
  await ch.txSelect();

  // Queue API.
  const q = await conn.queue('jobs', { durable: true });
  await q.put('x');
  const m: Message = await q.get({ timeout: 1000 });
  const maybe: Message | null = await q.poll();
  // @ts-expect-error poll may return null
  const never: Message = await q.poll();
  await q.notify((n) => n.ack(), { prefetch: 5 });
  void m;
  void maybe;
  void never;

  // Patterns.
  const topics = await conn.topic('events');
  await topics.publish('a.b', 'x');
  await topics.subscribe(['a.*', '#'], (n) => n.text());
  // @ts-expect-error a topic publish needs a routing key
  await topics.publish('x');
  const fan = await conn.fanout('logs');
  await fan.publish('x');
  const rpc = await conn.rpcClient();
  const reply: Message = await rpc.call('svc', 'req', { timeout: 1000 });
  void reply;
  await conn.rpcServer('svc', (req) => ({ body: req.body, properties: { contentType: 'x' } }));

  // Events.
  conn.on('blocked', (reason) => expectTypeOf(reason).toEqualTypeOf<string>());
  conn.on('reconnecting', (info) => expectTypeOf(info.attempt).toEqualTypeOf<number>());
  conn.on('close', (err) => expectTypeOf(err).toEqualTypeOf<Error | null>());
  ch.on('return', (r) => expectTypeOf(r.replyCode).toEqualTypeOf<number>());
  // @ts-expect-error no such event
  conn.on('exploded', () => undefined);

  // Connecting.
  await connect('amqp://localhost', { heartbeat: 10, reconnect: { maxAttempts: 5 } });
  await connect({ hostname: 'h', port: 5672, tls: { caFile: '/ca.pem' } });
  // @ts-expect-error port is a number
  await connect({ port: '5672' });
  // @ts-expect-error the unconfirmed policy is 'retry' or 'fail'
  await connect({ unconfirmed: 'ignore' });
  await connect(await startBroker());
}
