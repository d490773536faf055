import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../../src/broker/index.js';
import type { BrokerOptions } from '../../src/broker/index.js';

export interface TestBroker {
  broker: Broker;
  port: number;
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

/**
 * A Warren broker on an ephemeral port with its own temporary data directory. Logs are silent
 * unless WARREN_TEST_LOG is set (e.g. WARREN_TEST_LOG=debug).
 */
export async function startTestBroker(options: BrokerOptions = {}): Promise<TestBroker> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'warren-test-'));
  const level = process.env.WARREN_TEST_LOG;
  const broker = new Broker({
    port: 0,
    host: '127.0.0.1',
    logLevel:
      level === 'debug' || level === 'info' || level === 'warn' || level === 'error'
        ? level
        : 'silent',
    ...options,
    dataDir,
  });
  await broker.start();
  const port = broker.port;
  return {
    broker,
    port,
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    dataDir,
    async stop() {
      await broker.stop();
      if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Poll until `check` returns a truthy value, or fail after `timeoutMs`. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 10_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
