import type { Connection } from '../client/index.js';
import { TransferEndpoint } from './endpoint.js';
import type { SendOptions, TransferEndpointOptions } from './endpoint.js';
import { TransferError, TransferErrorCode } from './errors.js';
import type { IncomingTransfer } from './incoming-transfer.js';
import type { AcceptOptions } from './offer-listener.js';
import type { TransferProgress, TransferSummary } from './progress.js';
import type { TransferSource } from './sources.js';

const shared = new WeakMap<Connection, Promise<TransferEndpoint>>();

/**
 * The connection's shared transfer endpoint, opened on first use (with `options`; later calls
 * get the same endpoint whatever they pass) and gone when it or the connection closes.
 */
export function transferEndpoint(
  conn: Connection,
  options?: TransferEndpointOptions,
): Promise<TransferEndpoint> {
  const existing = shared.get(conn);
  if (existing !== undefined) return existing;
  const p = TransferEndpoint.open(conn, options);
  shared.set(conn, p);
  p.then(
    (ep) => ep.once('close', () => forget(conn, p)),
    () => forget(conn, p),
  );
  return p;
}

function forget(conn: Connection, p: Promise<TransferEndpoint>): void {
  if (shared.get(conn) === p) shared.delete(conn);
}

export interface SendTransferOptions extends SendOptions {
  /** Called with progress reports (about ten a second, and one at the end). */
  onProgress?: ((progress: TransferProgress) => void) | undefined;
}

/**
 * Send `source` to whoever receives from `queue`, through the connection's shared endpoint;
 * resolves when the receiver has verified all of it.
 */
export async function sendTransfer(
  conn: Connection,
  queue: string,
  source: TransferSource,
  options: SendTransferOptions = {},
): Promise<TransferSummary> {
  const ep = await transferEndpoint(conn);
  const t = await ep.send(queue, source, options);
  if (options.onProgress !== undefined) t.on('progress', options.onProgress);
  return t.done;
}

export interface ReceiveTransferOptions extends AcceptOptions {
  /** Milliseconds to wait for an offer (default: no limit); then WARREN_ERR_TRANSFER_TIMEOUT. */
  wait?: number | undefined;
}

/**
 * Take the next offer from `queue` through the connection's shared endpoint. The transfer starts
 * pulling when it is read: `await (await receiveTransfer(conn, 'files')).toFile('out.bin')`.
 */
export async function receiveTransfer(
  conn: Connection,
  queue: string,
  options: ReceiveTransferOptions = {},
): Promise<IncomingTransfer> {
  const ep = await transferEndpoint(conn);
  const listener = await ep.accept(queue, { ...options, prefetch: 1 });
  const waitErr =
    options.wait !== undefined
      ? new TransferError(
          TransferErrorCode.Timeout,
          '',
          `no transfer was offered on queue '${queue}' within ${options.wait} ms`,
        )
      : null;
  let timer: NodeJS.Timeout | null = null;
  let failed: Error | null = null;
  const stop = (err: Error): void => {
    failed ??= err;
    void listener.close();
  };
  if (waitErr !== null) timer = setTimeout(() => stop(waitErr), options.wait);
  const signal = options.signal;
  const onAbort = (): void =>
    stop(
      new TransferError(
        TransferErrorCode.Aborted,
        '',
        `waiting for a transfer on queue '${queue}' was aborted`,
      ),
    );
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted === true) onAbort();
  try {
    const r = await listener.next();
    if (r.done === true) {
      throw (
        failed ??
        new TransferError(
          TransferErrorCode.Closed,
          '',
          `stopped listening on queue '${queue}' before a transfer was offered (was the queue deleted?)`,
        )
      );
    }
    return r.value;
  } finally {
    if (timer !== null) clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    await listener.close();
  }
}
