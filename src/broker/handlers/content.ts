import { AmqpError, FrameType, ReplyCode, amqpErrors } from '../../protocol/index.js';
import type { Channel } from '../channel.js';
import { Message } from '../message.js';
import { completePublish } from './basic.js';

const EMPTY = Buffer.alloc(0);

/**
 * Content header and body frames of a publish. The body is copied once, from the frames into a
 * buffer of the announced size; nothing else is assembled.
 */
export function handleChannelFrame(ch: Channel, type: number, payload: Buffer): void {
  const p = ch.pending;
  if (type === FrameType.Header) {
    if (p === null || p.header !== null) {
      throw new AmqpError(ReplyCode.UnexpectedFrame, 'content header without a publish method', {
        closesConnection: true,
      });
    }
    if (payload.length < 14) {
      throw new AmqpError(
        ReplyCode.FrameError,
        `content header of ${payload.length} octets is too short`,
      );
    }
    const classId = payload.readUInt16BE(0);
    if (classId !== 60) {
      throw new AmqpError(
        ReplyCode.UnexpectedFrame,
        `expected content header for class 60, got class ${classId}`,
      );
    }
    const hi = payload.readUInt32BE(4);
    const bodySize = hi * 0x1_0000_0000 + payload.readUInt32BE(8);
    const max = ch.connection.host.config.maxMessageSize;
    if (bodySize > max) {
      ch.pending = null;
      throw amqpErrors.preconditionFailed(
        `message size ${bodySize} is larger than configured max size ${max}`,
      );
    }
    const blobs = ch.connection.host.blobs;
    if (blobs !== null && bodySize >= ch.connection.host.config.largeMessageThreshold) {
      // A large body goes to disk frame by frame as it arrives: never whole in memory.
      p.header = Buffer.from(payload);
      p.writer = storing(ch, () => blobs.create(bodySize));
      p.received = 0;
      return;
    }
    if (bodySize === 0) {
      p.header = Buffer.from(payload);
      ch.pending = null;
      completePublish(
        ch,
        p.method,
        new Message(p.method.exchange, p.method.routingKey, p.header, EMPTY),
      );
      return;
    }
    // Header and body share one allocation: one buffer per message, copied into once.
    const both = Buffer.allocUnsafe(payload.length + bodySize);
    payload.copy(both, 0);
    p.header = both.subarray(0, payload.length);
    p.body = both.subarray(payload.length);
    p.received = 0;
    return;
  }
  if (type === FrameType.Body) {
    if (p !== null && p.writer !== null && p.header !== null) {
      const writer = p.writer;
      if (p.received + payload.length > writer.size) {
        throw new AmqpError(
          ReplyCode.FrameError,
          `content body exceeds the announced size of ${writer.size} octets`,
        );
      }
      storing(ch, () => writer.write(payload));
      p.received += payload.length;
      if (p.received === writer.size) {
        ch.pending = null;
        const blob = writer.finish();
        completePublish(
          ch,
          p.method,
          new Message(p.method.exchange, p.method.routingKey, p.header, EMPTY, blob),
        );
      }
      return;
    }
    if (p === null || p.body === null || p.header === null) {
      throw new AmqpError(ReplyCode.UnexpectedFrame, 'content body without a content header', {
        closesConnection: true,
      });
    }
    const body = p.body;
    if (p.received + payload.length > body.length) {
      throw new AmqpError(
        ReplyCode.FrameError,
        `content body exceeds the announced size of ${body.length} octets`,
      );
    }
    payload.copy(body, p.received);
    p.received += payload.length;
    if (p.received === body.length) {
      ch.pending = null;
      completePublish(
        ch,
        p.method,
        new Message(p.method.exchange, p.method.routingKey, p.header, body),
      );
    }
    return;
  }
  throw new AmqpError(ReplyCode.FrameError, `unexpected frame type ${type}`);
}

/** A blob write failed (disk full): the publish fails on this channel, the broker carries on. */
function storing<T>(ch: Channel, write: () => T): T {
  try {
    return write();
  } catch (err) {
    ch.pending?.writer?.abort();
    ch.pending = null;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') ch.connection.host.diskFull?.(code);
    throw amqpErrors.internalError(
      `cannot store the message body: ${code ?? (err as Error).message}`,
    );
  }
}
