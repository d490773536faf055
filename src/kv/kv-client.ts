import { EventEmitter } from 'node:events';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { Deque } from '../util/deque.js';
import {
  FrameReader,
  MAX_KEY,
  MAX_PUT_PAYLOAD,
  MsgType,
  Result,
  decodeServerMessage,
  encodeKeyRequest,
  encodePut,
} from './protocol.js';
import type { ServerMessage } from './protocol.js';

export const KvErrorCode = {
  /** The server answered ERROR: no worker could serve the request in time. */
  Failed: 'WARREN_ERR_KV_FAILED',
  /** The server could not understand the request (MSG_ERROR); `serverCode` says why. */
  Rejected: 'WARREN_ERR_KV_REJECTED',
  /** The server is shutting down (MSG_SHUTDOWN); requests not yet answered never will be. */
  Shutdown: 'WARREN_ERR_KV_SHUTDOWN',
  /** The connection closed before the answer came. */
  Closed: 'WARREN_ERR_KV_CLOSED',
  /** The request cannot be sent (a key or value too long for the protocol). */
  Invalid: 'WARREN_ERR_KV_INVALID',
} as const;
export type KvErrorCode = (typeof KvErrorCode)[keyof typeof KvErrorCode];

export class KvError extends Error {
  constructor(
    readonly code: KvErrorCode,
    message: string,
    /** MSG_ERROR's errorCode, for Rejected. */
    readonly serverCode?: number,
  ) {
    super(message);
    this.name = 'KvError';
  }
}

export interface KvClientOptions {
  host?: string | undefined;
  port?: number | undefined;
  /** Ms allowed to connect (default 10 000). */
  connectTimeout?: number | undefined;
}

export interface KvClientEvents {
  /** The server sent MSG_SHUTDOWN. */
  shutdown: [];
  close: [];
}

interface Waiting {
  readonly op: number;
  readonly resolve: (m: ServerMessage) => void;
  readonly reject: (err: Error) => void;
}

type Bytes = string | Uint8Array;

const bytes = (b: Bytes): Buffer =>
  typeof b === 'string' ? Buffer.from(b, 'utf8') : Buffer.from(b.buffer, b.byteOffset, b.length);

/**
 * A client of the key-value service over its binary protocol (protocol.ts). Requests are written
 * at once and may be pipelined: the server answers in order, and so do the promises.
 */
export class KvClient extends EventEmitter<KvClientEvents> {
  private readonly waiting = new Deque<Waiting>(16);
  private readonly reader = new FrameReader();
  private closed: KvError | null = null;

  private constructor(private readonly socket: Socket) {
    super();
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.fail(this.closed ?? new KvError(KvErrorCode.Closed, 'the connection closed'));
      this.emit('close');
    });
  }

  static connect(o: KvClientOptions = {}): Promise<KvClient> {
    const host = o.host ?? '127.0.0.1';
    const port = o.port ?? 5059;
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new KvError(KvErrorCode.Closed, `could not connect to ${host}:${port} in time`));
      }, o.connectTimeout ?? 10_000);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new KvClient(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(
          new KvError(KvErrorCode.Closed, `cannot connect to ${host}:${port}: ${err.message}`),
        );
      });
    });
  }

  /** Requests sent and not yet answered. */
  get pending(): number {
    return this.waiting.length;
  }

  /** Store a value. */
  async put(key: Bytes, value: Bytes): Promise<void> {
    const k = bytes(key);
    const v = bytes(value);
    if (k.length === 0 || 4 + k.length + v.length > MAX_PUT_PAYLOAD) {
      throw new KvError(
        KvErrorCode.Invalid,
        `a put needs a key of 1 or more bytes and key + value of at most ${MAX_PUT_PAYLOAD - 4} bytes, got ${k.length} + ${v.length}`,
      );
    }
    const m = await this.request(MsgType.Put, encodePut(k, v));
    this.check(m, 'put');
  }

  /** The value, or null if the key is not there. */
  async get(key: Bytes): Promise<Buffer | null> {
    const m = await this.request(MsgType.Get, encodeKeyRequest(MsgType.Get, this.key(key)));
    if (m.type !== MsgType.GetResponse) throw this.unexpected(m);
    if (m.result === Result.NotFound) return null;
    this.check(m, 'get');
    return Buffer.from(m.value);
  }

  /** Delete; true if the key was there. */
  async del(key: Bytes): Promise<boolean> {
    const m = await this.request(MsgType.Delete, encodeKeyRequest(MsgType.Delete, this.key(key)));
    if (m.type !== MsgType.DeleteResponse) throw this.unexpected(m);
    if (m.result === Result.NotFound) return false;
    this.check(m, 'delete');
    return true;
  }

  private key(key: Bytes): Buffer {
    const k = bytes(key);
    if (k.length === 0 || k.length > MAX_KEY) {
      throw new KvError(KvErrorCode.Invalid, `a key is 1 to ${MAX_KEY} bytes, got ${k.length}`);
    }
    return k;
  }

  private check(m: ServerMessage, what: string): void {
    if (m.type === MsgType.Error) throw this.unexpected(m);
    if ('result' in m && m.result !== Result.Ok) {
      throw new KvError(
        KvErrorCode.Failed,
        `the ${what} failed: the server answered ERROR (no worker could serve it in time)`,
      );
    }
  }

  private unexpected(m: ServerMessage): KvError {
    if (m.type === MsgType.Error) {
      return new KvError(
        KvErrorCode.Rejected,
        `the server rejected the request (code ${m.code}): ${m.message}`,
        m.code,
      );
    }
    return new KvError(KvErrorCode.Rejected, `unexpected answer of type ${m.type}`);
  }

  /** Send a raw frame and wait for the next answer (for tools and tests). */
  request(op: number, frame: Buffer): Promise<ServerMessage> {
    if (this.closed !== null) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      this.waiting.push({ op, resolve, reject });
      this.socket.write(frame);
    });
  }

  private onData(chunk: Buffer): void {
    this.reader.push(chunk);
    // Bounded by the bytes received: each pass consumes one frame.
    for (let f = this.reader.next(); f !== null; f = this.reader.next()) {
      let m: ServerMessage;
      try {
        if (f.payload === null) throw new Error(`a frame of ${f.length} bytes`);
        m = decodeServerMessage(f.type, f.payload);
      } catch (err) {
        this.closed = new KvError(KvErrorCode.Closed, `bad answer: ${(err as Error).message}`);
        this.socket.destroy();
        return;
      }
      if (m.type === MsgType.Shutdown) {
        this.closed = new KvError(KvErrorCode.Shutdown, 'the server is shutting down');
        this.emit('shutdown');
        this.socket.end();
        return;
      }
      const w = this.waiting.shift();
      if (w === undefined) {
        this.closed = new KvError(KvErrorCode.Closed, 'an answer to no request');
        this.socket.destroy();
        return;
      }
      w.resolve(m);
    }
  }

  private fail(err: KvError): void {
    this.closed ??= err;
    // Bounded by the queue's length.
    for (let w = this.waiting.shift(); w !== undefined; w = this.waiting.shift()) w.reject(err);
  }

  close(): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    this.closed ??= new KvError(KvErrorCode.Closed, 'the client was closed');
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end();
    });
  }
}
