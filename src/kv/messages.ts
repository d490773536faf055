/**
 * Messages between the load balancer and the workers, and between workers. They travel as AMQP
 * message bodies, so unlike client frames they need no length header: the first byte is the
 * type, numbered as in the seed's table where the seed has the message (see protocol.ts), then the
 * seed's payload fields, then what Warren adds (versions, deadlines, session barriers).
 * Integers are big-endian; hybrid-clock timestamps, sequence numbers and deadlines are IEEE 754
 * doubles (exact for the whole numbers below 2^53 they hold).
 *
 *   5  STORE_REQUEST      clientId (4), keyLen (2), key, valueLen (2), value, Trailer
 *   7  RETRIEVE_REQUEST   clientId (4), keyLen (2), key, Trailer
 *  22  REMOVE_REQUEST     clientId (4), keyLen (2), key, Trailer                  (Warren's)
 *        Trailer: deadline (8, ms since the epoch), clock (8, the session's highest timestamp),
 *                 n (1), n x [originLen (1), origin, seq (8)]: the session's barrier (n <= 255:
 *                 the load balancer keeps barriers that small, and encoding refuses more)
 *   6  STORE_RESPONSE     result (1), clientId (4), keyLen (2), key, Stamp?
 *   8  RETRIEVE_RESPONSE  result (1), clientId (4), keyLen (2), key, valueLen (2), value, Stamp?
 *  23  REMOVE_RESPONSE    result (1), clientId (4), keyLen (2), key, Stamp?          (Warren's)
 *        Stamp: hlc (8), originLen (1), origin, seq (8); Stamp? is hasStamp (1), then a Stamp if 1
 *  17  PEER_NOTIFY        Entry: keyLen (2), key, valueLen (2), value, flags (1), Stamp
 *                         flags bit 0: a death certificate (the key was deleted; valueLen is 0)
 *  18  SHUTDOWN           (no payload): the load balancer is stopping; workers stop too
 *  24  MARKER             tokenLen (1), token: a worker's note to itself through its own queue
 *  25  GOSSIP             UTF-8 JSON: a membership table (see membership.ts)
 *  26  HELLO              hb (8), inboxLen (1), inbox: a load balancer started (it may replace
 *                         one that crashed); sent to every worker's inbox through a fanout
 *                         exchange, and workers that were serving register with it again
 *
 * clientId is the seed's field; Warren puts the load balancer's request id in it.
 */
import { MsgType } from './protocol.js';

export const WireType = {
  StoreRequest: MsgType.StoreRequest,
  StoreResponse: MsgType.StoreResponse,
  RetrieveRequest: MsgType.RetrieveRequest,
  RetrieveResponse: MsgType.RetrieveResponse,
  DataExportStart: MsgType.DataExportStart,
  DataEntry: MsgType.DataEntry,
  DataExportEnd: MsgType.DataExportEnd,
  PeerNotify: MsgType.PeerNotify,
  Shutdown: MsgType.Shutdown,
  RemoveRequest: 22,
  RemoveResponse: 23,
  Marker: 24,
  Gossip: 25,
  Hello: 26,
} as const;
export type WireType = (typeof WireType)[keyof typeof WireType];

/** Results between worker and load balancer: the client's three, and BEHIND (try another). */
export const WorkerResult = { Ok: 0, NotFound: 1, Error: 2, Behind: 3 } as const;
export type WorkerResult = (typeof WorkerResult)[keyof typeof WorkerResult];

/**
 * A version and where it came from: the hybrid-clock timestamp and the id of the worker that
 * accepted the write (together they order all writes: higher hlc wins, then higher origin), and
 * the write's number in that worker's stream of writes.
 */
export interface Stamp {
  readonly hlc: number;
  readonly origin: string;
  readonly seq: number;
}

/** The most entries a request's barrier carries (its count is one byte). */
export const MAX_BARRIER = 255;

export type RequestType =
  typeof WireType.StoreRequest | typeof WireType.RetrieveRequest | typeof WireType.RemoveRequest;

