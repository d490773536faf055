import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, waitFor } from '../../helpers/broker.js';
import type { TestBroker } from '../../helpers/broker.js';
import { RUBY_DIR, SYSTEM_RUBY, expectClientOk, runClient } from './foreign.js';

/**
 * Bunny (Debian's ruby-bunny) against Warren: ruby/bunny_check.rb checks every step itself and
 * prints `OK <step>` for each.
 */
describe('Ruby bunny', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startTestBroker();
  });
  afterAll(async () => {
    await b.stop();
  });

  it('exchanges, properties, confirms, basic.get and a channel error, all self-checked', async () => {
    const result = await runClient(SYSTEM_RUBY, [join(RUBY_DIR, 'bunny_check.rb'), String(b.port)]);
    expectClientOk(result, 'OK bunny');
    const steps = result.stdout.split('\n').filter((l) => l.startsWith('OK '));
    expect(steps).toEqual([
      'OK direct',
      'OK fanout',
      'OK topic',
      'OK properties',
      'OK confirms',
      'OK basic_get',
      'OK channel_error',
      'OK bunny',
    ]);
    // The program closed its connection cleanly; the broker lets go of it.
    await waitFor(() => b.broker.connections.size === 0, 'the broker to drop the connection');
  });
});
