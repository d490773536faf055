import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions as NodeTlsOptions } from 'node:tls';
import { ClientError, ClientErrorCode } from './errors.js';
import type { ResolvedOptions } from './options.js';

/**
 * Open the byte stream for one connection attempt: the custom transport if one was given, else a
 * TCP or TLS socket with Nagle off (request/reply would otherwise stall on delayed ACKs).
 */
export async function openTransport(o: ResolvedOptions, signal: AbortSignal): Promise<Duplex> {
  if (o.transport !== undefined) return o.transport();
  const tls = o.tls;
  return new Promise<Duplex>((resolve, reject) => {
    let socket: Socket;
    const onAbort = (): void => {
      socket.destroy();
      reject(
        new ClientError(ClientErrorCode.ConnectFailed, `connecting to ${o.target} was aborted`),
      );
    };
    const onError = (err: Error): void => {
      signal.removeEventListener('abort', onAbort);
      reject(
        new ClientError(
          ClientErrorCode.ConnectFailed,
          `cannot connect to ${o.target}: ${err.message}; check that the broker runs and the address is right`,
          { cause: err },
        ),
      );
    };
    const onConnect = (): void => {
      signal.removeEventListener('abort', onAbort);
      socket.removeListener('error', onError);
      socket.setNoDelay(true);
      socket.setKeepAlive(true);
      resolve(socket);
    };
    if (tls === null) {
      socket = createConnection({ host: o.hostname, port: o.port, noDelay: true }, onConnect);
    } else {
      const { caFile, certFile, keyFile, ...rest } = tls;
      const opts: NodeTlsOptions = { ...rest, host: o.hostname, port: o.port };
      try {
        if (caFile !== undefined) opts.ca = readFileSync(caFile);
        if (certFile !== undefined) opts.cert = readFileSync(certFile);
        if (keyFile !== undefined) opts.key = readFileSync(keyFile);
      } catch (err) {
        reject(
          new ClientError(
            ClientErrorCode.ConnectFailed,
            `cannot read a TLS file for ${o.target}: ${(err as Error).message}`,
            { cause: err },
          ),
        );
        return;
      }
      // SNI must name a host, never an IP address (RFC 6066).
      if (opts.servername === undefined && !/^[\d.:]+$/.test(o.hostname)) {
        opts.servername = o.hostname;
      }
      socket = tlsConnect(opts, onConnect);
    }
    socket.once('error', onError);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
}
