import { randomBytes } from 'node:crypto';
import {
  AmqpError,
  BasicPropertyFlag,
  Method,
  ReplyCode,
  amqpErrors,
} from '../../protocol/index.js';
import type { AnyMethod, BasicPublish } from '../../protocol/index.js';
import type { Channel } from '../channel.js';
import { Consumer } from '../consumer.js';
import type { Message } from '../message.js';
import { PublishResult } from '../queue.js';
import { parseExpiration } from '../queue-features.js';
import { routingKeysOf } from '../vhost.js';
import { checkPermission } from './access.js';
import { unimplemented } from './dispatch.js';
import { resolveQueueName } from './queue.js';
import {
  DIRECT_REPLY_TO,
  directReplyConsume,
  directReplyPublish,
  isDirectReplyKey,
} from './reply-to.js';

/** basic.*: qos, consume, cancel, publish (its content follows), get, ack/nack/reject, recover. */
export function handleBasic(ch: Channel, m: AnyMethod): void {
  const conn = ch.connection;
  switch (m.id) {
    case Method.BasicPublish:
      conn.hasPublished = true;
      // The content follows in header and body frames; the publish completes in content.ts.
      ch.pending = { method: m, header: null, body: null, writer: null, received: 0 };
      return;
    case Method.BasicAck:
      if (ch.txMode) ch.txOps.push({ kind: 'ack', tag: m.deliveryTag, multiple: m.multiple });
      else ch.ack(m.deliveryTag, m.multiple);
      return;
    case Method.BasicNack:
      if (ch.txMode) {
        ch.txOps.push({
          kind: 'nack',
          tag: m.deliveryTag,
          multiple: m.multiple,
          requeue: m.requeue,
        });
      } else ch.reject(m.deliveryTag, m.multiple, m.requeue);
      return;
    case Method.BasicReject:
      if (ch.txMode) {
        ch.txOps.push({ kind: 'nack', tag: m.deliveryTag, multiple: false, requeue: m.requeue });
      } else ch.reject(m.deliveryTag, false, m.requeue);
      return;
    case Method.BasicQos:
      if (m.prefetchSize !== 0) {
        throw new AmqpError(ReplyCode.NotImplemented, `prefetch_size!=0 (${m.prefetchSize})`);
      }
      if (m.global) ch.channelPrefetch = m.prefetchCount;
      else ch.consumerPrefetch = m.prefetchCount;
      for (const c of ch.consumers.values()) c.queue.scheduleDrain();
      conn.sendMethod(ch.id, { id: Method.BasicQosOk });
      return;
    case Method.BasicConsume:
      consume(ch, m);
      return;
    case Method.BasicCancel: {
      const c = ch.consumers.get(m.consumerTag);
      if (c !== undefined) {
        ch.consumers.delete(m.consumerTag);
        c.cancelled = true;
        c.queue.removeConsumer(c);
      } else if (ch.replyConsumerTag === m.consumerTag) {
        ch.replyConsumerTag = null;
      }
      if (!m.nowait)
        conn.sendMethod(ch.id, { id: Method.BasicCancelOk, consumerTag: m.consumerTag });
      return;
    }
    case Method.BasicGet:
      get(ch, m.queue, m.noAck);
      return;
    case Method.BasicRecover:
    case Method.BasicRecoverAsync:
      // Both requeue forms redeliver every unacknowledged message with the redelivered flag.
      ch.requeueAll();
      if (m.id === Method.BasicRecover) conn.sendMethod(ch.id, { id: Method.BasicRecoverOk });
      return;
    default:
      unimplemented(m);
  }
}

