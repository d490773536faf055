import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, waitFor } from '../../helpers/broker.js';
import type { TestBroker } from '../../helpers/broker.js';
import { FOREIGN_DIR, expectClientOk, runClient } from './foreign.js';

/**
 * Go's amqp091 (RabbitMQ's own Go client, Debian's golang-github-rabbitmq-amqp091-go-dev) against
 * Warren: go/amqp091_check.go checks every step itself and prints `OK <step>` for each. Built with
 * Debian's Go in GOPATH mode from the packaged sources; nothing is downloaded.
 */
describe("Go's amqp091", () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startTestBroker();
  });
  afterAll(async () => {
    await b.stop();
  });

  it('topic routing, every property and header type, confirms, get, nack, returns, errors', async () => {
    const result = await runClient(
      '/usr/bin/go',
      ['run', join(FOREIGN_DIR, 'go', 'amqp091_check.go'), String(b.port)],
      {
        // The first build compiles the client library; later runs come from the build cache.
        timeoutMs: 180_000,
        env: {
          GO111MODULE: 'off',
          GOPATH: '/usr/share/gocode',
          GOCACHE: join(tmpdir(), 'warren-go-build-cache'),
          GOFLAGS: '',
        },
      },
    );
    expectClientOk(result, 'OK amqp091');
    const steps = result.stdout.split('\n').filter((l) => l.startsWith('OK '));
    expect(steps).toEqual([
      'OK connect',
      'OK topic',
      'OK properties',
      'OK confirms',
      'OK get_qos_nack',
      'OK mandatory_return',
      'OK channel_error',
      'OK amqp091',
    ]);
    // The program closed its connection cleanly; the broker lets go of it.
    await waitFor(() => b.broker.connections.size === 0, 'the broker to drop the connection');
  }, 200_000);
});
