import { FRAME_MIN_SIZE, Method, Writer } from '../protocol/index.js';
import type { ConnectionStartOk, ConnectionTuneOk, FieldTable } from '../protocol/index.js';
import { VERSION } from '../version.js';
import { ClientError, ClientErrorCode } from './errors.js';
import type { ResolvedOptions } from './options.js';

/** connection.start-ok for the mechanisms the broker offers: credentials and client properties. */
export function startOk(o: ResolvedOptions, mechanisms: Buffer): ConnectionStartOk {
  const offered = mechanisms.toString().split(' ');
  if (!offered.includes(o.authMechanism)) {
    throw new ClientError(
      ClientErrorCode.ConnectFailed,
      `the broker offers ${offered.join(', ')} but not ${o.authMechanism}; choose one of those with authMechanism`,
    );
  }
  let response: Buffer;
  if (o.authMechanism === 'PLAIN') {
    // RFC 4616: authzid NUL authcid NUL passwd, with an empty authzid.
    response = Buffer.from(`\u0000${o.username}\u0000${o.password}`);
  } else {
    // AMQPLAIN: a field table without its length prefix.
    const w = new Writer(128);
    w.table({ LOGIN: o.username, PASSWORD: o.password });
    response = w.toBuffer().subarray(4);
  }
  const props: FieldTable = {
    product: 'Warren',
    version: VERSION,
    platform: `Node.js ${process.version}`,
    capabilities: {
      publisher_confirms: true,
      exchange_exchange_bindings: true,
      'basic.nack': true,
      consumer_cancel_notify: true,
      'connection.blocked': true,
      authentication_failure_close: true,
    },
    ...o.clientProperties,
  };
  if (o.connectionName !== undefined) props.connection_name = o.connectionName;
  return {
    id: Method.ConnectionStartOk,
    clientProperties: props,
    mechanism: o.authMechanism,
    response,
    locale: 'en_US',
  };
}

/**
 * connection.tune-ok: the smaller of each limit where 0 means none; heartbeats as the client
 * asked (0 disables them), else as the broker proposed.
 */
export function tuneOk(
  o: ResolvedOptions,
  channelMax: number,
  frameMax: number,
  heartbeat: number,
): ConnectionTuneOk {
  let fm = negotiate(o.frameMax, frameMax);
  if (fm !== 0 && fm < FRAME_MIN_SIZE) fm = FRAME_MIN_SIZE;
  return {
    id: Method.ConnectionTuneOk,
    channelMax: negotiate(o.channelMax, channelMax) || 65535,
    frameMax: fm,
    heartbeat: o.heartbeat ?? heartbeat,
  };
}

function negotiate(client: number, server: number): number {
  if (client === 0) return server;
  if (server === 0) return client;
  return Math.min(client, server);
}
