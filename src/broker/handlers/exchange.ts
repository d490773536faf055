import { Method } from '../../protocol/index.js';
import type { AnyMethod } from '../../protocol/index.js';
import type { Channel } from '../channel.js';
import { checkPermission } from './access.js';
import { unimplemented } from './dispatch.js';

/** exchange.declare / delete / bind / unbind. */
export function handleExchange(ch: Channel, m: AnyMethod): void {
  const conn = ch.connection;
  const vhost = conn.vhost!;
  switch (m.id) {
    case Method.ExchangeDeclare: {
      if (!m.passive) {
        checkPermission(conn, 'configure', 'exchange', m.exchange);
        const ae = m.arguments['alternate-exchange'];
        if (typeof ae === 'string' && !vhost.exchanges.has(m.exchange)) {
          // A new exchange with an alternate: read on it and write on the alternate.
          checkPermission(conn, 'read', 'exchange', m.exchange);
          checkPermission(conn, 'write', 'exchange', ae);
        }
      }
      vhost.declareExchange(m.exchange, m.type, {
        passive: m.passive,
        durable: m.durable,
        autoDelete: m.autoDelete,
        internal: m.internal,
        arguments: m.arguments,
      });
      if (!m.nowait) conn.sendMethod(ch.id, { id: Method.ExchangeDeclareOk });
      return;
    }
    case Method.ExchangeDelete:
      checkPermission(conn, 'configure', 'exchange', m.exchange);
      vhost.deleteExchange(m.exchange, m.ifUnused);
      if (!m.nowait) conn.sendMethod(ch.id, { id: Method.ExchangeDeleteOk });
      return;
    case Method.ExchangeBind:
      checkPermission(conn, 'write', 'exchange', m.destination);
      checkPermission(conn, 'read', 'exchange', m.source);
      vhost.bindExchange(m.destination, m.source, m.routingKey, m.arguments);
      if (!m.nowait) conn.sendMethod(ch.id, { id: Method.ExchangeBindOk });
      return;
    case Method.ExchangeUnbind:
      checkPermission(conn, 'write', 'exchange', m.destination);
      checkPermission(conn, 'read', 'exchange', m.source);
      vhost.unbindExchange(m.destination, m.source, m.routingKey, m.arguments);
      if (!m.nowait) conn.sendMethod(ch.id, { id: Method.ExchangeUnbindOk });
      return;
    default:
      unimplemented(m);
  }
}
