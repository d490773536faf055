import { AmqpError } from '../protocol/index.js';
import type { Channel } from './channel.js';
import { ClientError, ClientErrorCode } from './errors.js';
import type { Topology } from './topology.js';

/** What re-declaring the topology needs from the connection. */
export interface TopologyRecoveryHost {
  readonly topology: Topology;
  /** A channel that is neither recorded nor recovered itself. */
  internalChannel(): Promise<Channel>;
  reportError(err: Error): void;
  /** A server-named queue came back with a new name. */
  renameQueue(from: string, to: string): void;
}

/**
 * Declare again, on a fresh session, every exchange, queue and binding the application declared:
 * exchanges first (bindings need both ends), then queues (server-named ones get new names, which
 * their bindings and consumers follow), then bindings. Something the broker now refuses (e.g. a
 * queue redeclared elsewhere with other arguments) is reported and skipped; a dropped session
 * aborts the whole recovery, to be tried again on the next one.
 */
export async function recoverTopology(host: TopologyRecoveryHost): Promise<void> {
  const t = host.topology;
  let ch = await host.internalChannel();
  const run = async (what: string, fn: (c: Channel) => Promise<void>): Promise<void> => {
    try {
      await fn(ch);
    } catch (err) {
      if (!(err instanceof AmqpError) || err.closesConnection) throw err;
      host.reportError(
        new ClientError(
          ClientErrorCode.Protocol,
          `after reconnecting, ${what} could not be declared again: ${err.message}`,
          { cause: err },
        ),
      );
      // The refusal closed the channel.
      ch = await host.internalChannel();
    }
  };
  for (const x of [...t.exchanges.values()]) {
    await run(`exchange '${x.name}'`, (c) =>
      c.exchangeDeclare(x.name, x.type, {
        durable: x.durable,
        autoDelete: x.autoDelete,
        internal: x.internal,
        arguments: x.arguments,
      }),
    );
  }
  for (const q of [...t.queues.values()]) {
    const options = {
      durable: q.durable,
      exclusive: q.exclusive,
      autoDelete: q.autoDelete,
      arguments: q.arguments,
    };
    await run(`queue '${q.name}'`, async (c) => {
      const info = await c.queueDeclare(q.serverNamed ? '' : q.name, options);
      if (info.queue !== q.name) host.renameQueue(q.name, info.queue);
    });
  }
  for (const b of [...t.bindings.values()]) {
    await run(`the binding of '${b.destination}' to '${b.source}'`, (c) =>
      b.kind === 'queue'
        ? c.queueBind(b.destination, b.source, b.routingKey, b.arguments)
        : c.exchangeBind(b.destination, b.source, b.routingKey, b.arguments),
    );
  }
  await ch.close();
}
