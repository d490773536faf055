import { Method } from '../../protocol/index.js';
import type { AnyMethod } from '../../protocol/index.js';
import type { Channel } from '../channel.js';
import { unimplemented } from './dispatch.js';

/** channel.flow and channel.close (channel.open is handled by the connection). */
export function handleChannel(ch: Channel, m: AnyMethod): void {
  const conn = ch.connection;
  switch (m.id) {
    case Method.ChannelFlow: {
      // spec: active=false asks the broker to stop sending content; it resumes on active=true.
      ch.flowActive = m.active;
      conn.sendMethod(ch.id, { id: Method.ChannelFlowOk, active: m.active });
      if (m.active) for (const c of ch.consumers.values()) c.queue.scheduleDrain();
      return;
    }
    case Method.ChannelClose:
      ch.cleanup();
      conn.channels.delete(ch.id);
      conn.sendMethod(ch.id, { id: Method.ChannelCloseOk });
      return;
    case Method.ChannelCloseOk:
      // Not expected while open; harmless.
      return;
    case Method.ChannelFlowOk:
      return;
    default:
      unimplemented(m);
  }
}
