import type { FieldTable } from '../client/index.js';
import type { MessageKind } from './protocol.js';

/** @internal what a transfer needs from its endpoint. */
export interface TransferHost {
  /** The endpoint's queue: where peers send to us. */
  readonly queue: string;
  /**
   * Publish a control message (mandatory, confirmed) to a peer's queue. Rejects with
   * WARREN_ERR_UNROUTABLE when the queue no longer exists.
   */
  control(to: string, kind: MessageKind, id: string, headers: FieldTable): Promise<void>;
  /** Publish a chunk; resolves once written (the connection's backpressure). */
  chunk(to: string, id: string, headers: FieldTable, body: Buffer): Promise<void>;
  /** The transfer ended: forget it. */
  release(id: string, side: 'incoming' | 'outgoing'): void;
  /** A transfer with these timing needs is active: make sure the endpoint's timer runs. */
  watch(interval: number): void;
}

/** The interval a transfer's timer checks need: a fraction of its shortest time limit. */
export function tickFor(...limits: number[]): number {
  return Math.max(10, Math.min(1000, Math.floor(Math.min(...limits) / 4)));
}
