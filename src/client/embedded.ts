import type { Duplex } from 'node:stream';
import type { Broker, BrokerOptions } from '../broker/index.js';
import { createDuplexPair } from './duplex-pair.js';

/**
 * The part of a Warren broker the client needs to connect in-process: `attach` serves one AMQP
 * connection over a duplex stream.
 */
export interface EmbeddableBroker {
  attach(transport: Duplex): unknown;
}

/** Whether a connect() target is an in-process broker rather than a URL or options. */
export function isEmbeddableBroker(x: unknown): x is EmbeddableBroker {
  return (
    typeof x === 'object' && x !== null && typeof (x as { attach?: unknown }).attach === 'function'
  );
}

/**
 * A transport to an in-process broker: a pair of in-memory duplex streams, one end served by
 * the broker. The bytes are the same AMQP a socket would carry, so the same client code runs
 * against embedded Warren, standalone Warren and RabbitMQ, without a TCP stack in between.
 */
export function inProcessTransport(broker: EmbeddableBroker): () => Duplex {
  return () => {
    const [client, server] = createDuplexPair();
    broker.attach(server);
    return client;
  };
}

/**
 * Start a Warren broker inside this process. By default it opens no TCP port (`port: null`);
 * reach it with `connect(broker)`. Pass `port: 0` (any free port) or a number to also serve other
 * processes. Stop it with `broker.stop()`.
 */
export async function startBroker(options: BrokerOptions = {}): Promise<Broker> {
  // Loaded on demand so that applications using only the client do not load the broker.
  const { Broker } = await import('../broker/broker.js');
  const broker = new Broker({ port: null, logLevel: 'warn', ...options });
  return broker.start();
}
