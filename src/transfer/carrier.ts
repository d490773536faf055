import type { Connection, FieldTable } from '../client/index.js';
import { offerFromTable, offerToTable } from './protocol.js';
import { transferEndpoint } from './transfers.js';

export interface TransferCarrierOptions {
  /** Bodies above this many bytes go by transfer (default 1 MiB). */
  threshold?: number | undefined;
  /** How long (ms) a body waits for the peer to start pulling it (default 60 s). */
  acceptTimeout?: number | undefined;
  /** Silence (ms) after which a transfer in progress fails (default 60 s). */
  timeout?: number | undefined;
}

/**
 * Large bodies for a request/reply layer (what RPC uses for arguments and results): `send` makes
 * a body available to whoever receives the reference it resolves with (a field table, to put in
 * a header of the message that would have carried the body), and `receive` pulls the body a
 * reference stands for. Both use the connection's shared transfer endpoint.
 */
export interface TransferCarrier {
  readonly threshold: number;
  /** Offer `body`; the reference is the offer as a field table. Nothing is sent until pulled. */
  send(body: Buffer): Promise<FieldTable>;
  /** Pull the body `ref` stands for; `signal` aborts the transfer (both sides are told). */
  receive(ref: FieldTable, signal?: AbortSignal): Promise<Buffer>;
}

export function transferCarrier(
  conn: Connection,
  options: TransferCarrierOptions = {},
): TransferCarrier {
  const threshold = options.threshold ?? 1024 * 1024;
  const acceptTimeout = options.acceptTimeout ?? 60_000;
  const timeout = options.timeout;
  return {
    threshold,
    async send(body) {
      const ep = await transferEndpoint(conn);
      const out = await ep.offer(body, { acceptTimeout, timeout });
      return offerToTable(out.offer);
    },
    async receive(ref, signal) {
      const ep = await transferEndpoint(conn);
      return ep.receive(offerFromTable(ref), { signal, timeout }).buffer();
    },
  };
}
