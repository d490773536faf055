/**
 * The transfer protocol's vocabulary: message kinds (the AMQP `type` property), header names,
 * limits, and the offer (transfer metadata) as a field table. docs/transfer-protocol.md is the
 * description for other implementations; this file is what Warren sends.
 */
import type { FieldTable, FieldValue } from '../client/index.js';
import { TransferError, TransferErrorCode } from './errors.js';

export const PROTOCOL_VERSION = 1;

/** The seed's chunk size. */
export const DEFAULT_CHUNK_SIZE = 64 * 1024;
export const MAX_CHUNK_SIZE = 64 * 1024 * 1024;
/** Chunks a receiver keeps requested ahead of what its application consumed. */
export const DEFAULT_WINDOW = 32;
/** The most chunks a sender lets one receiver have in flight (a stream source buffers this many). */
export const DEFAULT_SENDER_WINDOW = 128;
export const MAX_WINDOW = 4096;
/** A peer silent this long (ms) while it owes us something fails the transfer. */
export const DEFAULT_TIMEOUT = 60_000;
/** A chunk requested this long ago (ms) and not received is requested again. */
export const DEFAULT_RETRY_INTERVAL = 5_000;
/** How long (ms) an offer waits for a receiver to start pulling. */
export const DEFAULT_ACCEPT_TIMEOUT = 5 * 60_000;
/** A corrupt chunk is requested again at most this many times. */
export const DEFAULT_MAX_RETRIES = 5;
/** x-expires of an endpoint's queue: it outlives a reconnect, and not a dead process by long. */
export const DEFAULT_QUEUE_EXPIRES = 5 * 60_000;

/** Message kinds, carried in the AMQP `type` property. */
export const MessageKind = {
  Offer: 'warren.transfer.offer',
  Request: 'warren.transfer.request',
  Chunk: 'warren.transfer.chunk',
  Done: 'warren.transfer.done',
  Abort: 'warren.transfer.abort',
  Ping: 'warren.transfer.ping',
} as const;
export type MessageKind = (typeof MessageKind)[keyof typeof MessageKind];

export const Header = {
  Version: 'x-transfer-version',
  Id: 'x-transfer-id',
  Sender: 'x-transfer-sender',
  Size: 'x-transfer-size',
  ChunkSize: 'x-transfer-chunk-size',
  Window: 'x-transfer-window',
  Timeout: 'x-transfer-timeout',
  Sha256: 'x-transfer-sha256',
  ContentType: 'x-transfer-content-type',
  Name: 'x-transfer-name',
  Meta: 'x-transfer-meta',
  Offset: 'x-transfer-offset',
  Count: 'x-transfer-count',
  Verified: 'x-transfer-verified',
  Crc32: 'x-transfer-crc32',
  Last: 'x-transfer-last',
  Code: 'x-transfer-code',
  Reason: 'x-transfer-reason',
  Resume: 'x-transfer-resume',
} as const;

/** Values applications may attach to an offer (names, tags, sizes); sent as a field table. */
export type TransferMeta = Record<string, string | number | boolean>;

/**
 * The transfer metadata of the seed: everything a receiver needs to pull a payload. A plain,
 * JSON-safe object, so it can also travel inside another message (an RPC request or reply).
 */
export interface TransferOffer {
  /** Protocol version (1). */
  readonly version: number;
  /** Unique id of the transfer (random, 128 bits, base64url). */
  readonly id: string;
  /** The sender's queue: requests, done and abort go there. */
  readonly sender: string;
  /** Total bytes, or -1 when the sender does not know yet (a stream). */
  readonly size: number;
  /** Bytes per chunk; chunk n starts at n * chunkSize. */
  readonly chunkSize: number;
  /** Most chunks the sender lets a receiver have requested beyond what it verified. */
  readonly window: number;
  /** The sender gives up after this many ms without a message from the receiver. */
  readonly timeout: number;
  /** SHA-256 of the whole payload (hex), when the sender knows it up front. */
  readonly sha256?: string | undefined;
  /** MIME type of the payload, if the sender said. */
  readonly contentType?: string | undefined;
  /** A file name, if the payload came from a file or the sender named it. */
  readonly name?: string | undefined;
  /** Application metadata. */
  readonly meta?: TransferMeta | undefined;
}

/** The offer as a field table: the headers of an offer message, or a value nested anywhere. */
export function offerToTable(o: TransferOffer): FieldTable {
  const t: FieldTable = {
    [Header.Version]: o.version,
    [Header.Id]: o.id,
    [Header.Sender]: o.sender,
    [Header.Size]: o.size,
    [Header.ChunkSize]: o.chunkSize,
    [Header.Window]: o.window,
    [Header.Timeout]: o.timeout,
  };
  if (o.sha256 !== undefined) t[Header.Sha256] = o.sha256;
  if (o.contentType !== undefined) t[Header.ContentType] = o.contentType;
  if (o.name !== undefined) t[Header.Name] = o.name;
  if (o.meta !== undefined) t[Header.Meta] = { ...o.meta };
  return t;
}