function consume(ch: Channel, m: Extract<AnyMethod, { id: typeof Method.BasicConsume }>): void {
  const conn = ch.connection;
  if (m.queue === DIRECT_REPLY_TO) {
    directReplyConsume(ch, m);
    return;
  }
  const vhost = conn.vhost!;
  const name = resolveQueueName(ch, m.queue);
  checkPermission(conn, 'read', 'queue', name);
  const queue = vhost.getQueue(name);
  vhost.checkExclusiveAccess(queue, conn);
  const tag = m.consumerTag === '' ? generateTag() : m.consumerTag;
  if (ch.consumers.has(tag) || ch.replyConsumerTag === tag) {
    throw new AmqpError(ReplyCode.NotAllowed, `attempt to reuse consumer tag '${tag}'`);
  }
  if (queue.exclusiveConsumer !== null || (m.exclusive && queue.consumerCount > 0)) {
    throw amqpErrors.accessRefused(`queue '${name}' in vhost '${vhost.name}' in exclusive use`);
  }
  const consumer = new Consumer(tag, ch, queue, {
    noAck: m.noAck,
    exclusive: m.exclusive,
    prefetch: ch.consumerPrefetch,
    arguments: m.arguments,
  });
  ch.consumers.set(tag, consumer);
  // consume-ok goes out before the first delivery: the queue drains on a later tick.
  if (!m.nowait) conn.sendMethod(ch.id, { id: Method.BasicConsumeOk, consumerTag: tag });
  queue.addConsumer(consumer);
}

function get(ch: Channel, queueName: string, noAck: boolean): void {
  const conn = ch.connection;
  const vhost = conn.vhost!;
  const name = resolveQueueName(ch, queueName);
  checkPermission(conn, 'read', 'queue', name);
  const queue = vhost.getQueue(name);
  vhost.checkExclusiveAccess(queue, conn);
  const entry = queue.shift(noAck);
  if (entry === undefined) {
    conn.sendMethod(ch.id, { id: Method.BasicGetEmpty, clusterId: '' });
    return;
  }
  const tag = ch.nextDeliveryTag();
  if (!noAck) ch.track(entry);
  const msg = entry.message;
  conn.sendContentMethod(
    ch.id,
    {
      id: Method.BasicGetOk,
      deliveryTag: tag,
      redelivered: entry.redelivered,
      exchange: msg.exchange,
      routingKey: msg.routingKey,
      messageCount: queue.messageCount,
    },
    msg,
  );
  if (noAck) queue.forget(entry);
}

export function generateTag(): string {
  return `amq.ctag-${randomBytes(16).toString('base64url')}`;
}

/**
 * A publish whose content is complete: check it as RabbitMQ does once the whole command has
 * arrived, then route it now or hold it for tx.commit.
 */
export function completePublish(ch: Channel, method: BasicPublish, message: Message): void {
  let heldByTx = false;
  try {
    heldByTx = checkAndRoute(ch, method, message);
  } finally {
    // The publisher's reference to a large body: the queues that took it hold their own now.
    if (!heldByTx) message.blob?.release();
  }
}

/** Returns true when the message is held for tx.commit (which then owns its body). */
function checkAndRoute(ch: Channel, method: BasicPublish, message: Message): boolean {
  const conn = ch.connection;
  if (method.immediate) {
    throw new AmqpError(ReplyCode.NotImplemented, 'immediate=true');
  }
  checkPermission(conn, 'write', 'exchange', method.exchange);
  const ex = conn.vhost!.getExchange(method.exchange);
  if (ex.internal) {
    throw amqpErrors.accessRefused(
      `cannot publish to internal exchange '${ex.name}' in vhost '${ex.vhost}'`,
    );
  }
  if ((message.propertyFlags & BasicPropertyFlag.UserId) !== 0) {
    const userId = message.properties.userId;
    if (userId !== conn.user!.name) {
      throw amqpErrors.preconditionFailed(
        `user_id property set to '${userId}' but authenticated user was '${conn.user!.name}'`,
      );
    }
  }
  const expiration = message.expiration;
  if (expiration !== undefined) {
    const ms = parseExpiration(expiration);
    if (typeof ms === 'string') throw amqpErrors.preconditionFailed(ms);
  }
  if (ch.txMode) {
    ch.txOps.push({ kind: 'publish', method, message });
    return true;
  }
  routeAndEnqueue(ch, method, message);
  return false;
}

/**
 * Ready messages in a consumed queue beyond which its publishers yield an extra turn of the event
 * loop after each read (see Connection.onData): a publisher that outruns the consumers would
 * otherwise grow the backlog until it pages to disk, which slows delivery and grows it faster
 * (RabbitMQ's credit flow plays this part there). Publishers to queues nobody consumes are never
 * slowed.
 */
const FLOW_BACKLOG = 50_000;