export interface WorkerRequest {
  readonly type: RequestType;
  readonly id: number;
  readonly key: Buffer;
  /** STORE_REQUEST only. */
  readonly value: Buffer;
  /** Ms since the epoch after which the worker must not act on the request. */
  readonly deadline: number;
  /** The session's highest timestamp: a write gets a later one. */
  readonly clock: number;
  /** The session's barrier: a read waits until the worker holds every origin's stream to seq. */
  readonly after: readonly (readonly [origin: string, seq: number])[];
}

export type ResponseType =
  typeof WireType.StoreResponse | typeof WireType.RetrieveResponse | typeof WireType.RemoveResponse;

export interface WorkerResponse {
  readonly type: ResponseType;
  readonly result: WorkerResult;
  readonly id: number;
  readonly key: Buffer;
  /** RETRIEVE_RESPONSE only (empty otherwise). */
  readonly value: Buffer;
  /** The version written (store, remove) or read (retrieve; a death certificate's for NOT_FOUND). */
  readonly stamp: Stamp | null;
}

/** A replicated write: a value, or a death certificate when `value` is null. */
export interface Update {
  readonly key: Buffer;
  readonly value: Buffer | null;
  readonly stamp: Stamp;
}

export const RESPONSE_TYPE = {
  [WireType.StoreRequest]: WireType.StoreResponse,
  [WireType.RetrieveRequest]: WireType.RetrieveResponse,
  [WireType.RemoveRequest]: WireType.RemoveResponse,
} as const;

const EMPTY = Buffer.alloc(0);
const FLAG_DEAD = 1;

/** A malformed internal message: a bug or a foreign publisher, never a client's mistake. */
export class WireError extends Error {
  readonly code = 'WARREN_ERR_KV_WIRE';
  constructor(message: string) {
    super(message);
    this.name = 'WireError';
  }
}

