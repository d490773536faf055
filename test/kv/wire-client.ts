/**
 * A client of the key-value protocol written from the seed's table alone, independently of
 * src/kv/protocol.ts, so that the server's codec is checked against a second reading of the spec.
 *
 * Header: type (1 byte), length (2 bytes, big-endian, payload only). Types are numbered from 1 in
 * the order of the seed's table; 20/21 are Warren's delete.
 */
import { Socket } from 'node:net';

export const T = {
  PUT: 1,
  PUT_RESPONSE: 2,
  GET: 3,
  GET_RESPONSE: 4,
  STORE_REQUEST: 5,
  STORE_RESPONSE: 6,
  RETRIEVE_REQUEST: 7,
  RETRIEVE_RESPONSE: 8,
  WORKER_REGISTRY_START: 9,
  WORKER_ENTRY: 10,
  WORKER_REGISTRY_END: 11,
  DATA_EXPORT_START: 12,
  DATA_ENTRY: 13,
  DATA_EXPORT_END: 14,
  WORKER_READY: 15,
  WORKER_NOT_READY: 16,
  PEER_NOTIFY: 17,
  SHUTDOWN: 18,
  ERROR: 19,
  DELETE: 20,
  DELETE_RESPONSE: 21,
} as const;

export const OK = 0;
export const NOT_FOUND = 1;
export const ERROR = 2;

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

export function frame(type: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type]), u16(payload.length), payload]);
}

const buf = (x: string | Buffer): Buffer => (typeof x === 'string' ? Buffer.from(x) : x);

export function putFrame(key: string | Buffer, value: string | Buffer): Buffer {
  const k = buf(key);
  const v = buf(value);
  return frame(T.PUT, Buffer.concat([u16(k.length), k, u16(v.length), v]));
}

export function getFrame(key: string | Buffer): Buffer {
  const k = buf(key);
  return frame(T.GET, Buffer.concat([u16(k.length), k]));
}

export function delFrame(key: string | Buffer): Buffer {
  const k = buf(key);
  return frame(T.DELETE, Buffer.concat([u16(k.length), k]));
}

export interface Frame {
  type: number;
  payload: Buffer;
}

/** A decoded response: result byte, key, value (GET), or an error's code and text. */
export interface Reply {
  type: number;
  result: number;
  key: Buffer;
  value: Buffer;
  code: number;
  message: string;
}

export function parseReply(f: Frame): Reply {
  const p = f.payload;
  const r: Reply = {
    type: f.type,
    result: -1,
    key: Buffer.alloc(0),
    value: Buffer.alloc(0),
    code: -1,
    message: '',
  };
  if (f.type === T.PUT_RESPONSE || f.type === T.DELETE_RESPONSE || f.type === T.GET_RESPONSE) {
    r.result = p[0]!;
    const kl = p.readUInt16BE(1);
    r.key = p.subarray(3, 3 + kl);
    let end = 3 + kl;
    if (f.type === T.GET_RESPONSE) {
      const vl = p.readUInt16BE(end);
      r.value = p.subarray(end + 2, end + 2 + vl);
      end += 2 + vl;
    }
    if (end !== p.length)
      throw new Error(`reply of type ${f.type} has ${p.length - end} extra bytes`);
  } else if (f.type === T.ERROR) {
    r.code = p[0]!;
    const ml = p.readUInt16BE(1);
    r.message = p.subarray(3, 3 + ml).toString('utf8');
    if (3 + ml !== p.length) throw new Error('MSG_ERROR length mismatch');
  } else if (f.type !== T.SHUTDOWN) {
    throw new Error(`unexpected frame type ${f.type}`);
  }
  return r;
}

/** A raw connection: write bytes, read frames in order. */
export class WireClient {
  private data = Buffer.alloc(0);
  private readonly frames: Frame[] = [];
  private waiter: (() => void) | null = null;
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      this.data = Buffer.concat([this.data, d]);
      // Bounded by the bytes received.
      while (this.data.length >= 3) {
        const len = this.data.readUInt16BE(1);
        if (this.data.length < 3 + len) break;
        this.frames.push({
          type: this.data[0]!,
          payload: Buffer.from(this.data.subarray(3, 3 + len)),
        });
        this.data = this.data.subarray(3 + len);
      }
      this.wake();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  static connect(port: number, host = '127.0.0.1'): Promise<WireClient> {
    return new Promise((resolve, reject) => {
      const s = new Socket();
      s.once('error', reject);
      s.connect(port, host, () => {
        s.off('error', reject);
        resolve(new WireClient(s));
      });
    });
  }

  write(b: Buffer): void {
    this.socket.write(b);
  }

  /** The next frame; rejects after `timeoutMs` or if the connection closes first. */
  async next(timeoutMs = 20_000): Promise<Frame> {
    const until = Date.now() + timeoutMs;
    // Bounded by the deadline.
    while (this.frames.length === 0) {
      if (this.closed) throw new Error('connection closed while waiting for a frame');
      const left = until - Date.now();
      if (left <= 0) throw new Error(`no frame within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    return this.frames.shift()!;
  }

  async reply(timeoutMs?: number): Promise<Reply> {
    return parseReply(await this.next(timeoutMs));
  }

  async put(key: string | Buffer, value: string | Buffer): Promise<number> {
    this.write(putFrame(key, value));
    const r = await this.reply();
    if (r.type !== T.PUT_RESPONSE) throw new Error(`PUT answered with type ${r.type} ${r.message}`);
    return r.result;
  }

  async get(key: string | Buffer): Promise<{ result: number; value: Buffer }> {
    this.write(getFrame(key));
    const r = await this.reply();
    if (r.type !== T.GET_RESPONSE) throw new Error(`GET answered with type ${r.type} ${r.message}`);
    return { result: r.result, value: r.value };
  }

  async del(key: string | Buffer): Promise<number> {
    this.write(delFrame(key));
    const r = await this.reply();
    if (r.type !== T.DELETE_RESPONSE) throw new Error(`DELETE answered with type ${r.type}`);
    return r.result;
  }

  /** Wait until the server closes the connection. */
  async closedByServer(timeoutMs = 20_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    // Bounded by the deadline.
    while (!this.closed) {
      if (Date.now() > until) throw new Error('the server did not close the connection');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  close(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