/** Read and check an offer from a field table; a TransferError (Protocol) says what is wrong. */
export function offerFromTable(t: FieldTable | undefined): TransferOffer {
  if (t === undefined) throw protocolError('', 'the offer has no headers');
  const id = stringHeader(t, Header.Id, '');
  if (id === undefined || id === '') throw protocolError('', `the offer has no ${Header.Id}`);
  const version = intHeader(t, Header.Version, id, 1, 0x7fff_ffff);
  if (version !== PROTOCOL_VERSION) {
    throw protocolError(
      id,
      `the offer uses transfer protocol version ${version}; this endpoint speaks version ${PROTOCOL_VERSION}`,
    );
  }
  const sender = stringHeader(t, Header.Sender, id);
  if (sender === undefined || sender === '') {
    throw protocolError(id, `the offer has no ${Header.Sender}`);
  }
  const size = intHeader(t, Header.Size, id, -1, Number.MAX_SAFE_INTEGER);
  const chunkSize = intHeader(t, Header.ChunkSize, id, 1, MAX_CHUNK_SIZE);
  const window = intHeader(t, Header.Window, id, 1, MAX_WINDOW);
  const timeout = intHeader(t, Header.Timeout, id, 1, 0x7fff_ffff);
  const sha256 = stringHeader(t, Header.Sha256, id);
  if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256)) {
    throw protocolError(id, `${Header.Sha256} must be 64 lowercase hex digits`);
  }
  const meta = t[Header.Meta];
  let m: TransferMeta | undefined;
  if (meta !== undefined && meta !== null) {
    if (!isTable(meta)) throw protocolError(id, `${Header.Meta} must be a field table`);
    m = {};
    for (const [k, v] of Object.entries(meta)) {
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') m[k] = v;
      else if (typeof v === 'bigint') m[k] = Number(v);
    }
  }
  return {
    version,
    id,
    sender,
    size,
    chunkSize,
    window,
    timeout,
    sha256,
    contentType: stringHeader(t, Header.ContentType, id),
    name: stringHeader(t, Header.Name, id),
    meta: m,
  };
}

/** An offer from its JSON form (e.g. parsed from an RPC body); checked like one from the wire. */
export function offerFromJson(value: unknown): TransferOffer {
  if (value === null || typeof value !== 'object') {
    throw protocolError('', 'a transfer offer must be an object');
  }
  const o = value as Record<string, unknown>;
  const t: FieldTable = {};
  const keys: [keyof TransferOffer, string][] = [
    ['version', Header.Version],
    ['id', Header.Id],
    ['sender', Header.Sender],
    ['size', Header.Size],
    ['chunkSize', Header.ChunkSize],
    ['window', Header.Window],
    ['timeout', Header.Timeout],
    ['sha256', Header.Sha256],
    ['contentType', Header.ContentType],
    ['name', Header.Name],
    ['meta', Header.Meta],
  ];
  for (const [k, h] of keys) if (o[k] !== undefined) t[h] = o[k] as FieldValue;
  return offerFromTable(t);
}

// ------------------------------------------------------------------ header readers

export function isTable(v: unknown): v is FieldTable {
  return (
    v !== null &&
    typeof v === 'object' &&
    !Array.isArray(v) &&
    !Buffer.isBuffer(v) &&
    !(v instanceof Uint8Array) &&
    !(v instanceof Date)
  );
}

/** An integer header within [min, max] (any AMQP integer type; a bigint if exact). */
export function intHeader(
  t: FieldTable,
  name: string,
  id: string,
  min: number,
  max: number,
): number {
  const v = t[name];
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) {
    throw protocolError(
      id,
      v === undefined
        ? `the message has no ${name}`
        : `${name} must be an integer from ${min} to ${max}, got ${describeValue(v)}`,
    );
  }
  return n;
}

/** A string header (longstr may arrive as a Buffer from some clients), or undefined. */
export function stringHeader(t: FieldTable, name: string, id: string): string | undefined {
  const v = t[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  throw protocolError(id, `${name} must be a string`);
}

/** A header value for an error message. */
export function describeValue(v: FieldValue): string {
  if (v === null || v === undefined) return 'nothing';
  if (typeof v === 'object') return Array.isArray(v) ? 'an array' : 'a table or bytes';
  return typeof v === 'string' ? `'${v}'` : String(v);
}

export function protocolError(id: string, text: string): TransferError {
  return new TransferError(
    TransferErrorCode.Protocol,
    id,
    `transfer protocol violation${id !== '' ? ` in transfer ${id}` : ''}: ${text}`,
  );
}

/** The number of chunks of a payload of `size` bytes (a 0-byte payload has one, empty, chunk). */
export function chunkCount(size: number, chunkSize: number): number {
  return size <= 0 ? 1 : Math.ceil(size / chunkSize);
}
