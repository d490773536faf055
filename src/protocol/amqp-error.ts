import { ReplyCode, replyCodeIsHard, replyCodeName } from './generated/constants.js';

/**
 * The one error model of Warren's AMQP layers: what the broker sends in channel.close /
 * connection.close and what the client raises when it receives one.
 *
 * `replyText` is in RabbitMQ's form, `NOT_FOUND - no queue 'q' in vhost '/'`, because clients and
 * operators grep logs for it.
 */
export class AmqpError extends Error {
  /** Stable identifier, `AMQP_<REPLY_NAME>` (e.g. `AMQP_NOT_FOUND`), for programmatic checks. */
  readonly code: string;
  readonly replyCode: number;
  readonly replyText: string;
  readonly classId: number;
  readonly methodId: number;
  /** True when the error closes the whole connection rather than one channel. */
  readonly closesConnection: boolean;

  constructor(
    replyCode: number,
    detail: string,
    options: { classId?: number; methodId?: number; closesConnection?: boolean } = {},
  ) {
    const name = replyCodeName(replyCode);
    const replyText = truncateShortstr(`${name} - ${detail}`);
    super(replyText);
    this.name = 'AmqpError';
    this.code = `AMQP_${name}`;
    this.replyCode = replyCode;
    this.replyText = replyText;
    this.classId = options.classId ?? 0;
    this.methodId = options.methodId ?? 0;
    this.closesConnection = options.closesConnection ?? replyCodeIsHard(replyCode);
  }

  /** Build from a received close method, keeping the peer's text verbatim. */
  static fromClose(
    replyCode: number,
    replyText: string,
    classId: number,
    methodId: number,
    closesConnection: boolean,
  ): AmqpError {
    const err = new AmqpError(replyCode, '', { classId, methodId, closesConnection });
    Object.defineProperty(err, 'replyText', { value: replyText });
    err.message = replyText;
    return err;
  }

  /** The same error attributed to a method, when it was raised below the handler that knows it. */
  withMethod(classId: number, methodId: number): AmqpError {
    if (this.classId !== 0 || this.methodId !== 0) return this;
    return AmqpError.fromClose(
      this.replyCode,
      this.replyText,
      classId,
      methodId,
      this.closesConnection,
    );
  }
}

/** Shorthand constructors for the errors handlers throw most. */
export const amqpErrors = {
  notFound: (detail: string) => new AmqpError(ReplyCode.NotFound, detail),
  accessRefused: (detail: string) => new AmqpError(ReplyCode.AccessRefused, detail),
  resourceLocked: (detail: string) => new AmqpError(ReplyCode.ResourceLocked, detail),
  preconditionFailed: (detail: string) => new AmqpError(ReplyCode.PreconditionFailed, detail),
  frameError: (detail: string) => new AmqpError(ReplyCode.FrameError, detail),
  syntaxError: (detail: string) => new AmqpError(ReplyCode.SyntaxError, detail),
  commandInvalid: (detail: string) => new AmqpError(ReplyCode.CommandInvalid, detail),
  channelError: (detail: string) => new AmqpError(ReplyCode.ChannelError, detail),
  unexpectedFrame: (detail: string) => new AmqpError(ReplyCode.UnexpectedFrame, detail),
  resourceError: (detail: string) => new AmqpError(ReplyCode.ResourceError, detail),
  notAllowed: (detail: string) => new AmqpError(ReplyCode.NotAllowed, detail),
  notImplemented: (detail: string) => new AmqpError(ReplyCode.NotImplemented, detail),
  internalError: (detail: string) => new AmqpError(ReplyCode.InternalError, detail),
} as const;

function truncateShortstr(text: string): string {
  if (Buffer.byteLength(text) <= 255) return text;
  let out = text.slice(0, 255);
  while (Buffer.byteLength(out) > 255) out = out.slice(0, -1);
  return out;
}
