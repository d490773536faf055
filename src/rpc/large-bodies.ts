import type { FieldTable } from '../client/index.js';

/**
 * Carries request and reply bodies too large for one message: above `threshold` bytes the body
 * is sent out of band and the message carries a reference to it instead (header `x-rpc-transfer`,
 * empty body). `transferCarrier()` implements it with warren/transfer's pull-based chunked
 * transfers; anything with these three members can stand in.
 */
export interface BodyCarrier {
  readonly threshold: number;
  /** Make `body` available to the receiver; resolves with the reference to put in the header. */
  send(body: Buffer): Promise<FieldTable>;
  /** Fetch the body a reference stands for. */
  receive(ref: FieldTable, signal?: AbortSignal): Promise<Buffer>;
}
