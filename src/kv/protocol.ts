/**
 * The key-value service's client protocol (TCP, port 5059 by default), byte for byte the one of
 * seed 002: every message is a 3-byte header, then the payload.
 *
 *   type    1 byte   a MsgType
 *   length  2 bytes  payload size in bytes, not counting the header
 *
 * Multi-byte integers are big-endian (network byte order). Types are numbered in the order the
 * seed's message table lists them, from 1; Warren adds a delete after the seed's last type:
 *
 *   1  MSG_PUT                  keyLen (2), key, valueLen (2), value
 *   2  MSG_PUT_RESPONSE         result (1), keyLen (2), key
 *   3  MSG_GET                  keyLen (2), key
 *   4  MSG_GET_RESPONSE         result (1), keyLen (2), key, valueLen (2), value (if valueLen > 0)
 *   5  MSG_STORE_REQUEST        } load balancer <-> worker messages in the seed. In Warren they
 *   6  MSG_STORE_RESPONSE       } travel over AMQP between the load balancer and the workers
 *   7  MSG_RETRIEVE_REQUEST     } (see messages.ts); a client sending one of them gets MSG_ERROR.
 *   8  MSG_RETRIEVE_RESPONSE    }
 *   9  MSG_WORKER_REGISTRY_START  } registration, export, readiness and peer replication:
 *  10  MSG_WORKER_ENTRY           } also worker business, never sent by clients.
 *  11  MSG_WORKER_REGISTRY_END    }
 *  12  MSG_DATA_EXPORT_START      }
 *  13  MSG_DATA_ENTRY             }
 *  14  MSG_DATA_EXPORT_END        }
 *  15  MSG_WORKER_READY           }
 *  16  MSG_WORKER_NOT_READY       }
 *  17  MSG_PEER_NOTIFY            }
 *  18  MSG_SHUTDOWN             (no payload): the server is going away
 *  19  MSG_ERROR                errorCode (1), messageLen (2), message (if messageLen > 0)
 *  20  MSG_DELETE               keyLen (2), key                       (Warren's addition)
 *  21  MSG_DELETE_RESPONSE      result (1), keyLen (2), key           (Warren's addition)
 *
 * Choices where the seed is silent: keys are 1..65530 bytes and may hold any bytes (an empty key
 * is refused); a value may be empty (valueLen 0), and GET of such a key answers OK with valueLen 0;
 * a NOT_FOUND or ERROR GET_RESPONSE has valueLen 0. Every request frame gets exactly one
 * response frame, in the order the requests were sent: its response type, or MSG_ERROR when the
 * frame could not be understood (the connection stays open: the header says where the next frame
 * starts). Every response must fit the 2-byte length: a GET_RESPONSE is result (1), keyLen (2),
 * key, valueLen (2), value, so a key may be at most 65535 - 5 = 65530 bytes, and a PUT (whose
 * payload is keyLen (2), key, valueLen (2), value: one byte shorter than that GET_RESPONSE) at
 * most 65534 bytes, i.e. key + value at most 65530 bytes. A longer key gets MSG_ERROR TooLarge
 * whatever the request, so no response ever has to be refused after the work is done.
 */

export const MsgType = {
  Put: 1,
  PutResponse: 2,
  Get: 3,
  GetResponse: 4,
  StoreRequest: 5,
  StoreResponse: 6,
  RetrieveRequest: 7,
  RetrieveResponse: 8,
  WorkerRegistryStart: 9,
  WorkerEntry: 10,
  WorkerRegistryEnd: 11,
  DataExportStart: 12,
  DataEntry: 13,
  DataExportEnd: 14,
  WorkerReady: 15,
  WorkerNotReady: 16,
  PeerNotify: 17,
  Shutdown: 18,
  Error: 19,
  Delete: 20,
  DeleteResponse: 21,
} as const;
export type MsgType = (typeof MsgType)[keyof typeof MsgType];

/** The result byte of responses. */
export const Result = { Ok: 0, NotFound: 1, Error: 2 } as const;
export type Result = (typeof Result)[keyof typeof Result];

