import { Socket } from 'node:net';
import {
  FRAME_OVERHEAD,
  FrameParser,
  FrameType,
  Method,
  PROTOCOL_HEADER,
  Reader,
  Writer,
  decodeMethod,
  encodeFieldTable,
  methodName,
  writeBodyFrames,
  writeHeaderFrame,
  writeHeartbeatFrame,
  writeMethodFrame,
} from '../../src/protocol/index.js';
import type {
  AnyMethod,
  BasicProperties,
  ConnectionClose,
  ConnectionStart,
  ConnectionTune,
  FieldTable,
} from '../../src/protocol/index.js';

/** A frame as received: payload copied, method decoded when it is a method frame. */
export interface RawFrame {
  type: number;
  channel: number;
  payload: Buffer;
  /** The decoded method of a method frame; undefined for other frames or if decoding failed. */
  method: AnyMethod | undefined;
}

export interface HandshakeOptions {
  mechanism?: 'PLAIN' | 'AMQPLAIN';
  user?: string;
  password?: string;
  vhost?: string;
  /** Values sent in tune-ok; each defaults to the server's proposal from connection.tune. */
  channelMax?: number;
  frameMax?: number;
  heartbeat?: number;
  clientProperties?: FieldTable;
  /** Stop after tune-ok without sending connection.open. */
  skipOpen?: boolean;
  timeoutMs?: number;
}

export interface HandshakeResult {
  start: ConnectionStart;
  tune: ConnectionTune;
}

export interface RawClientOptions {
  host?: string;
  /**
   * Keep received frames in `frames`: all (default), none, or those a filter picks (for bulk
   * transfers, where `onFrame` looks at the content and only the replies are kept).
   */
  record?: boolean | ((frame: RawFrame) => boolean);
  /** Called for every received frame, before it is recorded. */
  onFrame?: (frame: RawFrame) => void;
}

/** How a wait ended when the peer closed the connection instead of sending what was awaited. */
export class SocketClosedError extends Error {
  constructor(what: string) {
    super(`socket closed while waiting for ${what}`);
    this.name = 'SocketClosedError';
  }
}

const DEFAULT_TIMEOUT_MS = 10_000;
/** Bytes of the raw stream kept for inspection (e.g. the protocol header a server answers with). */
const RAW_HEAD_LIMIT = 4096;

/**
 * A deliberately naive AMQP 0-9-1 client over a TCP socket, built on Warren's own codec, for
 * tests that need to put exact bytes on the wire: malformed frames, odd handshakes, a consumer that
 * stops reading. It never answers anything on its own (no heartbeats, no close-ok) unless asked.
 */
export class RawClient {
  readonly socket: Socket;
  /** Frames received so far (when recording). */
  readonly frames: RawFrame[] = [];
  /** The first bytes received, undecoded. */
  rawHead: Buffer = Buffer.alloc(0);
  bytesReceived = 0;
  /** The server's stream could not be parsed as frames (e.g. it answered with a protocol header). */
  parseError: Error | null = null;
  /** The socket has closed (either side). */
  closed = false;
  /** The server ended its side of the connection (FIN) before the socket closed. */
  endedByPeer = false;
  socketError: Error | null = null;
  /** frame_max used when splitting outgoing bodies. */
  frameMax = 131072;

  private readonly parser: FrameParser;
  private readonly record: boolean | ((frame: RawFrame) => boolean);
  private readonly onFrameHook: ((frame: RawFrame) => void) | undefined;
  private waiters: (() => void)[] = [];
  private heartbeatTimer: NodeJS.Timeout | null = null;

