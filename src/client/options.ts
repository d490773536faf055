import type { ConnectionOptions as NodeTlsOptions } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { FieldTable } from '../protocol/index.js';
import { invalidArgument } from './errors.js';
import { parseAmqpUrl } from './url.js';

/** TLS settings: Node's `tls.connect` options plus file paths read when connecting. */
export interface TlsOptions extends NodeTlsOptions {
  /** PEM file with the CA certificates to trust (the URL's `cacertfile`). */
  caFile?: string;
  /** PEM file with the client certificate (the URL's `certfile`). */
  certFile?: string;
  /** PEM file with the client's private key (the URL's `keyfile`). */
  keyFile?: string;
}

/** How the connection comes back after it drops. Delays grow from `initialDelay` to `maxDelay`. */
export interface ReconnectOptions {
  /** Milliseconds before the first attempt (default 100). Each delay is jittered to 50-100%. */
  initialDelay?: number;
  /** Largest delay between attempts in milliseconds (default 5000). */
  maxDelay?: number;
  /** Factor by which the delay grows after each failed attempt (default 2). */
  multiplier?: number;
  /** Failed attempts in a row after which the connection closes for good (default unlimited). */
  maxAttempts?: number;
}

/**
 * What to do with publishes the broker had not confirmed when the connection dropped:
 * `retry` publishes them again after reconnecting (at-least-once: a consumer may see a message
 * twice), `fail` rejects their promises with WARREN_ERR_CONNECTION_LOST.
 */
export type UnconfirmedPolicy = 'retry' | 'fail';

export interface ConnectOptions {
  /** An amqp:// or amqps:// URL; the other options override what it says. */
  url?: string;
  hostname?: string;
  port?: number;
  username?: string;
  password?: string;
  vhost?: string;
  /** SASL mechanism (default PLAIN). */
  authMechanism?: 'PLAIN' | 'AMQPLAIN';
  /** Heartbeat interval in seconds; 0 disables. Default: what the broker proposes. */
  heartbeat?: number;
  /** Largest frame in bytes; 0 or absent: what the broker proposes. */
  frameMax?: number;
  /** Highest channel number; 0 or absent: what the broker proposes. */
  channelMax?: number;
  /** Use TLS (amqps); an object gives Node's TLS options. */
  tls?: boolean | TlsOptions;
  /** Shown by the broker's management tools (client property connection_name). */
  connectionName?: string;
  /** Milliseconds allowed to open the socket and finish the handshake (default 30000). */
  connectTimeout?: number;
  /** Extra client properties sent in connection.start-ok. */
  clientProperties?: FieldTable;
  /** Reconnect after the connection drops (default true); false closes it for good instead. */
  reconnect?: boolean | ReconnectOptions;
  /** Default for channels in confirm mode (default 'retry'). */
  unconfirmed?: UnconfirmedPolicy;
  /** Re-declare exchanges, queues and bindings declared through this connection after a reconnect (default true). */
  recoverTopology?: boolean;
  /** Aborts the initial connection attempt. */
  signal?: AbortSignal;
  /**
   * Open the byte stream yourself (e.g. through a proxy); replaces hostname, port and tls.
   * Called again for every reconnection.
   */
  transport?: () => Duplex | Promise<Duplex>;
}

export interface ResolvedReconnect {
  enabled: boolean;
  initialDelay: number;
  maxDelay: number;
  multiplier: number;
  maxAttempts: number;
}

export interface ResolvedOptions {
  hostname: string;
  port: number;
  username: string;
  password: string;
  vhost: string;
  authMechanism: 'PLAIN' | 'AMQPLAIN';
  heartbeat: number | undefined;
  frameMax: number;
  channelMax: number;
  tls: TlsOptions | null;
  connectionName: string | undefined;
  connectTimeout: number;
  clientProperties: FieldTable;
  reconnect: ResolvedReconnect;
  unconfirmed: UnconfirmedPolicy;
  recoverTopology: boolean;
  signal: AbortSignal | undefined;
  transport: (() => Duplex | Promise<Duplex>) | undefined;
  /** Where the connection goes, for messages (never includes the password). */
  target: string;
}

/** Merge a URL and options into complete settings; explicit options win over the URL. */
export function resolveOptions(options: ConnectOptions): ResolvedOptions {
  const fromUrl = options.url !== undefined ? parseAmqpUrl(options.url) : {};
  const o: ConnectOptions = { ...fromUrl, ...stripUndefined(options) };
  const tlsOpt = o.tls;
  const tls = tlsOpt === undefined || tlsOpt === false ? null : tlsOpt === true ? {} : tlsOpt;
  const hostname = o.hostname ?? 'localhost';
  const port = o.port ?? (tls !== null ? 5671 : 5672);
  const vhost = o.vhost ?? '/';
  const r = o.reconnect;
  const rc: ReconnectOptions = typeof r === 'object' ? r : {};
  const resolved: ResolvedOptions = {
    hostname,
    port,
    username: o.username ?? 'guest',
    password: o.password ?? 'guest',
    vhost,
    authMechanism: o.authMechanism ?? 'PLAIN',
    heartbeat: o.heartbeat,
    frameMax: o.frameMax ?? 0,
    channelMax: o.channelMax ?? 0,
    tls,
    connectionName: o.connectionName,
    connectTimeout: o.connectTimeout ?? 30_000,
    clientProperties: o.clientProperties ?? {},
    reconnect: {
      enabled: r !== false,
      initialDelay: rc.initialDelay ?? 100,
      maxDelay: rc.maxDelay ?? 5000,
      multiplier: rc.multiplier ?? 2,
      maxAttempts: rc.maxAttempts ?? Infinity,
    },
    unconfirmed: o.unconfirmed ?? 'retry',
    recoverTopology: o.recoverTopology ?? true,
    signal: o.signal,
    transport: o.transport,
    target:
      o.transport !== undefined
        ? `a custom transport (vhost '${vhost}')`
        : `${tls !== null ? 'amqps' : 'amqp'}://${hostname.includes(':') ? `[${hostname}]` : hostname}:${port} (vhost '${vhost}')`,
  };
  check('port', resolved.port, 0, 65535);
  if (resolved.heartbeat !== undefined) check('heartbeat', resolved.heartbeat, 0, 65535);
  check('frameMax', resolved.frameMax, 0, 0xffff_ffff);
  check('channelMax', resolved.channelMax, 0, 65535);
  check('connectTimeout', resolved.connectTimeout, 0, 0x7fff_ffff);
  if (resolved.frameMax !== 0 && resolved.frameMax < 4096) {
    throw invalidArgument(
      `frameMax must be 0 (the broker's choice) or at least 4096, got ${resolved.frameMax}`,
    );
  }
  const rr = resolved.reconnect;
  if (!(
    rr.initialDelay >= 0 &&
    rr.maxDelay >= rr.initialDelay &&
    rr.multiplier >= 1 &&
    rr.maxAttempts >= 1
  )) {
    throw invalidArgument(
      'reconnect needs initialDelay >= 0, maxDelay >= initialDelay, multiplier >= 1 and maxAttempts >= 1',
    );
  }
  if (resolved.unconfirmed !== 'retry' && resolved.unconfirmed !== 'fail') {
    throw invalidArgument(
      `unconfirmed must be 'retry' or 'fail', got '${String(resolved.unconfirmed)}'`,
    );
  }
  return resolved;
}

function check(name: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw invalidArgument(`${name} must be an integer from ${min} to ${max}, got ${v}`);
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k of Object.keys(o) as (keyof T)[]) {
    if (o[k] !== undefined) out[k] = o[k];
  }
  return out;
}
