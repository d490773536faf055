import { randomBytes } from 'node:crypto';
import { Method, amqpErrors } from '../../protocol/index.js';
import type { BasicConsume } from '../../protocol/index.js';
import { ChannelState } from '../channel.js';
import type { Channel } from '../channel.js';
import type { Connection } from '../connection.js';
import type { Message } from '../message.js';
import { generateTag } from './basic.js';

/**
 * Direct reply-to (RabbitMQ's amq.rabbitmq.reply-to): a requester consumes from the pseudo-queue
 * in no-ack mode and publishes with reply_to = amq.rabbitmq.reply-to; the broker rewrites that to
 * an address naming the requester's channel, and replies published to the default exchange with
 * that address as routing key go straight to the channel, with no queue in between.
 */
export const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';
const PREFIX = `${DIRECT_REPLY_TO}.`;

export function isDirectReplyKey(routingKey: string): boolean {
  return routingKey.startsWith(PREFIX);
}

export function directReplyConsume(ch: Channel, m: BasicConsume): void {
  const conn = ch.connection;
  if (!m.noAck) throw amqpErrors.preconditionFailed('reply consumer cannot acknowledge');
  if (ch.replyConsumerTag !== null)
    throw amqpErrors.preconditionFailed('reply consumer already set');
  const tag = m.consumerTag === '' ? generateTag() : m.consumerTag;
  ch.replyConsumerTag = tag;
  ch.replyKey ??= randomBytes(18).toString('base64url');
  conn.host.replyChannels.set(ch.replyKey, ch);
  if (!m.nowait) conn.sendMethod(ch.id, { id: Method.BasicConsumeOk, consumerTag: tag });
}

/** Deliver a reply; false when the requester is gone (the reply is unroutable). */
export function directReplyPublish(conn: Connection, message: Message): boolean {
  const key = message.routingKey.slice(PREFIX.length);
  const target = conn.host.replyChannels.get(key);
  if (target === undefined || target.state !== ChannelState.Open) return false;
  const tag = target.replyConsumerTag;
  if (tag === null) return false;
  target.connection.sendDeliver(
    target.id,
    tag,
    target.nextDeliveryTag(),
    false,
    message.exchange,
    message.routingKey,
    message,
  );
  return true;
}