/** How a routed publish went, for its confirm or tx.commit-ok. */
export const RouteOutcome = {
  /** Confirm at once. */
  Done: 0,
  /** Written to disk as persistent: confirm after the next commit. */
  NeedsCommit: 1,
  /** A queue refused it (x-overflow reject-publish): nack. */
  Refused: 2,
} as const;
export type RouteOutcome = (typeof RouteOutcome)[keyof typeof RouteOutcome];

/** Route to queues, return it if unroutable and mandatory, and confirm it in confirm mode. */
export function routeAndEnqueue(ch: Channel, method: BasicPublish, message: Message): RouteOutcome {
  const conn = ch.connection;
  if (ch.confirmMode && ch.confirmWaitSince === 0) ch.confirmWaitSince = performance.now();
  const vhost = conn.vhost!;
  const ex = vhost.exchanges.get(method.exchange);
  let routed = false;
  let outcome: RouteOutcome = RouteOutcome.Done;
  if (ex !== undefined) {
    ex.stats.publishIn++;
    if (ex.name === '' && isDirectReplyKey(method.routingKey)) {
      routed = directReplyPublish(conn, message);
    } else {
      if ((message.propertyFlags & BasicPropertyFlag.ReplyTo) !== 0) {
        message = directReplyRewrite(ch, message);
      }
      let extraKeys: string[] | undefined;
      if (message.hasHeaders && mayHaveCcOrBcc(message)) {
        const headers = message.properties.headers;
        if (headers !== undefined && ('CC' in headers || 'BCC' in headers)) {
          extraKeys = [...routingKeysOf(headers.CC), ...routingKeysOf(headers.BCC)];
          // spec (RabbitMQ sender-selected distribution): BCC is removed before anyone sees it.
          if ('BCC' in headers) {
            const props = message.propertiesPreservingTypes();
            const { BCC: _bcc, ...kept } = props.headers ?? {};
            message = message.withProperties({ ...props, headers: kept });
          }
        }
      }
      const out = ch.routed;
      vhost.route(ex, message, method.routingKey, out, extraKeys);
      routed = out.length > 0;
      if (routed) {
        const now = Date.now();
        for (let i = 0; i < out.length; i++) {
          const q = out[i]!;
          const r = q.publish(message, now);
          // Its consumers are falling behind: they get the next turn before this publisher does.
          if (q.messageCount > FLOW_BACKLOG && q.consumers.length > 0) conn.backlogged = true;
          if (r === PublishResult.Rejected) outcome = RouteOutcome.Refused;
          else if (r === PublishResult.Stored && outcome === RouteOutcome.Done) {
            outcome = RouteOutcome.NeedsCommit;
          }
        }
      }
      ex.stats.publishOut += out.length;
      out.length = 0;
    }
  }
  if (!routed && method.mandatory) {
    conn.sendContentMethod(
      ch.id,
      {
        id: Method.BasicReturn,
        replyCode: ReplyCode.NoRoute,
        replyText: 'NO_ROUTE',
        exchange: method.exchange,
        routingKey: method.routingKey,
      },
      message,
    );
  }
  if (ch.confirmMode) ch.publishHandled(++ch.publishSeq, outcome);
  return outcome;
}

/**
 * Whether a content header may carry a CC or BCC header (a cheap byte search that spares
 * decoding the headers table of every message that has one).
 */
function mayHaveCcOrBcc(message: Message): boolean {
  const range = message.headersRange();
  if (range === null) return false;
  const h = message.header.subarray(range[0], range[1]);
  return h.includes(CC_KEY) || h.includes(BCC_KEY);
}
const CC_KEY = Buffer.from('\u0002CC', 'latin1');
const BCC_KEY = Buffer.from('\u0003BCC', 'latin1');

/** reply_to = amq.rabbitmq.reply-to is replaced by this channel's reply address. */
function directReplyRewrite(ch: Channel, message: Message): Message {
  const props = message.properties;
  if (props.replyTo !== DIRECT_REPLY_TO) return message;
  if (ch.replyConsumerTag === null || ch.replyKey === null) {
    throw amqpErrors.preconditionFailed('fast reply consumer does not exist');
  }
  return message.withProperties({ ...props, replyTo: `${DIRECT_REPLY_TO}.${ch.replyKey}` });
}
