import {
  AmqpError,
  FRAME_MIN_SIZE,
  Method,
  Reader,
  ReplyCode,
  methodName,
} from '../../protocol/index.js';
import type {
  AnyMethod,
  ConnectionOpen,
  ConnectionStartOk,
  ConnectionTuneOk,
  FieldTable,
} from '../../protocol/index.js';
import { ConnectionState } from '../connection.js';
import type { Connection } from '../connection.js';

/** Methods of the connection class (channel 0): the handshake, then close and update-secret. */
export function handleConnectionMethod(conn: Connection, m: AnyMethod): void {
  switch (conn.state) {
    case ConnectionState.AwaitingStartOk:
      expect(m, Method.ConnectionStartOk);
      startOk(conn, m as ConnectionStartOk);
      return;
    case ConnectionState.AwaitingTuneOk:
      expect(m, Method.ConnectionTuneOk);
      tuneOk(conn, m as ConnectionTuneOk);
      return;
    case ConnectionState.AwaitingOpen:
      expect(m, Method.ConnectionOpen);
      open(conn, m as ConnectionOpen);
      return;
    default:
      break;
  }
  switch (m.id) {
    case Method.ConnectionClose:
      conn.clientClosed();
      return;
    case Method.ConnectionUpdateSecret:
      // PLAIN credentials do not expire; accept the new secret as RabbitMQ does for them.
      conn.sendMethod(0, { id: Method.ConnectionUpdateSecretOk });
      return;
    default:
      // Includes an unsolicited close-ok (the solicited one arrives while Closing). 504 and this
      // wording are RabbitMQ's for any method channel 0 does not take once the connection is open.
      throw new AmqpError(
        ReplyCode.ChannelError,
        `unexpected method in connection state running: ${methodName(m.id)}`,
      );
  }
}

function expect(m: AnyMethod, id: number): void {
  if (m.id !== id) {
    throw new AmqpError(
      ReplyCode.CommandInvalid,
      `expected '${methodName(id)}', got '${methodName(m.id)}'`,
    );
  }
}

function startOk(conn: Connection, m: ConnectionStartOk): void {
  conn.clientProperties = m.clientProperties;
  const caps = m.clientProperties.capabilities;
  if (caps !== null && typeof caps === 'object' && !Array.isArray(caps)) {
    const c = caps as FieldTable;
    conn.capabilities = {
      consumerCancelNotify: c.consumer_cancel_notify === true,
      connectionBlocked: c['connection.blocked'] === true,
      authenticationFailureClose: c.authentication_failure_close === true,
      basicNack: c['basic.nack'] === true,
      publisherConfirms: c.publisher_confirms === true,
    };
  }
  const { username, password } = parseCredentials(m.mechanism, m.response);
  conn.authMechanism = m.mechanism;
  const { users, config } = conn.host;
  const user = users.authenticate(username, password);
  if (user === undefined) {
    conn.host.logger.warn(
      `connection ${conn.name}: login refused for user '${username}' (${m.mechanism}): bad credentials`,
    );
    refuseLogin(conn, m.mechanism);
    return;
  }
  if (config.loopbackUsers.includes(user.name) && !isLoopback(conn.remoteAddress)) {
    conn.host.logger.warn(
      `connection ${conn.name}: user '${user.name}' can only connect via localhost; ` +
        `add a user with 'warren ctl add-user' for remote access`,
    );
    // RabbitMQ tells the client no more than for a wrong password; the log says why.
    refuseLogin(conn, m.mechanism);
    return;
  }
  conn.user = user;
  conn.state = ConnectionState.AwaitingTuneOk;
  conn.sendMethod(0, {
    id: Method.ConnectionTune,
    channelMax: config.channelMax,
    frameMax: config.frameMax,
    heartbeat: config.heartbeat,
  });
}

/**
 * Close the connection after a failed login with RabbitMQ's words, which say nothing of why
 * (authentication_failure_close). Like RabbitMQ it names no method (class and method 0), so it
 * bypasses the dispatcher's attribution to connection.start-ok.
 */
function refuseLogin(conn: Connection, mechanism: string): void {
  conn.connectionError(
    new AmqpError(
      ReplyCode.AccessRefused,
      `Login was refused using authentication mechanism ${mechanism}. For details see the broker logfile.`,
      { closesConnection: true },
    ),
  );
}

