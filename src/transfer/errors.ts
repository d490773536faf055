/** Stable codes of the errors a transfer can end with. */
export const TransferErrorCode = {
  /** The other side aborted the transfer (its reason is in the message). */
  Aborted: 'WARREN_ERR_TRANSFER_ABORTED',
  /** The peer was silent for longer than the transfer's timeout, or no receiver came in time. */
  Timeout: 'WARREN_ERR_TRANSFER_TIMEOUT',
  /** The peer's queue does not exist any more: it closed or its process is gone. */
  PeerGone: 'WARREN_ERR_TRANSFER_PEER_GONE',
  /** A chunk failed its CRC-32 too many times, or the payload's SHA-256 did not match. */
  Checksum: 'WARREN_ERR_TRANSFER_CHECKSUM',
  /** The source could not be read, or changed while it was being sent. */
  Source: 'WARREN_ERR_TRANSFER_SOURCE',
  /** The destination (stream, file) failed while the payload was being written to it. */
  Sink: 'WARREN_ERR_TRANSFER_SINK',
  /** A receiver asked for data a stream source no longer holds (a stream cannot be re-read). */
  CannotRewind: 'WARREN_ERR_TRANSFER_CANNOT_REWIND',
  /** The endpoint or its connection was closed while the transfer was in progress. */
  Closed: 'WARREN_ERR_TRANSFER_CLOSED',
  /** A message broke the transfer protocol (bad header, unknown version, chunk out of range). */
  Protocol: 'WARREN_ERR_TRANSFER_PROTOCOL',
  /** A bad option or argument. */
  InvalidArgument: 'WARREN_ERR_TRANSFER_INVALID_ARGUMENT',
} as const;
export type TransferErrorCode = (typeof TransferErrorCode)[keyof typeof TransferErrorCode];

const CODES = new Set<string>(Object.values(TransferErrorCode));

/** Why a transfer failed: `code` is stable, the message says what happened and what to do. */
export class TransferError extends Error {
  readonly code: TransferErrorCode;
  /** The transfer it is about ('' when it is about no particular transfer). */
  readonly transferId: string;

  constructor(
    code: TransferErrorCode,
    transferId: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TransferError';
    this.code = code;
    this.transferId = transferId;
  }
}

/** A code received from a peer, if it is one we know; else Aborted. */
export function codeFromWire(code: unknown): TransferErrorCode {
  return typeof code === 'string' && CODES.has(code)
    ? (code as TransferErrorCode)
    : TransferErrorCode.Aborted;
}

export function invalidTransferArgument(message: string): TransferError {
  return new TransferError(TransferErrorCode.InvalidArgument, '', message);
}
