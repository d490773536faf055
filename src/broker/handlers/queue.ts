import { Method, amqpErrors } from '../../protocol/index.js';
import type { AnyMethod } from '../../protocol/index.js';
import type { Channel } from '../channel.js';
import { serverNamedQueue } from '../vhost.js';
import { checkPermission } from './access.js';
import { unimplemented } from './dispatch.js';

/**
 * spec: an empty queue name in bind/unbind/purge/delete/consume/get means the queue last
 * declared on this channel.
 */
export function resolveQueueName(ch: Channel, name: string): string {
  if (name !== '') return name;
  if (ch.lastDeclaredQueue === '') throw amqpErrors.notFound('no previously declared queue');
  return ch.lastDeclaredQueue;
}

/** queue.declare / bind / unbind / purge / delete. */
export function handleQueue(ch: Channel, m: AnyMethod): void {
  const conn = ch.connection;
  const vhost = conn.vhost!;
  switch (m.id) {
    case Method.QueueDeclare: {
      // RabbitMQ names a server-named queue first and checks configure on that name.
      const name = m.queue === '' ? serverNamedQueue() : m.queue;
      if (!m.passive) {
        checkPermission(conn, 'configure', 'queue', name);
        const dlx = m.arguments['x-dead-letter-exchange'];
        if (typeof dlx === 'string' && !vhost.queues.has(name)) {
          // A new queue that dead-letters: read on it and write on its dead-letter exchange.
          checkPermission(conn, 'read', 'queue', name);
          checkPermission(conn, 'write', 'exchange', dlx);
        }
      }
      const { queue, created } = vhost.declareQueue(
        m.queue,
        {
          passive: m.passive,
          durable: m.durable,
          exclusive: m.exclusive,
          autoDelete: m.autoDelete,
          arguments: m.arguments,
        },
        conn,
        name,
      );
      if (created && queue.exclusive) conn.exclusiveQueues.add(queue);
      ch.lastDeclaredQueue = queue.name;
      if (!m.nowait) {
        conn.sendMethod(ch.id, {
          id: Method.QueueDeclareOk,
          queue: queue.name,
          messageCount: queue.messageCount,
          consumerCount: queue.consumerCount,
        });
      }
      return;
    }
    case Method.QueueBind: {
      const name = resolveQueueName(ch, m.queue);
      checkPermission(conn, 'write', 'queue', name);
      checkPermission(conn, 'read', 'exchange', m.exchange);
      // RabbitMQ reports a missing exchange, then a missing queue, then exclusive access.
      const queue = vhost.queues.get(name);
      if (queue !== undefined && m.exchange !== '' && vhost.exchanges.has(m.exchange)) {
        vhost.checkExclusiveAccess(queue, conn);
      }
      vhost.bindQueue(name, m.exchange, m.routingKey, m.arguments);
      if (!m.nowait) conn.sendMethod(ch.id, { id: Method.QueueBindOk });
      return;
    }
    case Method.QueueUnbind: {
      const name = resolveQueueName(ch, m.queue);
      checkPermission(conn, 'write', 'queue', name);
      checkPermission(conn, 'read', 'exchange', m.exchange);
      const queue = vhost.queues.get(name);
      if (queue !== undefined) vhost.checkExclusiveAccess(queue, conn);
      vhost.unbindQueue(name, m.exchange, m.routingKey, m.arguments);
      conn.sendMethod(ch.id, { id: Method.QueueUnbindOk });
      return;
    }
    case Method.QueuePurge: {
      const name = resolveQueueName(ch, m.queue);
      checkPermission(conn, 'read', 'queue', name);
      const queue = vhost.getQueue(name);
      vhost.checkExclusiveAccess(queue, conn);
      const count = queue.purge();
      if (!m.nowait) conn.sendMethod(ch.id, { id: Method.QueuePurgeOk, messageCount: count });
      return;
    }
    case Method.QueueDelete: {
      const name = resolveQueueName(ch, m.queue);
      checkPermission(conn, 'configure', 'queue', name);
      const count = vhost.deleteQueue(name, m.ifUnused, m.ifEmpty, conn);
      if (!m.nowait) conn.sendMethod(ch.id, { id: Method.QueueDeleteOk, messageCount: count });
      return;
    }
    default:
      unimplemented(m);
  }
}
