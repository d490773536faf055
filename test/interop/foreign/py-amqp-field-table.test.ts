import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { startTestBroker } from '../../helpers/broker.js';
import type { TestBroker } from '../../helpers/broker.js';
import { SYSTEM_PYTHON } from '../../helpers/processes.js';
import { PYTHON_DIR, expectClientOk, runClient } from './foreign.js';

/**
 * py-amqp (Debian's python3-amqp): python/amqp_field_table.py publishes headers with every
 * field-table type py-amqp can encode and all 14 basic properties, reads them back with basic.get
 * and basic.consume (one body split over several frames), and compares values, Python types and
 * the re-encoded property bytes with what it sent.
 */
describe('py-amqp field tables and properties', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startTestBroker();
  });
  afterAll(async () => {
    await b.stop();
  });

  it('every header type and every basic property arrive as sent', async () => {
    const result = await runClient(SYSTEM_PYTHON, [
      join(PYTHON_DIR, 'amqp_field_table.py'),
      String(b.port),
      'field_table',
    ]);
    expectClientOk(result, 'OK field_table');
  });
});
