import { Method, amqpErrors } from '../../protocol/index.js';
import type { AnyMethod } from '../../protocol/index.js';
import type { Channel } from '../channel.js';
import { ChannelState } from '../channel.js';
import { RouteOutcome, routeAndEnqueue } from './basic.js';
import { unimplemented } from './dispatch.js';

/**
 * Transactions: on a tx channel, publishes and acks/nacks/rejects are held until tx.commit,
 * which applies them in order; tx.rollback drops them.
 */
export function handleTx(ch: Channel, m: AnyMethod): void {
  const conn = ch.connection;
  switch (m.id) {
    case Method.TxSelect:
      if (ch.confirmMode) {
        throw amqpErrors.preconditionFailed('cannot switch from confirm to tx mode');
      }
      ch.txMode = true;
      conn.sendMethod(ch.id, { id: Method.TxSelectOk });
      return;
    case Method.TxCommit: {
      if (!ch.txMode) throw amqpErrors.preconditionFailed('channel is not transactional');
      const ops = ch.txOps;
      ch.txOps = [];
      let stored = false;
      for (const op of ops) {
        if (op.kind === 'publish') {
          stored =
            routeAndEnqueue(ch, op.method, op.message) === RouteOutcome.NeedsCommit || stored;
        } else if (op.kind === 'ack') ch.ack(op.tag, op.multiple);
        else ch.reject(op.tag, op.multiple, op.requeue);
      }
      const commit = conn.host.commit;
      if (stored && commit !== null) {
        // commit-ok means durable: persistent messages in durable queues are synced first.
        commit.afterNextCommit((err) => {
          if (ch.state !== ChannelState.Open) return;
          if (err !== null) {
            conn.channelError(ch, amqpErrors.internalError(`tx.commit failed: ${err.message}`));
          } else {
            conn.sendMethod(ch.id, { id: Method.TxCommitOk });
          }
        });
        return;
      }
      conn.sendMethod(ch.id, { id: Method.TxCommitOk });
      return;
    }
    case Method.TxRollback:
      if (!ch.txMode) throw amqpErrors.preconditionFailed('channel is not transactional');
      ch.dropTxOps();
      conn.sendMethod(ch.id, { id: Method.TxRollbackOk });
      return;
    default:
      unimplemented(m);
  }
}