/** The errorCode of MSG_ERROR. */
export const ErrorCode = {
  /** The type byte is not in the table. */
  UnknownType: 1,
  /** A type clients do not send (a response, or a worker message). */
  UnexpectedType: 2,
  /** The payload does not match the type's layout (lengths disagree, bytes left over). */
  Malformed: 3,
  /** The payload (or the key) is larger than the server accepts. */
  TooLarge: 4,
  /** The key is empty. */
  InvalidKey: 5,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export const HEADER_SIZE = 3;
/** The length field is 2 bytes. */
export const MAX_PAYLOAD = 0xffff;
/** A PUT payload must leave room for the GET_RESPONSE that returns its value (one byte longer). */
export const MAX_PUT_PAYLOAD = MAX_PAYLOAD - 1;
/** The longest value a PUT can carry with a one-byte key. */
export const MAX_VALUE = MAX_PUT_PAYLOAD - 2 - 1 - 2;
/**
 * The longest key: a GET_RESPONSE (result, keyLen, key, valueLen: 5 bytes besides the key) must
 * fit the 2-byte length even with an empty value, and a PUT's key and value together fit the same.
 */
export const MAX_KEY = MAX_PAYLOAD - 5;

const TYPE_NAMES = new Map<number, string>(
  Object.entries(MsgType).map(([name, n]) => [
    n,
    `MSG_${name.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}`,
  ]),
);

/** `MSG_PUT`, ... or `type 42` for a number not in the table. */
export function typeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `type ${type}`;
}

// ------------------------------------------------------------------ requests (client -> server)

export type ClientRequest =
  | { readonly op: typeof MsgType.Put; readonly key: Buffer; readonly value: Buffer }
  | { readonly op: typeof MsgType.Get; readonly key: Buffer }
  | { readonly op: typeof MsgType.Delete; readonly key: Buffer };

/** A frame the server could not turn into a request; answered with MSG_ERROR. */
export interface FrameError {
  readonly op: 0;
  readonly code: ErrorCode;
  readonly message: string;
}

function frameError(code: ErrorCode, message: string): FrameError {
  return { op: 0, code, message };
}

/**
 * Decode one request payload. Never throws: a payload that does not fit its layout is a
 * FrameError, and the connection goes on with the next frame.
 */
export function decodeRequest(type: number, payload: Buffer): ClientRequest | FrameError {
  switch (type) {
    case MsgType.Put: {
      if (payload.length > MAX_PUT_PAYLOAD) {
        return frameError(
          ErrorCode.TooLarge,
          `MSG_PUT payload is ${payload.length} bytes; at most ${MAX_PUT_PAYLOAD} fit (its MSG_GET_RESPONSE is one byte longer)`,
        );
      }
      if (payload.length < 4) return malformed('MSG_PUT', payload.length, 4);
      const keyLen = payload.readUInt16BE(0);
      if (2 + keyLen + 2 > payload.length) {
        return frameError(
          ErrorCode.Malformed,
          `MSG_PUT keyLen ${keyLen} does not fit in its ${payload.length}-byte payload`,
        );
      }
      const valueLen = payload.readUInt16BE(2 + keyLen);
      if (4 + keyLen + valueLen !== payload.length) {
        return frameError(
          ErrorCode.Malformed,
          `MSG_PUT keyLen ${keyLen} + valueLen ${valueLen} + 4 is not its payload length ${payload.length}`,
        );
      }
      if (keyLen === 0) return frameError(ErrorCode.InvalidKey, 'MSG_PUT with an empty key');
      return {
        op: MsgType.Put,
        key: payload.subarray(2, 2 + keyLen),
        value: payload.subarray(4 + keyLen),
      };
    }
    case MsgType.Get:
    case MsgType.Delete: {
      const name = typeName(type);
      if (payload.length < 2) return malformed(name, payload.length, 2);
      const keyLen = payload.readUInt16BE(0);
      if (2 + keyLen !== payload.length) {
        return frameError(
          ErrorCode.Malformed,
          `${name} keyLen ${keyLen} + 2 is not its payload length ${payload.length}`,
        );
      }
      if (keyLen === 0) return frameError(ErrorCode.InvalidKey, `${name} with an empty key`);
      // Checked here, before any work: the response repeats the key and must fit its frame.
      if (keyLen > MAX_KEY) return keyTooLong(name, keyLen);
      return { op: type, key: payload.subarray(2) };
    }
    default:
      if (TYPE_NAMES.has(type)) {
        return frameError(
          ErrorCode.UnexpectedType,
          `${typeName(type)} (${type}) is not a request; clients send MSG_PUT (1), MSG_GET (3) or MSG_DELETE (20)`,
        );
      }
      return frameError(ErrorCode.UnknownType, `unknown message type ${type}`);
  }
}

