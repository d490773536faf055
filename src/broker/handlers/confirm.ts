import { Method, amqpErrors } from '../../protocol/index.js';
import type { AnyMethod } from '../../protocol/index.js';
import type { Channel } from '../channel.js';
import { unimplemented } from './dispatch.js';

/** confirm.select: from now on every publish on the channel is acked (or nacked). */
export function handleConfirm(ch: Channel, m: AnyMethod): void {
  if (m.id !== Method.ConfirmSelect) unimplemented(m);
  if (ch.txMode) {
    throw amqpErrors.preconditionFailed('cannot switch from tx to confirm mode');
  }
  ch.confirmMode = true;
  if (!m.nowait) ch.connection.sendMethod(ch.id, { id: Method.ConfirmSelectOk });
}
