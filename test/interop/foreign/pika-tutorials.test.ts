import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { startTestBroker } from '../../helpers/broker.js';
import type { TestBroker } from '../../helpers/broker.js';
import { SYSTEM_PYTHON } from '../../helpers/processes.js';
import { PYTHON_DIR, expectClientOk, runClient } from './foreign.js';

/**
 * The six classic RabbitMQ tutorials, written with pika (Debian's python3-pika) as self-checking
 * programs: python/pika_tutorials.py. Each scenario runs in its own process against one broker.
 */
const SCRIPT = join(PYTHON_DIR, 'pika_tutorials.py');

describe('pika: the RabbitMQ tutorials', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startTestBroker();
  });
  afterAll(async () => {
    await b.stop();
  });

  async function scenario(name: string): Promise<void> {
    const result = await runClient(SYSTEM_PYTHON, [SCRIPT, String(b.port), name]);
    expectClientOk(result, `OK ${name}`);
  }

  it('1. hello world: publish to a named queue, consume with auto-ack', () =>
    scenario('hello_world'));
  it('2. work queues: prefetch=1 fair dispatch, manual acks, redelivery when a worker dies', () =>
    scenario('work_queues'));
  it('3. publish/subscribe: fanout exchange, exclusive server-named queues', () =>
    scenario('publish_subscribe'));
  it('4. routing: direct exchange with several bindings, unbind', () => scenario('routing'));
  it("5. topics: '*' and '#' bindings, a message matching twice is delivered once", () =>
    scenario('topics'));
  it('6. RPC: reply_to an exclusive callback queue, correlation_id', () => scenario('rpc'));
  it('6b. RPC with direct reply-to (amq.rabbitmq.reply-to)', () => scenario('direct_reply_to'));
});