function keyTooLong(name: string, keyLen: number): FrameError {
  return frameError(
    ErrorCode.TooLarge,
    `${name} key of ${keyLen} bytes is longer than the ${MAX_KEY} a key may have (its MSG_GET_RESPONSE must fit in a 65535-byte payload); use a shorter key`,
  );
}

function malformed(name: string, got: number, min: number): FrameError {
  return frameError(
    ErrorCode.Malformed,
    `${name} payload is ${got} bytes, shorter than the ${min} its layout needs`,
  );
}

// ------------------------------------------------------------------ encoding

/** Throws a RangeError if the payload does not fit the 2-byte length (callers prevent that). */
function header(type: number, payloadLength: number): Buffer {
  if (payloadLength > MAX_PAYLOAD) {
    throw new RangeError(
      `a ${typeName(type)} payload of ${payloadLength} bytes does not fit the 2-byte length`,
    );
  }
  const b = Buffer.allocUnsafe(HEADER_SIZE + payloadLength);
  b[0] = type;
  b.writeUInt16BE(payloadLength, 1);
  return b;
}

export function encodePut(key: Uint8Array, value: Uint8Array): Buffer {
  const b = header(MsgType.Put, 4 + key.length + value.length);
  b.writeUInt16BE(key.length, 3);
  b.set(key, 5);
  b.writeUInt16BE(value.length, 5 + key.length);
  b.set(value, 7 + key.length);
  return b;
}

export function encodeKeyRequest(
  type: typeof MsgType.Get | typeof MsgType.Delete,
  key: Uint8Array,
): Buffer {
  const b = header(type, 2 + key.length);
  b.writeUInt16BE(key.length, 3);
  b.set(key, 5);
  return b;
}

/** MSG_PUT_RESPONSE or MSG_DELETE_RESPONSE: result, keyLen, key. */
export function encodeKeyResponse(
  type: typeof MsgType.PutResponse | typeof MsgType.DeleteResponse,
  result: Result,
  key: Uint8Array,
): Buffer {
  const b = header(type, 3 + key.length);
  b[3] = result;
  b.writeUInt16BE(key.length, 4);
  b.set(key, 6);
  return b;
}

export function encodeGetResponse(
  result: Result,
  key: Uint8Array,
  value: Uint8Array | null,
): Buffer {
  const v = value ?? EMPTY;
  const b = header(MsgType.GetResponse, 5 + key.length + v.length);
  b[3] = result;
  b.writeUInt16BE(key.length, 4);
  b.set(key, 6);
  b.writeUInt16BE(v.length, 6 + key.length);
  b.set(v, 8 + key.length);
  return b;
}

/** MSG_ERROR; the message is cut to fit the frame. */
export function encodeError(code: ErrorCode, message: string): Buffer {
  let text = Buffer.from(message, 'utf8');
  if (text.length > MAX_PAYLOAD - 3) text = text.subarray(0, MAX_PAYLOAD - 3);
  const b = header(MsgType.Error, 3 + text.length);
  b[3] = code;
  b.writeUInt16BE(text.length, 4);
  b.set(text, 6);
  return b;
}

export const SHUTDOWN_FRAME: Buffer = header(MsgType.Shutdown, 0);

const EMPTY = Buffer.alloc(0);

// ------------------------------------------------------------------ responses (server -> client)

export type ServerMessage =
  | { readonly type: typeof MsgType.PutResponse; readonly result: number; readonly key: Buffer }
  | { readonly type: typeof MsgType.DeleteResponse; readonly result: number; readonly key: Buffer }
  | {
      readonly type: typeof MsgType.GetResponse;
      readonly result: number;
      readonly key: Buffer;
      readonly value: Buffer;
    }
  | { readonly type: typeof MsgType.Error; readonly code: number; readonly message: string }
  | { readonly type: typeof MsgType.Shutdown };