  private constructor(socket: Socket, options: RawClientOptions) {
    this.socket = socket;
    this.record = options.record ?? true;
    this.onFrameHook = options.onFrame;
    this.parser = new FrameParser(
      { onFrame: (type, channel, payload) => this.onFrame(type, channel, payload) },
      0xffff_ffff,
    );
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      this.endedByPeer = true;
      this.notify();
    });
    socket.on('error', (err) => {
      this.socketError = err;
    });
    socket.on('close', () => {
      this.closed = true;
      this.stopHeartbeats();
      this.notify();
    });
  }

  static connect(port: number, options: RawClientOptions = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = new Socket();
      socket.setNoDelay(true);
      const onError = (err: Error): void => reject(err);
      socket.once('error', onError);
      socket.connect(port, options.host ?? '127.0.0.1', () => {
        socket.off('error', onError);
        resolve(new RawClient(socket, options));
      });
    });
  }

  // ------------------------------------------------------------------ receiving

  private onData(chunk: Buffer): void {
    this.bytesReceived += chunk.length;
    if (this.rawHead.length < RAW_HEAD_LIMIT) {
      this.rawHead = Buffer.concat([
        this.rawHead,
        chunk.subarray(0, RAW_HEAD_LIMIT - this.rawHead.length),
      ]);
    }
    if (this.parseError === null) {
      try {
        this.parser.push(chunk);
      } catch (err) {
        this.parseError = err as Error;
      }
    }
    this.notify();
  }

  private onFrame(type: number, channel: number, view: Buffer): void {
    const payload = Buffer.from(view);
    let method: AnyMethod | undefined;
    if (type === FrameType.Method) {
      try {
        method = decodeMethod(new Reader(payload));
      } catch {
        method = undefined;
      }
    }
    const frame: RawFrame = { type, channel, payload, method };
    this.onFrameHook?.(frame);
    const keep = typeof this.record === 'function' ? this.record(frame) : this.record;
    if (keep) this.frames.push(frame);
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /**
   * Wait until `check` returns something other than undefined, re-checking whenever data arrives
   * or the socket closes. Rejects with SocketClosedError if the socket closes first.
   */
  waitUntil<T>(
    check: () => T | undefined,
    what: string,
    timeoutMs = DEFAULT_TIMEOUT_MS,
  ): Promise<T> {
    const timeoutError = new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        done = true;
        reject(timeoutError);
      }, timeoutMs);
      let done = false;
      const attempt = (): void => {
        if (done) return;
        const v = check();
        if (v !== undefined) {
          done = true;
          clearTimeout(timer);
          resolve(v);
          return;
        }
        if (this.closed) {
          done = true;
          clearTimeout(timer);
          reject(new SocketClosedError(what));
          return;
        }
        this.waiters.push(attempt);
      };
      attempt();
    });
  }

  /** The first recorded method with this id (and channel, if given) after index `from`. */
  findMethod<M extends AnyMethod>(
    id: M['id'],
    options: { channel?: number; from?: number } = {},
  ): M | undefined {
    for (let i = options.from ?? 0; i < this.frames.length; i++) {
      const f = this.frames[i]!;
      if (f.method?.id !== id) continue;
      if (options.channel !== undefined && f.channel !== options.channel) continue;
      return f.method as M;
    }
    return undefined;
  }

  /** Wait for a method, looking at frames received from index `from` (default: all so far). */
  waitForMethod<M extends AnyMethod>(
    id: M['id'],
    options: { channel?: number; from?: number; timeoutMs?: number } = {},
  ): Promise<M> {
    return this.waitUntil(
      () => this.findMethod<M>(id, options),
      `${methodName(id)}${options.channel !== undefined ? ` on channel ${options.channel}` : ''}`,
      options.timeoutMs,
    );
  }

  /** Wait for the server's connection.close. */
  waitForConnectionClose(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ConnectionClose> {
    return this.waitForMethod<ConnectionClose>(Method.ConnectionClose, { channel: 0, timeoutMs });
  }

  /** Wait for the socket to close; resolves at once if it already has. */
  waitForSocketClose(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    return this.waitUntil(() => (this.closed ? true : undefined), 'socket close', timeoutMs).then(
      () => undefined,
      (err: unknown) => {
        if (err instanceof SocketClosedError) return;
        throw err;
      },
    );
  }

  /** Frames of a type received so far. */
  framesOfType(type: number): RawFrame[] {
    return this.frames.filter((f) => f.type === type);
  }

  // ------------------------------------------------------------------ sending

  /** Write raw bytes; resolves once they are handed to the kernel. */
  send(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed || this.socket.destroyed) {
        resolve();
        return;
      }
      this.socket.write(bytes, () => resolve());
    });
  }

  sendProtocolHeader(header: Uint8Array = PROTOCOL_HEADER): Promise<void> {
    return this.send(header);
  }

  sendFrame(type: number, channel: number, payload: Uint8Array): Promise<void> {
    return this.send(encodeFrame(type, channel, payload));
  }

  sendMethod(channel: number, m: AnyMethod): Promise<void> {
    return this.send(encodeMethodFrame(channel, m));
  }

  /** basic.publish with its content header and body frames, in one write. */
  publish(
    channel: number,
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: BasicProperties = {},
  ): Promise<void> {
    return this.send(encodePublish(channel, exchange, routingKey, body, properties, this.frameMax));
  }

  sendHeartbeat(): Promise<void> {
    const w = new Writer(16);
    writeHeartbeatFrame(w);
    return this.send(w.toBuffer());
  }

  /** Send a heartbeat frame every `intervalMs` until the socket closes or `stopHeartbeats`. */
  startHeartbeats(intervalMs: number): void {
    this.stopHeartbeats();
    this.heartbeatTimer = setInterval(() => void this.sendHeartbeat(), intervalMs);
  }

  stopHeartbeats(): void {
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  // ------------------------------------------------------------------ conversations

  /** Protocol header, start-ok, tune-ok and (unless skipOpen) open, waiting for open-ok. */
  async handshake(options: HandshakeOptions = {}): Promise<HandshakeResult> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const mechanism = options.mechanism ?? 'PLAIN';
    const user = options.user ?? 'guest';
    const password = options.password ?? 'guest';
    const from = this.frames.length;
    await this.sendProtocolHeader();
    const start = await this.waitForMethod<ConnectionStart>(Method.ConnectionStart, {
      channel: 0,
      from,
      timeoutMs,
    });
    await this.sendMethod(0, {
      id: Method.ConnectionStartOk,
      clientProperties: options.clientProperties ?? {
        product: 'warren-raw-test-client',
        capabilities: {
          consumer_cancel_notify: true,
          'basic.nack': true,
          publisher_confirms: true,
        },
      },
      mechanism,
      response: saslResponse(mechanism, user, password),
      locale: 'en_US',
    });
    const tune = await this.waitForMethod<ConnectionTune>(Method.ConnectionTune, {
      channel: 0,
      from,
      timeoutMs,
    });
    const frameMax = options.frameMax ?? tune.frameMax;
    await this.sendMethod(0, {
      id: Method.ConnectionTuneOk,
      channelMax: options.channelMax ?? tune.channelMax,
      frameMax,
      heartbeat: options.heartbeat ?? tune.heartbeat,
    });
    if (frameMax !== 0) this.frameMax = frameMax;
    if (options.skipOpen !== true) {
      await this.sendMethod(0, {
        id: Method.ConnectionOpen,
        virtualHost: options.vhost ?? '/',
        capabilities: '',
        insist: false,
      });
      await this.waitForMethod(Method.ConnectionOpenOk, { channel: 0, from, timeoutMs });
    }
    return { start, tune };
  }

  /** channel.open, waiting for open-ok. */
  async openChannel(channel: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    const from = this.frames.length;
    await this.sendMethod(channel, { id: Method.ChannelOpen, outOfBand: '' });
    await this.waitForMethod(Method.ChannelOpenOk, { channel, from, timeoutMs });
  }

  /** Send a method and wait for a reply method on the same channel. */
  async call<R extends AnyMethod>(
    channel: number,
    m: AnyMethod,
    replyId: R['id'],
    timeoutMs = DEFAULT_TIMEOUT_MS,
  ): Promise<R> {
    const from = this.frames.length;
    await this.sendMethod(channel, m);
    return this.waitForMethod<R>(replyId, { channel, from, timeoutMs });
  }

  /** Client-initiated close: connection.close, then wait for close-ok. */
  async closeConnection(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    const from = this.frames.length;
    await this.sendMethod(0, {
      id: Method.ConnectionClose,
      replyCode: 200,
      replyText: 'bye',
      classId: 0,
      methodId: 0,
    });
    await this.waitForMethod(Method.ConnectionCloseOk, { channel: 0, from, timeoutMs });
  }

  /** Answer a server's connection.close. */
  sendCloseOk(): Promise<void> {
    return this.sendMethod(0, { id: Method.ConnectionCloseOk });
  }

  /** Stop reading from the socket (the server's writes back up); `resume` undoes it. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  destroy(): void {
    this.stopHeartbeats();
    this.socket.destroy();
  }
}

// -------------------------------------------------------------------- encoders

/** One frame with arbitrary type, channel and payload. */
export function encodeFrame(type: number, channel: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(payload.length + FRAME_OVERHEAD);
  out[0] = type;
  out.writeUInt16BE(channel, 1);
  out.writeUInt32BE(payload.length, 3);
  out.set(payload, 7);
  out[out.length - 1] = 0xce;
  return out;
}

export function encodeMethodFrame(channel: number, m: AnyMethod): Buffer {
  const w = new Writer(256);
  writeMethodFrame(w, channel, m);
  return w.toBuffer();
}

/** The frames of a publish: method, content header and body frames. */
export function encodePublish(
  channel: number,
  exchange: string,
  routingKey: string,
  body: Uint8Array,
  properties: BasicProperties = {},
  frameMax = 131072,
): Buffer {
  const w = new Writer(body.length + 256);
  writeMethodFrame(w, channel, {
    id: Method.BasicPublish,
    ticket: 0,
    exchange,
    routingKey,
    mandatory: false,
    immediate: false,
  });
  writeHeaderFrame(w, channel, body.length, properties);
  writeBodyFrames(w, channel, body, frameMax);
  return w.toBuffer();
}

/** The SASL response for PLAIN (RFC 4616) or AMQPLAIN (a field table without its length). */
export function saslResponse(mechanism: string, user: string, password: string): Buffer {
  if (mechanism === 'AMQPLAIN') {
    const w = new Writer(64);
    encodeFieldTable(w, { LOGIN: user, PASSWORD: password });
    return w.toBuffer().subarray(4);
  }
  return Buffer.from(`\u0000${user}\u0000${password}`, 'utf8');
}
