import { randomBytes } from 'node:crypto';
import { connect } from 'amqplib';
import type { Channel, ChannelModel, GetMessage } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, waitFor } from '../../helpers/broker.js';
import type { TestBroker } from '../../helpers/broker.js';
import { run } from '../../helpers/processes.js';
import type { RunResult } from '../../helpers/processes.js';

/**
 * amqp-tools (rabbitmq-c's command-line programs): amqp-declare-queue, amqp-publish, amqp-get,
 * amqp-consume. What they publish is read back with amqplib, which sees every property; what they
 * receive is compared with what amqplib published.
 */
describe('amqp-tools (rabbitmq-c)', () => {
  let b: TestBroker;
  let conn: ChannelModel;
  let ch: Channel;

  beforeAll(async () => {
    b = await startTestBroker();
    conn = await connect(b.url);
    ch = await conn.createChannel();
  });
  afterAll(async () => {
    await conn.close();
    await b.stop();
  });

  function tool(name: string, args: string[], input?: string): Promise<RunResult> {
    const options = { timeoutMs: 20_000, ...(input === undefined ? {} : { input }) };
    return run(`/usr/bin/${name}`, ['--url', b.url, ...args], options);
  }

  function expectExit0(r: RunResult, what: string): void {
    expect(r.code, `${what} failed:\n${r.stderr}`).toBe(0);
  }

  function queueName(prefix: string): string {
    return `${prefix}-${randomBytes(4).toString('hex')}`;
  }

  /** The next message of a queue (basic.get with auto-ack), waiting until there is one. */
  async function getOne(queue: string): Promise<GetMessage> {
    const { m } = await waitFor(async () => {
      const got = await ch.get(queue, { noAck: true });
      return got === false ? null : { m: got };
    }, `a message in ${queue}`);
    return m;
  }

  function vhost() {
    return b.broker.getVhost('/')!;
  }

  it('amqp-declare-queue declares named (durable) and server-named queues', async () => {
    const name = queueName('tools-declared');
    const r = await tool('amqp-declare-queue', ['-q', name, '-d']);
    expectExit0(r, 'amqp-declare-queue');
    expect(r.stdout.trim()).toBe(name);
    const q = vhost().queues.get(name);
    expect(q?.durable).toBe(true);
    expect(q?.exclusive).toBe(false);

    const anon = await tool('amqp-declare-queue', ['-q', '']);
    expectExit0(anon, 'amqp-declare-queue -q ""');
    const server = anon.stdout.trim();
    expect(server).toMatch(/^amq\.gen-/);
    expect(vhost().queues.has(server)).toBe(true);
    // The queue outlives the tool's connection: it is neither exclusive nor auto-delete.
    expect((await ch.checkQueue(server)).queue).toBe(server);
    await ch.deleteQueue(server);
  });

  it('amqp-publish sends the body and the properties it was given', async () => {
    const name = queueName('tools-props');
    await ch.assertQueue(name, { autoDelete: false });
    const body = 'hello from amqp-publish: caf\u00e9';
    const r = await tool('amqp-publish', [
      '-r',
      name,
      '-C',
      'text/plain',
      '-E',
      'utf-8',
      '-H',
      'x-first: 1',
      '-H',
      'x-second: two words',
      '-p',
      '-t',
      'reply-queue',
      '-b',
      body,
    ]);
    expectExit0(r, 'amqp-publish');
    const msg = await getOne(name);
    expect(msg.content.toString('utf8')).toBe(body);
    expect(msg.fields.exchange).toBe('');
    expect(msg.fields.routingKey).toBe(name);
    expect(msg.properties.contentType).toBe('text/plain');
    expect(msg.properties.contentEncoding).toBe('utf-8');
    expect(msg.properties.deliveryMode).toBe(2);
    expect(msg.properties.replyTo).toBe('reply-queue');
    expect(msg.properties.headers).toEqual({ 'x-first': '1', 'x-second': 'two words' });
    await ch.deleteQueue(name);
  });

  it('amqp-publish -l sends one message per line, through an exchange', async () => {
    const name = queueName('tools-lines');
    await ch.assertQueue(name, { autoDelete: false });
    await ch.bindQueue(name, 'amq.direct', name);
    const r = await tool(
      'amqp-publish',
      ['-e', 'amq.direct', '-r', name, '-l'],
      'one\ntwo\nthree\n',
    );
    expectExit0(r, 'amqp-publish -l');
    const bodies: string[] = [];
    await waitFor(async () => {
      const m = await ch.get(name, { noAck: true });
      if (m !== false) bodies.push(m.content.toString());
      return bodies.length === 3;
    }, 'three messages');
    // -l keeps each line's newline in the body.
    expect(bodies).toEqual(['one\n', 'two\n', 'three\n']);
    await ch.deleteQueue(name);
  });

  it('amqp-get prints the body byte for byte, and fails on an empty or missing queue', async () => {
    const name = queueName('tools-get');
    await ch.assertQueue(name, { autoDelete: false });
    const body = 'line 1\nline 2\t\u00e9\u2713 end';
    ch.sendToQueue(name, Buffer.from(body), { contentType: 'text/plain' });
    await waitFor(async () => (await ch.checkQueue(name)).messageCount === 1, 'the message');
    const r = await tool('amqp-get', ['-q', name]);
    expectExit0(r, 'amqp-get');
    expect(r.stdout).toBe(body);
    // The get acknowledged it: the queue is empty and nothing is unacknowledged.
    expect((await ch.checkQueue(name)).messageCount).toBe(0);
    expect(vhost().queues.get(name)?.unackedCount).toBe(0);

    const empty = await tool('amqp-get', ['-q', name]);
    expect(empty.code).not.toBe(0);
    expect(empty.stdout).toBe('');
    const missing = await tool('amqp-get', ['-q', queueName('tools-missing')]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/404.*NOT_FOUND - no queue/);
    await ch.deleteQueue(name);
  });

  it('amqp-consume -c runs the command once per message, in order, and acks each', async () => {
    const name = queueName('tools-consume');
    await ch.assertQueue(name, { autoDelete: false });
    const bodies = ['first', 'second', 'third', 'fourth'];
    for (const body of bodies) ch.sendToQueue(name, Buffer.from(body));
    await waitFor(async () => (await ch.checkQueue(name)).messageCount === 4, 'four messages');
    const r = await tool('amqp-consume', [
      '-q',
      name,
      '-c',
      '3',
      '-p',
      '1',
      // popt would read the command's own -c as an option without the '--'.
      '--',
      'sh',
      '-c',
      'cat; echo',
    ]);
    expectExit0(r, 'amqp-consume');
    expect(r.stdout).toBe('first\nsecond\nthird\n');
    // -c 3 stopped after three; the fourth is still ready and nothing is left unacked.
    await waitFor(() => vhost().queues.get(name)?.consumerCount === 0, 'the consumer to go');
    expect((await ch.checkQueue(name)).messageCount).toBe(1);
    expect(vhost().queues.get(name)?.unackedCount).toBe(0);
    expect((await getOne(name)).content.toString()).toBe('fourth');
    await ch.deleteQueue(name);
  });

  it('amqp-consume does not ack when the command fails: the message is redelivered', async () => {
    const name = queueName('tools-nack');
    await ch.assertQueue(name, { autoDelete: false });
    ch.sendToQueue(name, Buffer.from('try again'));
    await waitFor(async () => (await ch.checkQueue(name)).messageCount === 1, 'the message');
    // The command reads the body before failing: one that exits without reading (plain 'false')
    // can leave amqp-consume writing into a closed pipe, and SIGPIPE would end it, not the test.
    const r = await tool('amqp-consume', [
      '-q',
      name,
      '-c',
      '1',
      '--',
      'sh',
      '-c',
      'cat >/dev/null; exit 1',
    ]);
    expectExit0(r, 'amqp-consume with a failing command');
    // Its connection closed with the delivery unacknowledged, so the message is back.
    await waitFor(async () => (await ch.checkQueue(name)).messageCount === 1, 'the requeue');
    const again = await getOne(name);
    expect(again.content.toString()).toBe('try again');
    expect(again.fields.redelivered).toBe(true);
    await ch.deleteQueue(name);
  });

  it('amqp-consume -e -r binds an exclusive queue to an exchange and receives through it', async () => {
    const key = `tools.${randomBytes(4).toString('hex')}`;
    const consuming = tool('amqp-consume', ['-e', 'amq.topic', '-r', `${key}.#`, '-c', '2', 'cat']);
    // Publish only once the tool's queue is bound.
    const topic = vhost().exchanges.get('amq.topic')!;
    await waitFor(
      () => [...topic.bindings.values()].some((bd) => bd.routingKey === `${key}.#`),
      'amqp-consume to bind its queue',
    );
    const pub = await tool('amqp-publish', ['-e', 'amq.topic', '-r', `${key}.a`, '-b', 'A;']);
    expectExit0(pub, 'amqp-publish');
    const other = await tool('amqp-publish', ['-e', 'amq.topic', '-r', `other.${key}`, '-b', 'X;']);
    expectExit0(other, 'amqp-publish');
    const pub2 = await tool('amqp-publish', ['-e', 'amq.topic', '-r', `${key}.b.c`, '-b', 'B;']);
    expectExit0(pub2, 'amqp-publish');
    const r = await consuming;
    expectExit0(r, 'amqp-consume -e');
    expect(r.stdout).toBe('A;B;');
    // The tool's queue (exclusive, auto-delete) went with its connection, and its binding too.
    await waitFor(
      () => ![...topic.bindings.values()].some((bd) => bd.routingKey === `${key}.#`),
      'the exclusive queue and its binding to go',
    );
  });
});
