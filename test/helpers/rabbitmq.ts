import { Socket } from 'node:net';

export const RABBITMQ_URL = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** True when something accepts TCP connections on RabbitMQ's port. */
export function rabbitmqReachable(
  host = '127.0.0.1',
  port = 5672,
  timeoutMs = 2000,
): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('error', () => done(false));
    s.connect(port, host, () => done(true));
  });
}

/**
 * Tests that compare with RabbitMQ require it: CI starts it (scripts/test-all.sh) and a missing
 * RabbitMQ is a failure, not a skip.
 */
export async function requireRabbitmq(): Promise<void> {
  if (!(await rabbitmqReachable())) {
    throw new Error(
      'RabbitMQ is not reachable on 127.0.0.1:5672; start it with `rabbitmq-server -detached` (scripts/test-all.sh does this)',
    );
  }
}
