import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker } from '../../helpers/broker.js';
import type { TestBroker } from '../../helpers/broker.js';
import { SYSTEM_PYTHON } from '../../helpers/processes.js';
import { PYTHON_DIR, expectClientOk, runClient } from './foreign.js';

/**
 * Error codes, returns, confirms and transactions as pika sees them: python/pika_errors.py. The
 * program checks RabbitMQ's reply codes and the start of its reply texts.
 */
const SCRIPT = join(PYTHON_DIR, 'pika_errors.py');

describe('pika: errors, returns, confirms, transactions', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startTestBroker();
  });
  afterAll(async () => {
    await b.stop();
  });

  async function scenario(name: string): Promise<string> {
    const result = await runClient(SYSTEM_PYTHON, [SCRIPT, String(b.port), name]);
    expectClientOk(result, `OK ${name}`);
    return result.stdout;
  }

  it("passive declare of a missing queue: 404 'NOT_FOUND - no queue ...'", () =>
    scenario('not_found'));
  it('redeclare with a different durable flag: 406 PRECONDITION_FAILED', () =>
    scenario('precondition_failed'));
  it('exclusive queue used from another connection: 405 RESOURCE_LOCKED', () =>
    scenario('resource_locked'));
  it("declaring 'amq.foo': 403 ACCESS_REFUSED", () => scenario('access_refused'));
  it('the connection and its other channels keep working after a channel error', () =>
    scenario('channel_error_isolation'));
  it('mandatory publish to an unroutable key: basic.return 312 NO_ROUTE before the ack', () =>
    scenario('mandatory_return'));
  it('publisher confirms', () => scenario('publisher_confirms'));
  it('tx.commit / tx.rollback of publishes and acks', () => scenario('transactions'));
  it('a deleted queue cancels its consumers with basic.cancel', () =>
    scenario('consumer_cancel_notify'));
  it('heartbeat=2: the broker sends heartbeats and keeps the idle connection', () =>
    scenario('heartbeats'));

  it('wrong password: connection refused with 403 ACCESS_REFUSED', async () => {
    const out = await scenario('wrong_password');
    expect(out).toMatch(
      /wrong password raised (ProbableAuthenticationError|ConnectionClosedByBroker)/,
    );
  });

  it('unknown vhost: connection refused with 530 NOT_ALLOWED', async () => {
    const out = await scenario('unknown_vhost');
    expect(out).toMatch(
      /unknown vhost raised (ProbableAccessDeniedError|ConnectionClosedByBroker)/,
    );
  });
});
