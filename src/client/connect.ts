import { Connection } from './connection.js';
import { inProcessTransport, isEmbeddableBroker } from './embedded.js';
import type { EmbeddableBroker } from './embedded.js';
import { invalidArgument } from './errors.js';
import { resolveOptions } from './options.js';
import type { ConnectOptions } from './options.js';

/**
 * Connect to an AMQP 0-9-1 broker and resolve once the connection is open.
 *
 * - `connect('amqp://user:pass@host:5672/vhost?heartbeat=30')`, or `amqps://` for TLS;
 * - `connect({ hostname, port, username, password, vhost, ... })`;
 * - `connect(broker)` with a broker from `startBroker()`: an in-process connection, no socket.
 *
 * `options` add to or override what the first argument says. The connection reconnects after a
 * drop unless `reconnect: false`; the first connection attempt is not retried.
 */
export async function connect(
  target?: string | ConnectOptions | EmbeddableBroker,
  options: ConnectOptions = {},
): Promise<Connection> {
  let o: ConnectOptions;
  if (target === undefined) o = options;
  else if (typeof target === 'string') o = { url: target, ...options };
  else if (isEmbeddableBroker(target)) {
    // In-process: no network to watch, so no heartbeats unless asked for.
    o = { heartbeat: 0, ...options, transport: inProcessTransport(target) };
  } else if (typeof target === 'object') o = { ...target, ...options };
  else throw invalidArgument('connect() takes a URL, an options object or an embedded broker');
  const conn = new Connection(resolveOptions(o));
  await conn.start();
  return conn;
}