function parseCredentials(
  mechanism: string,
  response: Buffer,
): { username: string; password: string } {
  if (mechanism === 'PLAIN') {
    // RFC 4616: [authzid] NUL authcid NUL passwd
    const parts = response.toString('utf8').split('\u0000');
    if (parts.length !== 3) {
      throw new AmqpError(ReplyCode.AccessRefused, 'malformed PLAIN response', {
        closesConnection: true,
      });
    }
    return { username: parts[1]!, password: parts[2]! };
  }
  if (mechanism === 'AMQPLAIN') {
    // The response is a field table's contents without its length prefix.
    const framed = Buffer.allocUnsafe(response.length + 4);
    framed.writeUInt32BE(response.length, 0);
    response.copy(framed, 4);
    const t = new Reader(framed).table();
    const text = (v: unknown): string =>
      typeof v === 'string' ? v : v instanceof Uint8Array ? Buffer.from(v).toString() : '';
    return { username: text(t.LOGIN), password: text(t.PASSWORD) };
  }
  throw new AmqpError(
    ReplyCode.CommandInvalid,
    `unknown authentication mechanism '${mechanism}'; Warren supports PLAIN and AMQPLAIN`,
  );
}

function tuneOk(conn: Connection, m: ConnectionTuneOk): void {
  const { config } = conn.host;
  if (m.frameMax !== 0 && m.frameMax < FRAME_MIN_SIZE) {
    throw new AmqpError(
      ReplyCode.NotAllowed,
      `frame_max=${m.frameMax} < ${FRAME_MIN_SIZE} min size`,
    );
  }
  if (m.frameMax > config.frameMax) {
    throw new AmqpError(
      ReplyCode.NotAllowed,
      `frame_max=${m.frameMax} > ${config.frameMax} max size`,
    );
  }
  if (m.channelMax > config.channelMax) {
    throw new AmqpError(
      ReplyCode.NotAllowed,
      `channel_max=${m.channelMax} > ${config.channelMax} max`,
    );
  }
  conn.frameMax = m.frameMax === 0 ? config.frameMax : m.frameMax;
  conn.channelMax = m.channelMax === 0 ? config.channelMax : m.channelMax;
  // The client has the last word on heartbeats (0 disables them), as with RabbitMQ.
  conn.heartbeat = m.heartbeat;
  conn.parser.maxFrameSize = conn.frameMax;
  conn.state = ConnectionState.AwaitingOpen;
}

function open(conn: Connection, m: ConnectionOpen): void {
  const vhostName = m.virtualHost;
  const max = conn.host.config.maxConnections;
  // RabbitMQ's check (3.11+; 3.10 leaves the extra client waiting, unaccepted): the count
  // includes this connection.
  if (max !== null && conn.host.connections.size > max) {
    conn.host.logger.warn(
      `connection ${conn.name}: refused, ${conn.host.connections.size - 1} connections are open ` +
        `and maxConnections is ${max}`,
    );
    throw new AmqpError(
      ReplyCode.NotAllowed,
      `connection refused: node connection limit (${max}) is reached`,
    );
  }
  const vhost = conn.host.getVhost(vhostName);
  if (vhost === undefined) {
    throw new AmqpError(ReplyCode.NotAllowed, `vhost ${vhostName} not found`);
  }
  const user = conn.user!;
  if (!conn.host.users.hasVhostAccess(vhostName, user.name)) {
    throw new AmqpError(
      ReplyCode.NotAllowed,
      `access to vhost '${vhostName}' refused for user '${user.name}'`,
    );
  }
  conn.vhost = vhost;
  conn.state = ConnectionState.Open;
  conn.handshakeDone();
  conn.sendMethod(0, { id: Method.ConnectionOpenOk, knownHosts: '' });
  conn.host.logger.debug(
    `connection ${conn.name}: user '${user.name}' authenticated and granted access to vhost '${vhostName}'`,
  );
}

export function isLoopback(address: string): boolean {
  return (
    address === 'in-process' ||
    address === '::1' ||
    address.startsWith('127.') ||
    address.startsWith('::ffff:127.')
  );
}
