/**
 * The three brokers every client test runs against, with the same test bodies: the local
 * RabbitMQ (127.0.0.1:5672), a standalone Warren on an ephemeral port (over TCP), and an embedded
 * Warren (in-process streams, no socket).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe } from 'vitest';
import type { Broker } from '../../src/broker/index.js';
import { connect, startBroker } from '../../src/client/index.js';
import type { ConnectOptions, Connection } from '../../src/client/index.js';
import { startTestBroker } from '../helpers/broker.js';
import type { TestBroker } from '../helpers/broker.js';
import { RABBITMQ_URL, requireRabbitmq } from '../helpers/rabbitmq.js';

export type BrokerKind = 'rabbitmq' | 'warren' | 'embedded';
export const BROKER_KINDS: readonly BrokerKind[] = ['rabbitmq', 'warren', 'embedded'];

export interface BrokerTarget {
  readonly kind: BrokerKind;
  /** A connection to this broker; closed after the test unless the test closed it. */
  connect(options?: ConnectOptions): Promise<Connection>;
  /** A name unique to this run, registered for deletion (queue or exchange) after the test. */
  name(what: string): string;
  /** The Warren broker object (standalone or embedded); undefined for RabbitMQ. */
  readonly warren: Broker | undefined;
}

/**
 * describe() once per broker. The body gets a getter for the target (set up in beforeAll).
 * After each test, its connections are closed and the queues and exchanges it named are deleted.
 */
export function describeBrokers(
  title: string,
  body: (target: () => BrokerTarget) => void,
  kinds: readonly BrokerKind[] = BROKER_KINDS,
): void {
  describe.each(kinds)(`${title} [%s]`, (kind) => {
    let target: BrokerTarget | undefined;
    let standalone: TestBroker | undefined;
    let embedded: Broker | undefined;
    const open: Connection[] = [];
    const names: string[] = [];

    beforeAll(async () => {
      let base: (o: ConnectOptions) => Promise<Connection>;
      if (kind === 'rabbitmq') {
        await requireRabbitmq();
        base = (o) => connect(RABBITMQ_URL, o);
      } else if (kind === 'warren') {
        standalone = await startTestBroker();
        const url = standalone.url;
        base = (o) => connect(url, o);
      } else {
        embedded = await startBroker({ logLevel: 'silent' });
        const b = embedded;
        base = (o) => connect(b, o);
      }
      target = {
        kind,
        warren: standalone?.broker ?? embedded,
        async connect(options = {}) {
          const c = await base(options);
          open.push(c);
          return c;
        },
        name(what) {
          const n = `warren-client-test.${what}.${randomBytes(5).toString('hex')}`;
          names.push(n);
          return n;
        },
      };
    });

    afterEach(async () => {
      const conns = open.splice(0);
      await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
      const toDelete = names.splice(0);
      if (toDelete.length === 0 || target === undefined) return;
      const c = await target.connect({ reconnect: false });
      open.pop();
      for (const n of toDelete) {
        // A channel error (e.g. the entity does not exist on this broker) closes only the channel.
        const ch = await c.channel();
        await ch.queueDelete(n).catch(() => 0);
        const ch2 = ch.isOpen ? ch : await c.channel();
        await ch2.exchangeDelete(n).catch(() => undefined);
      }
      await c.close();
    });

    afterAll(async () => {
      await standalone?.stop();
      await embedded?.stop();
    });

    body(() => {
      if (target === undefined) throw new Error('broker target not set up');
      return target;
    });
  });
}

/** Resolve when `predicate` holds, checking every few ms; fail after `ms`. */
export async function until(
  predicate: () => boolean | Promise<boolean>,
  what: string,
  ms = 10_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Resolve with the queue's ready-message count once it equals `expected`. RabbitMQ updates
 * counts asynchronously (a passive declare may not see a reject or publish made just before).
 */
export async function countBecomes(
  ch: { queueCheck(q: string): Promise<{ messageCount: number }> },
  queue: string,
  expected: number,
): Promise<number> {
  let last = -1;
  await until(async () => {
    last = (await ch.queueCheck(queue)).messageCount;
    return last === expected;
  }, `${queue} to hold ${expected} messages`).catch(() => undefined);
  return last;
}