/** Reads fields in order, checking bounds. */
export class Cursor {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  private need(n: number): void {
    if (this.pos + n > this.buf.length) {
      throw new WireError(
        `message truncated: needs ${n} more bytes at offset ${this.pos} of ${this.buf.length}`,
      );
    }
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  f64(): number {
    this.need(8);
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  str8(): string {
    return this.bytes(this.u8()).toString('latin1');
  }
  get remaining(): number {
    return this.buf.length - this.pos;
  }
  end(): void {
    if (this.pos !== this.buf.length) {
      throw new WireError(`${this.buf.length - this.pos} unexpected bytes at the end of a message`);
    }
  }
}

/** Writes fields in order into a buffer sized beforehand. */
class Out {
  pos = 0;
  readonly buf: Buffer;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  u8(v: number): this {
    this.buf[this.pos++] = v;
    return this;
  }
  u16(v: number): this {
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }
  u32(v: number): this {
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }
  f64(v: number): this {
    this.buf.writeDoubleBE(v, this.pos);
    this.pos += 8;
    return this;
  }
  bytes(v: Uint8Array): this {
    this.buf.set(v, this.pos);
    this.pos += v.length;
    return this;
  }
  str8(v: string): this {
    const n = this.buf.write(v, this.pos + 1, 'latin1');
    this.buf[this.pos] = n;
    this.pos += 1 + n;
    return this;
  }
}

function checkOrigin(origin: string): void {
  if (origin.length > 255) throw new WireError(`worker id '${origin}' is longer than 255 bytes`);
}

const stampSize = (s: Stamp): number => 8 + 1 + s.origin.length + 8;

function writeStamp(o: Out, s: Stamp): void {
  o.f64(s.hlc).str8(s.origin).f64(s.seq);
}

function readStamp(c: Cursor): Stamp {
  const hlc = c.f64();
  const origin = c.str8();
  const seq = c.f64();
  return { hlc, origin, seq };
}

// ------------------------------------------------------------------ requests

export function encodeWorkerRequest(r: WorkerRequest): Buffer {
  if (r.after.length > MAX_BARRIER) {
    throw new WireError(
      `a barrier of ${r.after.length} entries; a request carries at most ${MAX_BARRIER}`,
    );
  }
  let size = 1 + 4 + 2 + r.key.length + 8 + 8 + 1;
  if (r.type === WireType.StoreRequest) size += 2 + r.value.length;
  for (const [origin] of r.after) {
    checkOrigin(origin);
    size += 1 + origin.length + 8;
  }
  const o = new Out(size).u8(r.type).u32(r.id).u16(r.key.length).bytes(r.key);
  if (r.type === WireType.StoreRequest) o.u16(r.value.length).bytes(r.value);
  o.f64(r.deadline).f64(r.clock).u8(r.after.length);
  for (const [origin, seq] of r.after) o.str8(origin).f64(seq);
  return o.buf;
}

function isRequestType(type: number): type is RequestType {
  return (
    type === WireType.StoreRequest ||
    type === WireType.RetrieveRequest ||
    type === WireType.RemoveRequest
  );
}

export function decodeWorkerRequest(body: Buffer): WorkerRequest {
  const c = new Cursor(body);
  const type = c.u8();
  if (!isRequestType(type)) throw new WireError(`type ${type} is not a request`);
  const id = c.u32();
  const key = c.bytes(c.u16());
  const value = type === WireType.StoreRequest ? c.bytes(c.u16()) : EMPTY;
  const deadline = c.f64();
  const clock = c.f64();
  const n = c.u8();
  const after: [string, number][] = [];
  for (let i = 0; i < n; i++) after.push([c.str8(), c.f64()]);
  c.end();
  return { type, id, key, value, deadline, clock, after };
}

/**
 * The type, id and key of a request that did not decode as a whole, so that it can still be
 * answered ERROR (a load balancer waits for every request it sends); null if even they are not
 * there.
 */
export function peekWorkerRequest(
  body: Buffer,
): { type: RequestType; id: number; key: Buffer } | null {
  try {
    const c = new Cursor(body);
    const type = c.u8();
    if (!isRequestType(type)) return null;
    const id = c.u32();
    const key = c.remaining >= 2 ? c.bytes(Math.min(c.u16(), c.remaining)) : EMPTY;
    return { type, id, key };
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------ responses

export function encodeWorkerResponse(r: WorkerResponse): Buffer {
  let size = 1 + 1 + 4 + 2 + r.key.length + 1;
  if (r.type === WireType.RetrieveResponse) size += 2 + r.value.length;
  if (r.stamp !== null) {
    checkOrigin(r.stamp.origin);
    size += stampSize(r.stamp);
  }
  const o = new Out(size).u8(r.type).u8(r.result).u32(r.id).u16(r.key.length).bytes(r.key);
  if (r.type === WireType.RetrieveResponse) o.u16(r.value.length).bytes(r.value);
  o.u8(r.stamp === null ? 0 : 1);
  if (r.stamp !== null) writeStamp(o, r.stamp);
  return o.buf;
}

export function decodeWorkerResponse(body: Buffer): WorkerResponse {
  const c = new Cursor(body);
  const type = c.u8();
  if (
    type !== WireType.StoreResponse &&
    type !== WireType.RetrieveResponse &&
    type !== WireType.RemoveResponse
  ) {
    throw new WireError(`type ${type} is not a response`);
  }
  const result = c.u8();
  if (result > WorkerResult.Behind) throw new WireError(`unknown result ${result}`);
  const id = c.u32();
  const key = c.bytes(c.u16());
  const value = type === WireType.RetrieveResponse ? c.bytes(c.u16()) : EMPTY;
  const stamp = c.u8() === 1 ? readStamp(c) : null;
  c.end();
  return { type, result: result as WorkerResult, id, key, value, stamp };
}

// ------------------------------------------------------------------ entries (replication, export)

function entrySize(u: Update): number {
  checkOrigin(u.stamp.origin);
  return 2 + u.key.length + 2 + (u.value?.length ?? 0) + 1 + stampSize(u.stamp);
}

function writeEntry(o: Out, u: Update): void {
  o.u16(u.key.length).bytes(u.key);
  const v = u.value ?? EMPTY;
  o.u16(v.length).bytes(v);
  o.u8(u.value === null ? FLAG_DEAD : 0);
  writeStamp(o, u.stamp);
}

function readEntry(c: Cursor): Update {
  const key = c.bytes(c.u16());
  const value = c.bytes(c.u16());
  const flags = c.u8();
  const stamp = readStamp(c);
  return { key, value: (flags & FLAG_DEAD) !== 0 ? null : value, stamp };
}

/** PEER_NOTIFY: one write, replicated to every worker through the fanout exchange. */
export function encodePeerNotify(u: Update): Buffer {
  const o = new Out(1 + entrySize(u)).u8(WireType.PeerNotify);
  writeEntry(o, u);
  return o.buf;
}

export function decodePeerNotify(body: Buffer): Update {
  const c = new Cursor(body);
  if (c.u8() !== WireType.PeerNotify) throw new WireError('not a PEER_NOTIFY');
  const u = readEntry(c);
  c.end();
  return u;
}

// ------------------------------------------------------------------ small messages

export function encodeMarker(token: string): Buffer {
  return new Out(2 + token.length).u8(WireType.Marker).str8(token).buf;
}

export function decodeMarker(body: Buffer): string {
  const c = new Cursor(body);
  c.u8();
  const token = c.str8();
  c.end();
  return token;
}

export const SHUTDOWN_MESSAGE: Buffer = Buffer.from([WireType.Shutdown]);

export function encodeHello(inbox: string, hb: number): Buffer {
  if (inbox.length > 255) throw new WireError(`inbox '${inbox}' is longer than 255 bytes`);
  return new Out(1 + 8 + 1 + inbox.length).u8(WireType.Hello).f64(hb).str8(inbox).buf;
}

export function decodeHello(body: Buffer): { inbox: string; hb: number } {
  const c = new Cursor(body);
  if (c.u8() !== WireType.Hello) throw new WireError('not a HELLO');
  const hb = c.f64();
  const inbox = c.str8();
  c.end();
  if (!Number.isSafeInteger(hb) || hb < 0) throw new WireError(`HELLO heartbeat ${hb}`);
  return { inbox, hb };
}

export function encodeGossip(json: unknown): Buffer {
  const text = Buffer.from(JSON.stringify(json), 'utf8');
  const b = Buffer.allocUnsafe(1 + text.length);
  b[0] = WireType.Gossip;
  b.set(text, 1);
  return b;
}

export function decodeGossip(body: Buffer): unknown {
  try {
    return JSON.parse(body.subarray(1).toString('utf8'));
  } catch (err) {
    throw new WireError(`GOSSIP is not JSON: ${(err as Error).message}`);
  }
}

// ------------------------------------------------------------------ entry streams

/**
 * A stream of entries (a full export, or an anti-entropy repair), sent with warren/transfer. Each
 * record is type (1), length (4), payload:
 *
 *   12  DATA_EXPORT_START  totalEntries (4): entries held when the export started (informative)
 *   13  DATA_ENTRY         an Entry, as in PEER_NOTIFY
 *   14  DATA_EXPORT_END    count (4): entries in the stream, checked by the receiver
 *
 * The records are cut into chunks however the transfer likes: the decoder reassembles them.
 */
export function encodeExportStart(total: number): Buffer {
  return new Out(9).u8(WireType.DataExportStart).u32(4).u32(total).buf;
}

export function encodeDataEntry(u: Update): Buffer {
  const n = entrySize(u);
  const o = new Out(5 + n).u8(WireType.DataEntry).u32(n);
  writeEntry(o, u);
  return o.buf;
}

export function encodeExportEnd(count: number): Buffer {
  return new Out(9).u8(WireType.DataExportEnd).u32(4).u32(count).buf;
}

/** Largest record accepted: an entry with the longest key and value and a long origin. */
const MAX_RECORD = 2 + 0xffff + 2 + 0xffff + 1 + 8 + 1 + 255 + 8;

/** Decodes an entry stream fed in arbitrary chunks. */
export class EntryStreamDecoder {
  /** Bytes not yet decoded, joined only once a whole record is there. */
  private parts: Buffer[] = [];
  private partsLen = 0;
  /** Bytes needed before the next record can be decoded. */
  private need = 5;
  private started = false;
  private ended = false;
  private count = 0;
  /** DATA_EXPORT_START's totalEntries, once read. */
  total = -1;

  /** Feed bytes; `onEntry` is called for each whole entry. */
  push(chunk: Buffer, onEntry: (u: Update) => void): void {
    if (chunk.length === 0) return;
    this.parts.push(chunk);
    this.partsLen += chunk.length;
    if (this.partsLen < this.need) return;
    const buf = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partsLen);
    let pos = 0;
    this.need = 5;
    // Bounded by the buffer: each pass consumes one record.
    while (buf.length - pos >= 5) {
      const type = buf[pos]!;
      const len = buf.readUInt32BE(pos + 1);
      if (len > MAX_RECORD) throw new WireError(`entry stream record of ${len} bytes`);
      if (buf.length - pos < 5 + len) {
        this.need = 5 + len;
        break;
      }
      const payload = buf.subarray(pos + 5, pos + 5 + len);
      pos += 5 + len;
      this.record(type, payload, onEntry);
    }
    const rest = buf.subarray(pos);
    this.parts = rest.length === 0 ? [] : [rest];
    this.partsLen = rest.length;
  }

  private record(type: number, payload: Buffer, onEntry: (u: Update) => void): void {
    if (this.ended) throw new WireError('entry stream goes on after DATA_EXPORT_END');
    const c = new Cursor(payload);
    switch (type) {
      case WireType.DataExportStart:
        if (this.started) throw new WireError('a second DATA_EXPORT_START');
        this.started = true;
        this.total = c.u32();
        break;
      case WireType.DataEntry: {
        if (!this.started) throw new WireError('DATA_ENTRY before DATA_EXPORT_START');
        const u = readEntry(c);
        c.end();
        this.count++;
        // Copy out of the chunk so a stored value does not pin the whole chunk in memory.
        onEntry({
          key: Buffer.from(u.key),
          value: u.value === null ? null : Buffer.from(u.value),
          stamp: u.stamp,
        });
        return;
      }
      case WireType.DataExportEnd: {
        const n = c.u32();
        if (n !== this.count) {
          throw new WireError(`entry stream announced ${n} entries but carried ${this.count}`);
        }
        this.ended = true;
        break;
      }
      default:
        throw new WireError(`type ${type} in an entry stream`);
    }
    c.end();
  }

  /** Entries decoded so far. */
  get entries(): number {
    return this.count;
  }

  /** Throws unless the stream ended properly. */
  finish(): void {
    if (!this.ended || this.partsLen > 0) {
      throw new WireError(`entry stream cut short after ${this.count} entries`);
    }
  }
}

/**
 * Encode entries into an async iterable of chunks of about `chunkBytes`, produced only as the
 * consumer pulls (so memory stays bounded by what the transfer's window holds).
 */
export function entryStream(
  total: number,
  entries: Iterable<Update>,
  chunkBytes = 256 * 1024,
): AsyncIterable<Buffer> {
  return {
    [Symbol.asyncIterator]() {
      const it = entryChunks(total, entries, chunkBytes);
      return {
        next: () => Promise.resolve(it.next()),
        return: () => Promise.resolve(it.return(undefined)),
      };
    },
  };
}

function* entryChunks(
  total: number,
  entries: Iterable<Update>,
  chunkBytes: number,
): Generator<Buffer, undefined> {
  let parts: Buffer[] = [encodeExportStart(total)];
  let size = parts[0]!.length;
  let count = 0;
  for (const u of entries) {
    const rec = encodeDataEntry(u);
    parts.push(rec);
    size += rec.length;
    count++;
    if (size >= chunkBytes) {
      yield Buffer.concat(parts, size);
      parts = [];
      size = 0;
    }
  }
  const end = encodeExportEnd(count);
  parts.push(end);
  yield Buffer.concat(parts, size + end.length);
  return undefined;
}
