import type { MessageHandler } from '../consumer.js';
import type { Message } from '../message.js';

/** What a pattern helper's subscriber does with a message; its completion acknowledges it. */
export type Handler = (message: Message) => unknown;

/**
 * Wrap a handler so that the message is acked once it returns (or its promise resolves), unless
 * the handler settled it itself. A failure is left to the consumer's error policy (requeue once,
 * then reject) so that a poison message cannot loop forever.
 */
export function ackingHandler(handler: Handler): MessageHandler {
  return (msg: Message) => {
    const r = handler(msg);
    if (r !== null && typeof r === 'object' && typeof (r as Promise<unknown>).then === 'function') {
      return (r as Promise<unknown>).then(() => {
        if (!msg.settled) msg.ack();
      });
    }
    if (!msg.settled) msg.ack();
    return undefined;
  };
}
