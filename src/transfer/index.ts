/**
 * warren/transfer: large payloads over AMQP, pulled in chunks by the receiver, with memory
 * bounded by a window on both sides whatever the payload size. Works through Warren and through
 * RabbitMQ (it only uses the client). The wire protocol is in docs/transfer-protocol.md.
 *
 * Simple use, a queue as the mailbox:
 *
 *   await sendTransfer(conn, 'files', { path: 'big.iso' }, { onProgress: (p) => ... });
 *   const t = await receiveTransfer(conn, 'files');  // t.size, t.name, t.meta
 *   await t.toFile('big.iso');                         // or t.stream(), t.buffer(), for await
 *
 * Embedding in other messages (what RPC uses for arguments and results above a threshold):
 *
 *   const ep = await transferEndpoint(conn);           // one per connection, shared
 *   const out = await ep.offer(buffer);                // nothing is sent yet
 *   ...put `out.offer` (a JSON-safe object; offerToTable() for AMQP headers) in your message...
 *   await out.done;                                    // resolves when the peer verified it all
 *
 *   // the peer, having read the offer from the message (offerFromJson / offerFromTable):
 *   const inc = (await transferEndpoint(conn)).receive(offer);
 *   const bytes = await inc.buffer();
 *
 * Or, for a request/reply layer, `transferCarrier(conn, { threshold })` (the shape of rpc's
 * BodyCarrier): `send(body)` resolves with a field table to put in a header instead of the body,
 * `receive(table, signal)` pulls the body. Its offers wait 60 s for the peer to start pulling.
 *
 * An offer nobody pulls fails `done` after `acceptTimeout` (default 5 min) and frees the source;
 * a receiver that stops answering fails it after `timeout` (default 60 s). `transfer.abort()`
 * on either side stops both. Errors are TransferErrors with stable `code`s
 * (WARREN_ERR_TRANSFER_*).
 *
 * Memory: a sender holds one chunk per active transfer plus what the connection has not yet
 * written, and for stream sources up to its window of chunks (128 x 64 KiB by default); a
 * receiver holds at most its window (32 x 64 KiB = 2 MiB by default) per transfer.
 */
export { sendTransfer, receiveTransfer, transferEndpoint } from './transfers.js';
export type { SendTransferOptions, ReceiveTransferOptions } from './transfers.js';
export { transferCarrier } from './carrier.js';
export type { TransferCarrier, TransferCarrierOptions } from './carrier.js';
export { TransferEndpoint } from './endpoint.js';
export type {
  ReceiveOptions,
  SendOptions,
  TransferEndpointEvents,
  TransferEndpointOptions,
} from './endpoint.js';
export { OutgoingTransfer, OutgoingState } from './outgoing-transfer.js';
export type { OutgoingTransferEvents } from './outgoing-transfer.js';
export { IncomingTransfer, IncomingState } from './incoming-transfer.js';
export type { IncomingTransferEvents } from './incoming-transfer.js';
export { OfferListener } from './offer-listener.js';
export type { AcceptOptions } from './offer-listener.js';
export type { RandomAccessSource, TransferSource } from './sources.js';
export type { TransferProgress, TransferSummary } from './progress.js';
export { TransferError, TransferErrorCode } from './errors.js';
export {
  DEFAULT_ACCEPT_TIMEOUT,
  DEFAULT_CHUNK_SIZE,
  DEFAULT_RETRY_INTERVAL,
  DEFAULT_SENDER_WINDOW,
  DEFAULT_TIMEOUT,
  DEFAULT_WINDOW,
  Header as TransferHeader,
  MessageKind as TransferMessageKind,
  PROTOCOL_VERSION as TRANSFER_PROTOCOL_VERSION,
  offerFromJson,
  offerFromTable,
  offerToTable,
} from './protocol.js';
export type { TransferMeta, TransferOffer } from './protocol.js';