/** Decode what a server sends; throws on anything else (a client cannot resynchronise then). */
export function decodeServerMessage(type: number, p: Buffer): ServerMessage {
  const need = (n: number): void => {
    if (p.length < n)
      throw new Error(`${typeName(type)} payload of ${p.length} bytes is too short`);
  };
  switch (type) {
    case MsgType.PutResponse:
    case MsgType.DeleteResponse: {
      need(3);
      const keyLen = p.readUInt16BE(1);
      need(3 + keyLen);
      return { type, result: p[0]!, key: p.subarray(3, 3 + keyLen) };
    }
    case MsgType.GetResponse: {
      need(5);
      const keyLen = p.readUInt16BE(1);
      need(5 + keyLen);
      const valueLen = p.readUInt16BE(3 + keyLen);
      need(5 + keyLen + valueLen);
      return {
        type,
        result: p[0]!,
        key: p.subarray(3, 3 + keyLen),
        value: p.subarray(5 + keyLen, 5 + keyLen + valueLen),
      };
    }
    case MsgType.Error: {
      need(3);
      const len = p.readUInt16BE(1);
      need(3 + len);
      return { type, code: p[0]!, message: p.subarray(3, 3 + len).toString('utf8') };
    }
    case MsgType.Shutdown:
      return { type };
    default:
      throw new Error(`the server sent ${typeName(type)}, which is not a response`);
  }
}

// ------------------------------------------------------------------ framing

/**
 * Splits a byte stream into frames. Bytes are kept as the chunks they arrived in and copied only
 * when a frame spans chunks. A frame whose declared length is above `maxPayload` is reported as
 * too large and its payload is skipped as it arrives, never buffered.
 */
export class FrameReader {
  /** Chunks from `head` on are unread; the array is reset once all of them are. */
  private chunks: Buffer[] = [];
  private head = 0;
  private buffered = 0;
  /** Payload bytes still to skip (an oversized frame). */
  private skipping = 0;

  constructor(private readonly maxPayload = MAX_PAYLOAD) {}

  /** Bytes held waiting for the rest of a frame. */
  get pending(): number {
    return this.buffered;
  }

  push(chunk: Buffer): void {
    if (this.skipping > 0) {
      const n = Math.min(this.skipping, chunk.length);
      this.skipping -= n;
      chunk = chunk.subarray(n);
    }
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /**
   * The next whole frame, `{ type, length, payload: null }` for an oversized one (already being
   * skipped), or null when more bytes are needed.
   */
  next(): { type: number; length: number; payload: Buffer | null } | null {
    if (this.skipping > 0 || this.buffered < HEADER_SIZE) return null;
    const head = this.take(HEADER_SIZE, true);
    const type = head[0]!;
    const length = head.readUInt16BE(1);
    if (length > this.maxPayload) {
      this.consume(HEADER_SIZE);
      const n = Math.min(length, this.buffered);
      this.consume(n);
      this.skipping = length - n;
      return { type, length, payload: null };
    }
    if (this.buffered < HEADER_SIZE + length) return null;
    this.consume(HEADER_SIZE);
    const payload = this.take(length, false);
    return { type, length, payload };
  }

  /** The first `n` buffered bytes (a view when they lie in one chunk); consumed unless `peek`. */
  private take(n: number, peek: boolean): Buffer {
    if (n === 0) return EMPTY;
    const first = this.chunks[this.head]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (!peek) this.consume(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    for (let i = this.head; off < n; i++) {
      const c = this.chunks[i]!;
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
    }
    if (!peek) this.consume(n);
    return out;
  }

  private consume(n: number): void {
    this.buffered -= n;
    while (n > 0) {
      const c = this.chunks[this.head]!;
      if (c.length <= n) {
        n -= c.length;
        this.head++;
      } else {
        this.chunks[this.head] = c.subarray(n);
        n = 0;
      }
    }
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head > 64) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }
}
