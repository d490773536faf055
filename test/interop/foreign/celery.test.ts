import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker } from '../../helpers/broker.js';
import type { TestBroker } from '../../helpers/broker.js';
import { SYSTEM_PYTHON } from '../../helpers/processes.js';
import { PYTHON_DIR, expectClientOk, runClient, startBackground } from './foreign.js';
import type { BackgroundProcess } from './foreign.js';

/**
 * Celery (Debian's python3-celery, on kombu and py-amqp): a real worker process consumes tasks
 * through Warren and sends results back with the rpc:// result backend, which is AMQP too.
 * python/celery_tasks.py is the app, python/celery_client.py sends tasks and checks results.
 */
describe('Celery worker with the rpc:// result backend', () => {
  let b: TestBroker;
  let worker: BackgroundProcess | null = null;
  let env: Record<string, string>;

  beforeAll(async () => {
    b = await startTestBroker();
    env = {
      CELERY_BROKER_URL: `amqp://guest:guest@127.0.0.1:${b.port}//`,
      WARREN_CELERY_QUEUE: `warren-interop-${randomBytes(4).toString('hex')}`,
    };
  });
  afterAll(async () => {
    // The worker is stopped whatever happened in the test.
    await worker?.stop();
    await b.stop();
  });

  it('runs add(2, 3) and more tasks, and returns results and exceptions', async () => {
    worker = startBackground(
      SYSTEM_PYTHON,
      [
        '-m',
        'celery',
        '-A',
        'celery_tasks',
        'worker',
        '--pool=solo',
        '-c',
        '1',
        '--without-gossip',
        '--without-mingle',
        '--without-heartbeat',
        '--loglevel=INFO',
      ],
      { env, cwd: PYTHON_DIR, timeoutMs: 150_000 },
    );
    try {
      const result = await runClient(SYSTEM_PYTHON, [join(PYTHON_DIR, 'celery_client.py')], {
        env,
        cwd: PYTHON_DIR,
        timeoutMs: 90_000,
      });
      const withWorker = {
        ...result,
        stderr: `${result.stderr}\n--- worker\n${worker.output()}`,
      };
      expectClientOk(withWorker, 'OK celery');
      // The worker, not anything else, ran the tasks.
      expect(worker.output()).toMatch(
        /Task warren\.add\[[0-9a-f-]+\] succeeded in [0-9.e-]+s: 5\b/,
      );
      expect(worker.output()).toMatch(/Task warren\.boom\[[0-9a-f-]+\] raised unexpected/);
      expect(worker.exited(), 'the worker should still be running').toBe(false);
    } finally {
      await worker.stop();
    }
    expect(worker.exited()).toBe(true);
  }, 120_000);
});
