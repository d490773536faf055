import { AmqpError } from '../protocol/index.js';

/**
 * Stable codes of the errors the client raises itself. Errors the broker reports (channel.close,
 * connection.close) are `AmqpError`s carrying the AMQP reply code and text instead.
 */
export const ClientErrorCode = {
  /** The connection was closed (by `close()`, or for good after a fatal error). */
  ConnectionClosed: 'WARREN_ERR_CONNECTION_CLOSED',
  /** The connection dropped while the operation was in flight; its outcome is unknown. */
  ConnectionLost: 'WARREN_ERR_CONNECTION_LOST',
  /** No connection could be opened (refused, unreachable, TLS failure, handshake timeout). */
  ConnectFailed: 'WARREN_ERR_CONNECT_FAILED',
  /** The channel is closed; open a new one. */
  ChannelClosed: 'WARREN_ERR_CHANNEL_CLOSED',
  /** Every channel number the broker allows is in use. */
  ChannelLimit: 'WARREN_ERR_CHANNEL_LIMIT',
  /** The operation did not complete in the time given. */
  Timeout: 'WARREN_ERR_TIMEOUT',
  /** The operation's AbortSignal fired. */
  Aborted: 'WARREN_ERR_ABORTED',
  /** The broker answered a publish with basic.nack: it did not take responsibility for it. */
  PublishNacked: 'WARREN_ERR_PUBLISH_NACKED',
  /** A mandatory publish came back unroutable (basic.return): no queue took it. */
  Unroutable: 'WARREN_ERR_UNROUTABLE',
  /** The broker cancelled the consumer (its queue was deleted, or it failed over). */
  ConsumerCancelled: 'WARREN_ERR_CONSUMER_CANCELLED',
  /** A message handler threw or rejected. */
  HandlerFailed: 'WARREN_ERR_HANDLER_FAILED',
  /** An RPC server replied with an error. */
  RemoteError: 'WARREN_ERR_REMOTE',
  InvalidUrl: 'WARREN_ERR_INVALID_URL',
  InvalidArgument: 'WARREN_ERR_INVALID_ARGUMENT',
  /** The broker sent something the protocol does not allow at that point. */
  Protocol: 'WARREN_ERR_PROTOCOL',
} as const;
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** An error raised by the client (not sent by the broker); `code` is stable, the message says what to do. */
export class ClientError extends Error {
  readonly code: ClientErrorCode;

  constructor(code: ClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ClientError';
    this.code = code;
  }
}

/** Either kind of error the client surfaces. */
export type WarrenError = AmqpError | ClientError;

export function isAmqpError(err: unknown): err is AmqpError {
  return err instanceof AmqpError;
}

export function invalidArgument(message: string): ClientError {
  return new ClientError(ClientErrorCode.InvalidArgument, message);
}

export function channelClosedError(id: number, cause: Error | null): ClientError {
  const why = cause === null ? 'it was closed' : `it was closed: ${cause.message}`;
  return new ClientError(
    ClientErrorCode.ChannelClosed,
    `channel ${id} cannot be used because ${why}; open a new one with connection.channel()`,
    cause === null ? undefined : { cause },
  );
}

export function connectionClosedError(cause: Error | null): ClientError {
  const why = cause === null ? 'it was closed' : `it was closed: ${cause.message}`;
  return new ClientError(
    ClientErrorCode.ConnectionClosed,
    `the connection cannot be used because ${why}; call connect() again`,
    cause === null ? undefined : { cause },
  );
}

export function connectionLostError(what: string, cause: Error | null): ClientError {
  return new ClientError(
    ClientErrorCode.ConnectionLost,
    `the connection dropped before ${what} completed, so its outcome is unknown; retry it if it is safe to`,
    cause === null ? undefined : { cause },
  );
}
