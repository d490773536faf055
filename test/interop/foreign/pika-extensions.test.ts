import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { startTestBroker } from '../../helpers/broker.js';
import type { TestBroker } from '../../helpers/broker.js';
import { SYSTEM_PYTHON } from '../../helpers/processes.js';
import { RABBITMQ_URL, requireRabbitmq } from '../../helpers/rabbitmq.js';
import { PYTHON_DIR, expectClientOk, runClient } from './foreign.js';

/**
 * RabbitMQ's queue extensions as pika sees them (python/pika_extensions.py): TTL and
 * dead-lettering with x-death, length limits with confirm nacks, priorities, single active
 * consumer. Each scenario also runs against the local RabbitMQ, so the program's expectations are
 * RabbitMQ's own behaviour.
 */
const SCRIPT = join(PYTHON_DIR, 'pika_extensions.py');
const SCENARIOS = [
  'ttl_dead_letter',
  'reject_dead_letter',
  'max_length',
  'priorities',
  'single_active_consumer',
];

describe('pika: TTL, dead-lettering, length limits, priorities, single active consumer', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startTestBroker();
  });
  afterAll(async () => {
    await b.stop();
  });

  for (const name of SCENARIOS) {
    it(`${name} on Warren`, async () => {
      const result = await runClient(SYSTEM_PYTHON, [SCRIPT, String(b.port), name]);
      expectClientOk(result, `OK ${name}`);
    });
  }

  it('the same checks hold on RabbitMQ', async () => {
    await requireRabbitmq();
    const port = new URL(RABBITMQ_URL).port || '5672';
    const result = await runClient(SYSTEM_PYTHON, [SCRIPT, port, ...SCENARIOS]);
    for (const name of SCENARIOS) expectClientOk(result, `OK ${name}`);
  });
});
