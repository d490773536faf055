import { AmqpError, ClassId, ReplyCode, methodName } from '../../protocol/index.js';
import type { AnyMethod } from '../../protocol/index.js';
import type { Channel } from '../channel.js';
import { handleBasic } from './basic.js';
import { handleChannel } from './channel.js';
import { handleConfirm } from './confirm.js';
import { handleExchange } from './exchange.js';
import { handleQueue } from './queue.js';
import { handleTx } from './tx.js';

/** Route a method on an open channel to the handler of its class. */
export function dispatchChannelMethod(ch: Channel, m: AnyMethod): void {
  switch (m.id >>> 16) {
    case ClassId.Basic:
      return handleBasic(ch, m);
    case ClassId.Queue:
      return handleQueue(ch, m);
    case ClassId.Exchange:
      return handleExchange(ch, m);
    case ClassId.Channel:
      return handleChannel(ch, m);
    case ClassId.Confirm:
      return handleConfirm(ch, m);
    case ClassId.Tx:
      return handleTx(ch, m);
    case ClassId.Access:
      // access.request is obsolete; RabbitMQ grants a dummy ticket and so do we.
      if (m.id === 0x001e000a) {
        ch.connection.sendMethod(ch.id, { id: 0x001e000b, ticket: 1 });
        return;
      }
      return unimplemented(m);
    default:
      return unimplemented(m);
  }
}

/** A method the client may not send (a server-to-client method, or one on the wrong channel). */
export function unimplemented(m: AnyMethod): never {
  throw new AmqpError(ReplyCode.CommandInvalid, `unimplemented method ${methodName(m.id)}`, {
    classId: m.id >>> 16,
    methodId: m.id & 0xffff,
  });
}
