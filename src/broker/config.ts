import { totalmem } from 'node:os';
import type { Logger, LogLevelName } from './logger.js';

export interface BrokerOptions {
  /** AMQP port; 0 picks a free one; null serves no TCP at all (embedded, in-process only). */
  port?: number | null;
  /** Interface to listen on; default all interfaces. */
  host?: string;
  /** Where durable state lives; null keeps everything in memory (nothing survives a restart). */
  dataDir?: string | null;
  /**
   * Bytes of ready messages kept in memory across all queues; beyond it, new messages live only
   * on disk until consumers catch up (needs a data dir).
   */
  memoryBudget?: number;
  /** Size of a queue's segment files, in bytes. */
  segmentSize?: number;
  /**
   * Message bodies of at least this many bytes are written to disk as their frames arrive and
   * streamed to consumers from there, never held in memory whole (needs a data dir).
   */
  largeMessageThreshold?: number;
  /**
   * Resident memory (bytes) above which publishing connections are blocked until it falls
   * (RabbitMQ's vm_memory_high_watermark); default 40% of the machine's memory.
   */
  memoryHighWatermark?: number;
  /** Free disk (bytes) below which publishing connections are blocked (RabbitMQ's disk_free_limit). */
  diskFreeLimit?: number;
  /** Milliseconds dirty acks and topology may wait for their sync when no publisher waits. */
  idleSyncMs?: number;
  /** Heartbeat interval the broker proposes, in seconds (0 disables). */
  heartbeat?: number;
  /** Largest frame the broker accepts, including header and frame-end (>= 4096). */
  frameMax?: number;
  /** Highest channel number a connection may use (1..65535). */
  channelMax?: number;
  /** Largest message body accepted, in bytes (RabbitMQ's max_message_size). */
  maxMessageSize?: number;
  /** Seconds a client has to complete the handshake. */
  handshakeTimeout?: number;
  /** Create guest/guest with full access to '/' when no users exist. */
  defaultUser?: { name: string; password: string } | false;
  /** Users that may only connect from a loopback address (RabbitMQ's loopback_users). */
  loopbackUsers?: string[];
  /** An amqps listener (AMQP over TLS) beside the plain one; none by default. */
  tls?: TlsOptions | null;
  /**
   * Most client connections at once (RabbitMQ's connection_max): beyond it connection.open is
   * refused with 530 NOT_ALLOWED. Default no limit.
   */
  maxConnections?: number;
  /**
   * Most queues one virtual host may hold (RabbitMQ's per-vhost max-queues limit): beyond it
   * queue.declare is refused with 406 PRECONDITION_FAILED. Default no limit.
   */
  maxQueuesPerVhost?: number;
  logLevel?: LogLevelName;
  logger?: Logger;
}

/** The amqps listener: PEM files by path, as RabbitMQ's ssl_options take them. */
export interface TlsOptions {
  /** amqps port (default 5671, as RabbitMQ); 0 picks a free one. */
  port?: number;
  /** The server's certificate (chain), PEM. */
  cert: string;
  /** The server certificate's private key, PEM. */
  key: string;
  /** CA certificates (PEM) that client certificates are verified against. */
  ca?: string;
  /** Ask clients for a certificate and refuse untrusted ones (RabbitMQ's verify_peer). */
  verifyPeer?: boolean;
  /** With verifyPeer, also refuse clients that send none (RabbitMQ's fail_if_no_peer_cert). */
  failIfNoPeerCert?: boolean;
}

export interface TlsConfig {
  port: number;
  cert: string;
  key: string;
  ca: string | null;
  verifyPeer: boolean;
  failIfNoPeerCert: boolean;
}

export interface BrokerConfig {
  port: number | null;
  host: string | undefined;
  dataDir: string | null;
  memoryBudget: number;
  segmentSize: number;
  largeMessageThreshold: number;
  memoryHighWatermark: number;
  diskFreeLimit: number;
  idleSyncMs: number;
  heartbeat: number;
  frameMax: number;
  channelMax: number;
  maxMessageSize: number;
  handshakeTimeout: number;
  defaultUser: { name: string; password: string } | false;
  loopbackUsers: string[];
  tls: TlsConfig | null;
  maxConnections: number | null;
  maxQueuesPerVhost: number | null;
}

export const DEFAULTS: BrokerConfig = {
  port: 5672,
  host: undefined,
  dataDir: './data',
  memoryBudget: Math.min(128 * 1024 * 1024, Math.floor(totalmem() / 8)),
  segmentSize: 8 * 1024 * 1024,
  largeMessageThreshold: 1024 * 1024,
  memoryHighWatermark: Math.floor(totalmem() * 0.4),
  diskFreeLimit: 50 * 1000 * 1000,
  idleSyncMs: 200,
  heartbeat: 60,
  frameMax: 131072,
  channelMax: 2047,
  maxMessageSize: 128 * 1024 * 1024,
  handshakeTimeout: 10,
  defaultUser: { name: 'guest', password: 'guest' },
  loopbackUsers: ['guest'],
  tls: null,
  maxConnections: null,
  maxQueuesPerVhost: null,
};

export const DEFAULT_TLS_PORT = 5671;

/** A configuration value that cannot work; the message says what to change. */
export class ConfigError extends Error {
  readonly code = 'WARREN_ERR_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function resolveConfig(options: BrokerOptions): BrokerConfig {
  const c: BrokerConfig = {
    port: options.port === undefined ? DEFAULTS.port : options.port,
    host: options.host ?? DEFAULTS.host,
    dataDir: options.dataDir === undefined ? DEFAULTS.dataDir : options.dataDir,
    memoryBudget: options.memoryBudget ?? DEFAULTS.memoryBudget,
    segmentSize: options.segmentSize ?? DEFAULTS.segmentSize,
    largeMessageThreshold: options.largeMessageThreshold ?? DEFAULTS.largeMessageThreshold,
    memoryHighWatermark: options.memoryHighWatermark ?? DEFAULTS.memoryHighWatermark,
    diskFreeLimit: options.diskFreeLimit ?? DEFAULTS.diskFreeLimit,
    idleSyncMs: options.idleSyncMs ?? DEFAULTS.idleSyncMs,
    heartbeat: options.heartbeat ?? DEFAULTS.heartbeat,
    frameMax: options.frameMax ?? DEFAULTS.frameMax,
    channelMax: options.channelMax ?? DEFAULTS.channelMax,
    maxMessageSize: options.maxMessageSize ?? DEFAULTS.maxMessageSize,
    handshakeTimeout: options.handshakeTimeout ?? DEFAULTS.handshakeTimeout,
    defaultUser: options.defaultUser ?? DEFAULTS.defaultUser,
    loopbackUsers: options.loopbackUsers ?? DEFAULTS.loopbackUsers,
    tls: resolveTls(options.tls),
    maxConnections: options.maxConnections ?? DEFAULTS.maxConnections,
    maxQueuesPerVhost: options.maxQueuesPerVhost ?? DEFAULTS.maxQueuesPerVhost,
  };
  if (c.port !== null) checkInt('port', c.port, 0, 65535);
  checkInt('heartbeat', c.heartbeat, 0, 65535);
  checkInt('frameMax', c.frameMax, 4096, 0xffff_ffff);
  checkInt('channelMax', c.channelMax, 1, 65535);
  checkInt('maxMessageSize', c.maxMessageSize, 1, 512 * 1024 * 1024);
  checkInt('handshakeTimeout', c.handshakeTimeout, 1, 3600);
  checkInt('memoryBudget', c.memoryBudget, 0, Number.MAX_SAFE_INTEGER);
  checkInt('segmentSize', c.segmentSize, 64 * 1024, 1024 * 1024 * 1024);
  checkInt('largeMessageThreshold', c.largeMessageThreshold, 1, Number.MAX_SAFE_INTEGER);
  checkInt('memoryHighWatermark', c.memoryHighWatermark, 1, Number.MAX_SAFE_INTEGER);
  checkInt('diskFreeLimit', c.diskFreeLimit, 0, Number.MAX_SAFE_INTEGER);
  checkInt('idleSyncMs', c.idleSyncMs, 1, 60_000);
  if (c.maxConnections !== null) {
    checkInt('maxConnections', c.maxConnections, 0, Number.MAX_SAFE_INTEGER);
  }
  if (c.maxQueuesPerVhost !== null) {
    checkInt('maxQueuesPerVhost', c.maxQueuesPerVhost, 0, Number.MAX_SAFE_INTEGER);
  }
  return c;
}

function resolveTls(tls: TlsOptions | null | undefined): TlsConfig | null {
  if (tls === undefined || tls === null) return null;
  const port = tls.port ?? DEFAULT_TLS_PORT;
  checkInt('tls.port', port, 0, 65535);
  for (const key of ['cert', 'key'] as const) {
    if (typeof tls[key] !== 'string' || tls[key] === '') {
      throw new ConfigError(
        `tls.${key} must be the path of a PEM file (--tls-cert and --tls-key on the command line)`,
      );
    }
  }
  const verifyPeer = tls.verifyPeer ?? false;
  const failIfNoPeerCert = tls.failIfNoPeerCert ?? false;
  if (failIfNoPeerCert && !verifyPeer) {
    throw new ConfigError('tls.failIfNoPeerCert needs tls.verifyPeer: true');
  }
  return {
    port,
    cert: tls.cert,
    key: tls.key,
    ca: tls.ca ?? null,
    verifyPeer,
    failIfNoPeerCert,
  };
}

function checkInt(name: string, v: unknown, min: number, max: number): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(
      `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`,
    );
  }
}
