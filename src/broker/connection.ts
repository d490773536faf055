import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import {
  AmqpError,
  FrameParser,
  FrameType,
  Method,
  PROTOCOL_HEADER,
  Reader,
  ReplyCode,
  Writer,
  decodeMethod,
  methodName,
  writeHeartbeatFrame,
  writeMethodFrame,
} from '../protocol/index.js';
import type { AnyMethod, FieldTable } from '../protocol/index.js';
import { Channel, ChannelState } from './channel.js';
import { handleChannelFrame } from './handlers/content.js';
import { handleConnectionMethod } from './handlers/connection.js';
import { dispatchChannelMethod } from './handlers/dispatch.js';
import type { Blob, BlobStore } from '../store/blob-store.js';
import type { CommitScheduler } from '../store/commit-scheduler.js';
import type { BrokerConfig } from './config.js';
import type { Logger } from './logger.js';
import type { Message } from './message.js';
import type { Queue, QueueOwner } from './queue.js';
import type { User, UserStore } from './users.js';
import type { VirtualHost } from './vhost.js';
import { Deque } from '../util/deque.js';

export const ConnectionState = {
  AwaitingHeader: 'awaiting-header',
  AwaitingStartOk: 'awaiting-start-ok',
  AwaitingTuneOk: 'awaiting-tune-ok',
  AwaitingOpen: 'awaiting-open',
  Open: 'open',
  /** The broker sent connection.close and waits for close-ok. */
  Closing: 'closing',
  Closed: 'closed',
} as const;
export type ConnectionState = (typeof ConnectionState)[keyof typeof ConnectionState];

/** What a connection needs from the broker that accepted it. */
export interface ConnectionHost {
  readonly config: BrokerConfig;
  readonly users: UserStore;
  readonly logger: Logger;
  readonly serverProperties: FieldTable;
  /** Direct reply-to addresses -> requesting channel. */
  readonly replyChannels: Map<string, Channel>;
  /** Group commit of the store; null when the broker keeps nothing on disk. */
  readonly commit: CommitScheduler | null;
  /** Where large bodies go; null when the broker keeps nothing on disk. */
  readonly blobs: BlobStore | null;
  /** A write met a full disk: raise the disk alarm. */
  diskFull?(code: string): void;
  /** Every connection served, handshaking ones included (for maxConnections). */
  readonly connections: ReadonlySet<Connection>;
  getVhost(name: string): VirtualHost | undefined;
  connectionClosed(conn: Connection): void;
}

/** The parts of net.Socket a connection uses beyond Duplex; absent on in-memory transports. */
interface SocketExtras {
  remoteAddress?: string;
  remotePort?: number;
  localAddress?: string;
  localPort?: number;
  setNoDelay?(noDelay?: boolean): unknown;
}

/** Client capabilities from connection.start-ok's client-properties. */
export interface ClientCapabilities {
  consumerCancelNotify: boolean;
  connectionBlocked: boolean;
  authenticationFailureClose: boolean;
  basicNack: boolean;
  publisherConfirms: boolean;
}

/** Bytes queued for the socket beyond which deliveries pause until it drains. */
const OUTPUT_HIGH_WATER = 1024 * 1024;
/** Bodies at least this large are written as their own buffers instead of being copied. */
const COPY_BODY_LIMIT = 16 * 1024;
/** How long to wait for connection.close-ok after the broker closed the connection. */
const CLOSE_OK_TIMEOUT_MS = 3000;
/**
 * Milliseconds a connection's input may occupy the broker before other connections get a turn.
 * libuv reads a busy socket up to 32 times per loop iteration; without a limit a flooding
 * publisher is served for tens of milliseconds while its queue's consumers wait to have their
 * acks read.
 */
const READ_TURN_MS = 0.5;
/** Output buffers up to this size are kept for the next flush; larger ones are let go. */
const REUSE_OUTPUT_MAX = 256 * 1024;

let nextConnectionId = 1;

/**
 * One AMQP connection over any duplex byte stream (a TCP socket, or an in-process pair for the
 * embedded broker): the handshake, frame dispatch to channels, heartbeats, and the outgoing
 * frames, which are gathered into one buffer and written once per tick.
 */
export class Connection implements QueueOwner {
  readonly id: number;
  readonly host: ConnectionHost;
  readonly transport: Duplex & SocketExtras;
  readonly connectedAt = Date.now();
  readonly remoteAddress: string;
  readonly remotePort: number;
  state: ConnectionState = ConnectionState.AwaitingHeader;

  frameMax: number;
  channelMax: number;
  heartbeat = 0;
  clientProperties: FieldTable = {};
  capabilities: ClientCapabilities = {
    consumerCancelNotify: false,
    connectionBlocked: false,
    authenticationFailureClose: false,
    basicNack: false,
    publisherConfirms: false,
  };
  user: User | null = null;
  authMechanism = '';
  vhost: VirtualHost | null = null;
  readonly channels = new Map<number, Channel>();
  readonly exclusiveQueues = new Set<Queue>();
  /** Resource-permission results, so a publish loop does not run a regex per message. */
  readonly permissionCache: Map<string, boolean>[] = Array.from(
    { length: 6 },
    () => new Map<string, boolean>(),
  );
  /** UserStore generation the cache was filled under. */
  permissionGeneration = -1;

  readonly parser: FrameParser;
  private readonly reader = new Reader(Buffer.alloc(0));
  private headerBytes: Buffer = Buffer.alloc(0);
  private readonly out = new Writer(64 * 1024);
  private chunks: (Buffer | BodyStream)[] = [];
  /** Large bodies in `chunks` being sent from disk as the socket takes them. */
  private streams = 0;
  private flushScheduled = false;
  private outputBlocked = false;
  /** Octets in `chunks`, which `out.length` does not count. */
  private chunkBytes = 0;
  /** A consumer was refused because unflushed output reached the high-water mark. */
  private deliveriesDeferred = false;
  /**
   * Frames received while output was over the high-water mark, handled once it has room; reading
   * is paused meanwhile, so this holds at most the rest of one chunk. Without it a client that
   * pipelines basic.get (or mandatory publishes) and never reads makes the broker buffer without
   * bound.
   */
  private held: Deque<HeldFrame> | null = null;
  /** Set while a resource alarm is on; `alarmBlocked` once this connection is blocked by it. */
  private blockedReason: string | null = null;
  private alarmBlocked = false;
  /** Has sent basic.publish: such connections are blocked by resource alarms. */
  hasPublished = false;
  private readonly confirmChannels = new Set<Channel>();
  lastReceived = Date.now();
  lastSent = Date.now();
  private handshakeTimer: NodeJS.Timeout | null;
  private closeTimer: NodeJS.Timeout | null = null;
  private parserBroken = false;
  /** Time spent on this connection's input since it last yielded its turn (see READ_TURN_MS). */
  private turnMs = 0;
  private yielding = false;
  /**
   * A plain TCP socket copies what it writes synchronously, so the output buffer can be reused
   * after such a write (an in-process stream or TLS may keep a reference to it).
   */
  private readonly reusableOutput: boolean;
  /** A publish read in this turn went to a consumed queue with a backlog (see FLOW_BACKLOG). */
  backlogged = false;
  readonly stats = { recvOct: 0, sendOct: 0, recvCnt: 0, sendCnt: 0 };

  constructor(host: ConnectionHost, transport: Duplex & SocketExtras) {
    this.id = nextConnectionId++;
    this.host = host;
    this.transport = transport;
    this.remoteAddress = transport.remoteAddress ?? 'in-process';
    this.remotePort = transport.remotePort ?? 0;
    this.frameMax = host.config.frameMax;
    this.channelMax = host.config.channelMax;
    this.parser = new FrameParser(this, host.config.frameMax);
    this.reusableOutput = transport instanceof Socket && !(transport instanceof TLSSocket);
    transport.setNoDelay?.(true);
    transport.on('data', (chunk: Buffer) => this.onData(chunk));
    transport.on('drain', () => this.onDrain());
    transport.on('error', (err: Error) => {
      this.host.logger.debug(`connection ${this.name}: socket error: ${err.message}`);
    });
    transport.on('close', () => this.onTransportClosed());
    this.handshakeTimer = setTimeout(() => {
      this.host.logger.warn(`connection ${this.name}: handshake timed out, closing`);
      this.destroy();
    }, host.config.handshakeTimeout * 1000);
    this.handshakeTimer.unref();
  }

  get name(): string {
    return `${this.remoteAddress}:${this.remotePort}`;
  }

  get isOpen(): boolean {
    return this.state === ConnectionState.Open;
  }

  // ------------------------------------------------------------------ input

  private onData(chunk: Buffer): void {
    this.lastReceived = Date.now();
    this.stats.recvOct += chunk.length;
    if (this.state === ConnectionState.Closed || this.parserBroken) return;
    if (this.state === ConnectionState.AwaitingHeader) {
      chunk = this.readProtocolHeader(chunk);
      if (chunk.length === 0) return;
    }
    const start = performance.now();
    try {
      this.parser.push(chunk);
    } catch (err) {
      // A framing error leaves the stream unparseable: close and read nothing more.
      this.parserBroken = true;
      this.connectionError(toAmqpError(err, this.host.logger));
    }
    this.turnMs += performance.now() - start;
    if ((this.turnMs >= READ_TURN_MS || this.backlogged) && !this.yielding) {
      this.yielding = true;
      this.transport.pause();
      if (this.backlogged) {
        this.backlogged = false;
        setImmediate(skipTurn, this);
      } else {
        setImmediate(endTurn, this);
      }
    }
  }

  /** The other connections had their turn: read again, unless input is held for other reasons. */
  endTurn(): void {
    this.yielding = false;
    this.turnMs = 0;
    if (this.held === null && this.state !== ConnectionState.Closed) this.transport.resume();
  }

  /** Consume the 8-byte protocol header; returns the bytes after it. */
  private readProtocolHeader(chunk: Buffer): Buffer {
    const need = 8 - this.headerBytes.length;
    this.headerBytes = Buffer.concat([this.headerBytes, chunk.subarray(0, need)]);
    if (this.headerBytes.length < 8) return Buffer.alloc(0);
    if (!this.headerBytes.equals(PROTOCOL_HEADER)) {
      // spec: answer an unsupported protocol header with the one we speak, then close.
      this.host.logger.info(
        `connection ${this.name}: bad protocol header ${JSON.stringify(this.headerBytes.toString('latin1'))}, sending AMQP 0-9-1 header`,
      );
      this.state = ConnectionState.Closed;
      this.transport.end(PROTOCOL_HEADER);
      return Buffer.alloc(0);
    }
    this.state = ConnectionState.AwaitingStartOk;
    this.sendMethod(0, {
      id: Method.ConnectionStart,
      versionMajor: 0,
      versionMinor: 9,
      serverProperties: this.host.serverProperties,
      mechanisms: Buffer.from('PLAIN AMQPLAIN'),
      locales: Buffer.from('en_US'),
    });
    return chunk.subarray(need);
  }

  /** Frame callback from the parser. Errors here leave the framing intact. */
  onFrame(type: number, channelId: number, payload: Buffer): void {
    this.stats.recvCnt++;
    if (
      this.blockedReason !== null &&
      !this.alarmBlocked &&
      type === FrameType.Method &&
      payload.length >= 4 &&
      payload.readUInt32BE(0) === Method.BasicPublish
    ) {
      // A resource alarm is on and this connection publishes: stop reading it.
      this.hasPublished = true;
      this.block();
    }
    if (this.held !== null || this.outputFull()) {
      this.hold(type, channelId, payload);
      return;
    }
    this.handleFrame(type, channelId, payload);
  }

  private handleFrame(type: number, channelId: number, payload: Buffer): void {
    try {
      this.routeFrame(type, channelId, payload);
    } catch (err) {
      this.connectionError(toAmqpError(err, this.host.logger));
    }
  }

  /**
   * A resource alarm changed (reason, or null when all clear). Connections that have published
   * are blocked: told so (connection.blocked) and no longer read; consumers keep draining.
   */
  setBlocked(reason: string | null): void {
    this.blockedReason = reason;
    if (reason !== null) {
      if (this.hasPublished) this.block();
      return;
    }
    if (!this.alarmBlocked) return;
    this.alarmBlocked = false;
    if (this.capabilities.connectionBlocked && this.state === ConnectionState.Open) {
      this.sendMethod(0, { id: Method.ConnectionUnblocked });
    }
    this.releaseHeld();
  }

  get blocked(): boolean {
    return this.alarmBlocked;
  }

  private block(): void {
    if (this.alarmBlocked || this.blockedReason === null) return;
    this.alarmBlocked = true;
    this.host.logger.info(`connection ${this.name}: blocked (${this.blockedReason})`);
    if (this.capabilities.connectionBlocked && this.state === ConnectionState.Open) {
      this.sendMethod(0, { id: Method.ConnectionBlocked, reason: this.blockedReason });
    }
    if (this.held === null) {
      this.held = new Deque<HeldFrame>();
      this.transport.pause();
    }
  }

  private hold(type: number, channelId: number, payload: Buffer): void {
    if (this.held === null) {
      this.held = new Deque<HeldFrame>();
      this.transport.pause();
    }
    this.held.push({ type, channelId, payload: Buffer.from(payload) });
  }

  /** Handle held frames while output has room; once all are done, read again. */
  private releaseHeld(): void {
    const held = this.held;
    if (held === null || this.alarmBlocked) return;
    while (held.length > 0) {
      if (this.state === ConnectionState.Closed) break;
      if (this.outputFull()) return;
      const f = held.shift()!;
      this.handleFrame(f.type, f.channelId, f.payload);
    }
    this.held = null;
    // Nothing was read while held: the client's heartbeats are in the unread input.
    this.lastReceived = Date.now();
    if (!this.yielding) this.transport.resume();
  }

  private routeFrame(type: number, channelId: number, payload: Buffer): void {
    if (type === FrameType.Heartbeat) {
      // spec 4.2.7: heartbeats are empty and on channel 0; RabbitMQ's codes for the violations.
      if (channelId !== 0) {
        throw new AmqpError(ReplyCode.UnexpectedFrame, `heartbeat frame on channel ${channelId}`);
      }
      if (payload.length !== 0) {
        throw new AmqpError(
          ReplyCode.FrameError,
          `heartbeat frame with a payload of ${payload.length} octets`,
        );
      }
      return;
    }
    if (this.state === ConnectionState.Closing) {
      this.onFrameWhileClosing(type, channelId, payload);
      return;
    }
    if (channelId === 0) {
      if (type !== FrameType.Method) {
        throw new AmqpError(ReplyCode.UnexpectedFrame, `content frame (type ${type}) on channel 0`);
      }
      const m = this.decodeWholeMethod(payload);
      try {
        handleConnectionMethod(this, m);
      } catch (err) {
        this.connectionError(
          toAmqpError(err, this.host.logger).withMethod(m.id >>> 16, m.id & 0xffff),
        );
      }
      return;
    }
    if (this.state !== ConnectionState.Open) {
      throw new AmqpError(
        ReplyCode.ChannelError,
        `frame on channel ${channelId} before the connection is open`,
      );
    }
    this.onChannelFrame(type, channelId, payload);
  }

  private onChannelFrame(type: number, channelId: number, payload: Buffer): void {
    const ch = this.channels.get(channelId);
    let m: AnyMethod | null = null;
    try {
      if (type === FrameType.Method) {
        m = this.decodeWholeMethod(payload);
        if (ch === undefined) {
          this.openChannel(channelId, m);
          return;
        }
        if (ch.state === ChannelState.Closing) {
          this.onMethodWhileChannelClosing(ch, m);
          return;
        }
        if (m.id === Method.ChannelOpen) {
          throw new AmqpError(ReplyCode.ChannelError, `second 'channel.open' seen`, {
            closesConnection: true,
          });
        }
        if (ch.pending !== null) {
          const expected =
            ch.pending.header === null ? 'content header for class 60' : 'content body';
          throw new AmqpError(
            ReplyCode.UnexpectedFrame,
            `expected ${expected}, got method ${methodName(m.id)} instead`,
          );
        }
        dispatchChannelMethod(ch, m);
        return;
      }
      if (ch === undefined) {
        throw new AmqpError(
          ReplyCode.ChannelError,
          `expected 'channel.open' on channel ${channelId}`,
        );
      }
      if (ch.state === ChannelState.Closing) return;
      handleChannelFrame(ch, type, payload);
    } catch (err) {
      let e = toAmqpError(err, this.host.logger);
      if (m !== null) e = e.withMethod(m.id >>> 16, m.id & 0xffff);
      // Content frames complete a basic.publish; RabbitMQ blames that method (60, 40).
      else if (type !== FrameType.Method) {
        e = e.withMethod(Method.BasicPublish >>> 16, Method.BasicPublish & 0xffff);
      }
      if (e.closesConnection || ch === undefined) this.connectionError(e);
      else this.channelError(ch, e);
    }
  }

  /** Decode a method frame's payload, which must hold exactly one method's arguments. */
  private decodeWholeMethod(payload: Buffer): AnyMethod {
    const m = decodeMethod(this.reader.reset(payload));
    if (this.reader.remaining !== 0) {
      // RabbitMQ refuses the same: the arguments did not end where the frame does.
      throw new AmqpError(
        ReplyCode.FrameError,
        `cannot decode ${methodName(m.id)}: ${this.reader.remaining} octets after its arguments`,
      );
    }
    return m;
  }

  private openChannel(channelId: number, m: AnyMethod): void {
    if (m.id !== Method.ChannelOpen) {
      throw new AmqpError(
        ReplyCode.ChannelError,
        `expected 'channel.open' on channel ${channelId}`,
        {
          closesConnection: true,
        },
      );
    }
    if (channelId > this.channelMax) {
      throw new AmqpError(
        ReplyCode.NotAllowed,
        `channel number ${channelId} exceeds the negotiated channel_max ${this.channelMax}`,
      );
    }
    this.channels.set(channelId, new Channel(channelId, this));
    this.sendMethod(channelId, { id: Method.ChannelOpenOk, channelId: Buffer.alloc(0) });
  }

  private onMethodWhileChannelClosing(ch: Channel, m: AnyMethod): void {
    // spec: after sending channel.close, discard everything but close / close-ok.
    if (m.id === Method.ChannelCloseOk) {
      this.channels.delete(ch.id);
    } else if (m.id === Method.ChannelClose) {
      this.sendMethod(ch.id, { id: Method.ChannelCloseOk });
      this.channels.delete(ch.id);
    }
  }

  private onFrameWhileClosing(type: number, channelId: number, payload: Buffer): void {
    if (type !== FrameType.Method || channelId !== 0) return;
    let m: AnyMethod;
    try {
      m = decodeMethod(this.reader.reset(payload));
    } catch {
      return;
    }
    if (m.id === Method.ConnectionCloseOk) {
      this.destroy();
    } else if (m.id === Method.ConnectionClose) {
      this.sendMethod(0, { id: Method.ConnectionCloseOk });
      this.endAfterFlush();
    }
  }

  // ------------------------------------------------------------------ errors and closing

  /** Close one channel with an error; the connection and its other channels go on. */
  channelError(ch: Channel, err: AmqpError): void {
    this.host.logger.debug(`connection ${this.name} channel ${ch.id}: ${err.replyText}`);
    ch.cleanup();
    ch.state = ChannelState.Closing;
    this.sendMethod(ch.id, {
      id: Method.ChannelClose,
      replyCode: err.replyCode,
      replyText: err.replyText,
      classId: err.classId,
      methodId: err.methodId,
    });
  }

  /** Close the connection with an error (or a reason) and wait for close-ok. */
  connectionError(err: AmqpError): void {
    if (this.state === ConnectionState.Closing || this.state === ConnectionState.Closed) return;
    const level = err.replyCode === ReplyCode.ConnectionForced ? 'info' : 'warn';
    this.host.logger[level](`connection ${this.name}: closing: ${err.replyText}`);
    const before = this.state;
    this.releaseChannels();
    this.state = ConnectionState.Closing;
    if (before === ConnectionState.AwaitingStartOk && err.replyCode !== ReplyCode.AccessRefused) {
      // Before start-ok the peer may not even speak AMQP; nothing useful to say.
      this.destroy();
      return;
    }
    this.sendMethod(0, {
      id: Method.ConnectionClose,
      replyCode: err.replyCode,
      replyText: err.replyText,
      classId: err.classId,
      methodId: err.methodId,
    });
    this.closeTimer = setTimeout(
      () => this.destroy(),
      this.parserBroken ? 500 : CLOSE_OK_TIMEOUT_MS,
    );
    this.closeTimer.unref();
  }

  /** Close as an operator action (management, shutdown): 320 CONNECTION_FORCED. */
  close(reason = 'broker forced connection closure'): void {
    if (this.state === ConnectionState.Open) {
      this.connectionError(new AmqpError(ReplyCode.ConnectionForced, reason));
    } else {
      this.destroy();
    }
  }

  /** The client sent connection.close: answer and hang up. */
  clientClosed(): void {
    this.releaseChannels();
    this.state = ConnectionState.Closing;
    this.sendMethod(0, { id: Method.ConnectionCloseOk });
    this.endAfterFlush();
  }

  private endAfterFlush(): void {
    this.flush();
    this.state = ConnectionState.Closed;
    this.transport.end();
    // A peer that never reads would keep the socket half-open; do not wait forever.
    setTimeout(() => this.destroy(), CLOSE_OK_TIMEOUT_MS).unref();
  }

  destroy(): void {
    if (this.state !== ConnectionState.Closed) {
      this.flush();
      this.state = ConnectionState.Closed;
    }
    this.transport.destroy();
  }

  private releaseChannels(): void {
    for (const ch of this.channels.values()) ch.cleanup();
    this.channels.clear();
    this.confirmChannels.clear();
  }

  private onTransportClosed(): void {
    this.state = ConnectionState.Closed;
    this.held = null;
    this.dropChunks();
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    this.releaseChannels();
    const vhost = this.vhost;
    if (vhost !== null) {
      for (const q of this.exclusiveQueues) vhost.removeQueue(q);
    }
    this.exclusiveQueues.clear();
    this.host.connectionClosed(this);
  }

  handshakeDone(): void {
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
  }

  /** Called by the broker's ticker about once a second. */
  tick(now: number): void {
    if (this.heartbeat === 0 || this.state !== ConnectionState.Open) return;
    const interval = this.heartbeat * 1000;
    if (now - this.lastReceived > 2 * interval && this.held === null) {
      this.host.logger.warn(
        `connection ${this.name}: missed heartbeats from client, timeout: ${this.heartbeat}s`,
      );
      this.destroy();
      return;
    }
    if (now - this.lastSent >= interval / 2) {
      writeHeartbeatFrame(this.out);
      this.scheduleFlush();
    }
  }

  // ------------------------------------------------------------------ output

  sendMethod(channel: number, m: AnyMethod): void {
    if (this.state === ConnectionState.Closed) return;
    writeMethodFrame(this.out, channel, m);
    this.stats.sendCnt++;
    this.scheduleFlush();
  }

  /** basic.deliver plus content, encoded straight into the output buffer. */
  sendDeliver(
    channel: number,
    consumerTag: string,
    deliveryTag: number,
    redelivered: boolean,
    exchange: string,
    routingKey: string,
    message: Message,
  ): void {
    writeDeliverFrame(
      this.out,
      channel,
      consumerTag,
      deliveryTag,
      redelivered,
      exchange,
      routingKey,
    );
    this.writeContent(channel, message);
  }

  /** A content-bearing method (get-ok, return) followed by the message's content. */
  sendContentMethod(channel: number, m: AnyMethod, message: Message): void {
    writeMethodFrame(this.out, channel, m);
    this.writeContent(channel, message);
  }

  private writeContent(channel: number, message: Message): void {
    const w = this.out;
    const header = message.header;
    const hs = w.startFrame(FrameType.Header, channel);
    w.bytes(header);
    w.endFrame(hs);
    this.stats.sendCnt++;
    if (message.blob !== null) {
      // A large body is read from its file slice by slice as the socket takes it, so a
      // connection never holds more than a slice of it; later output waits behind it.
      message.blob.retain();
      const head = w.take();
      this.chunkBytes += head.length;
      this.chunks.push(head, new BodyStream(message.blob, channel, this.frameMax));
      this.streams++;
      this.scheduleFlush();
      return;
    }
    const body = message.body;
    const size = body.length;
    if (size > 0) {
      const maxPayload = this.frameMax - 8;
      if (size < COPY_BODY_LIMIT && size <= maxPayload) {
        const bs = w.startFrame(FrameType.Body, channel);
        w.bytes(body);
        w.endFrame(bs);
      } else {
        for (let off = 0; off < size; off += maxPayload) {
          const end = Math.min(off + maxPayload, size);
          w.startFrame(FrameType.Body, channel);
          w.buf.writeUInt32BE(end - off, w.pos - 4);
          const head = w.take();
          this.chunkBytes += head.length + end - off;
          this.chunks.push(head, body.subarray(off, end));
          w.u8(0xce);
        }
      }
    }
    this.scheduleFlush();
  }

  /** Channels with confirms to send get them in the next flush, coalesced with `multiple`. */
  scheduleConfirms(ch: Channel): void {
    this.confirmChannels.add(ch);
    this.scheduleFlush();
  }

  scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    process.nextTick(flushConnection, this);
  }

  flush(): void {
    this.flushScheduled = false;
    if (this.confirmChannels.size > 0) this.writeConfirms();
    if (this.out.length === 0 && this.chunks.length === 0) return;
    if (this.state === ConnectionState.Closed || this.transport.destroyed) {
      this.out.reset();
      this.dropChunks();
      return;
    }
    this.lastSent = Date.now();
    // Store writes reach the kernel before the client hears of them (delivery markers).
    this.host.commit?.flushWrites();
    if (this.streams > 0) {
      this.flushWithStreams();
      return;
    }
    let ok: boolean;
    if (this.chunks.length === 0) {
      const w = this.out;
      const data = w.buf.subarray(0, w.pos);
      this.stats.sendOct += data.length;
      ok = this.transport.write(data);
      // The kernel took it all at once (nothing is queued in the socket): the buffer is free
      // again. Otherwise the socket holds it and the writer starts a new one.
      if (
        this.reusableOutput &&
        this.transport.writableLength === 0 &&
        w.buf.length <= REUSE_OUTPUT_MAX
      ) {
        w.reset();
      } else {
        w.take();
      }
    } else {
      this.chunks.push(this.out.take());
      this.transport.cork();
      ok = true;
      // No streams here (flushWithStreams handles those): every chunk is a buffer.
      for (const c of this.chunks as Buffer[]) {
        this.stats.sendOct += c.length;
        ok = this.transport.write(c) && ok;
      }
      this.chunks = [];
      this.chunkBytes = 0;
      this.transport.uncork();
    }
    if (!ok && this.transport.writableLength >= OUTPUT_HIGH_WATER) {
      this.outputBlocked = true;
    } else if (this.deliveriesDeferred || this.held !== null) {
      // The transport took it all: go on with held input and deliveries, after other I/O.
      this.deliveriesDeferred = false;
      setImmediate(() => {
        this.releaseHeld();
        this.resumeDeliveries();
      });
    }
  }

  private writeConfirms(): void {
    for (const ch of this.confirmChannels) {
      if (ch.state !== ChannelState.Open) continue;
      const upTo = ch.confirmUpTo;
      if (upTo <= ch.confirmSent) continue;
      const multiple = upTo - ch.confirmSent > 1;
      ch.confirmSent = upTo;
      writeMethodFrame(this.out, ch.id, { id: Method.BasicAck, deliveryTag: upTo, multiple });
      if (ch.confirmWaitSince !== 0) {
        const now = performance.now();
        ch.confirmLatency.count++;
        ch.confirmLatency.totalMs += now - ch.confirmWaitSince;
        ch.confirmWaitSince = upTo < ch.publishSeq ? now : 0;
      }
    }
    this.confirmChannels.clear();
  }

  /**
   * Deliveries may go out: the socket is not backed up, and what this tick wrote so far is under
   * the high-water mark (a queue drain must not encode its whole backlog before the flush).
   * A refusal for the latter is remembered, and the flush resumes deliveries.
   */
  canWrite(): boolean {
    if (this.outputBlocked) return false;
    if (this.streams > 0) {
      this.deliveriesDeferred = true;
      return false;
    }
    if (this.out.length + this.chunkBytes < OUTPUT_HIGH_WATER) return true;
    this.deliveriesDeferred = true;
    return false;
  }

  private onDrain(): void {
    if (!this.outputBlocked) return;
    this.outputBlocked = false;
    if (this.streams > 0) {
      this.flush();
      if (this.streams > 0) return;
    }
    this.deliveriesDeferred = false;
    this.releaseHeld();
    this.resumeDeliveries();
  }

  /** Output is over the high-water mark: queued in the transport, or encoded this tick. */
  private outputFull(): boolean {
    return (
      this.outputBlocked ||
      this.streams > 0 ||
      this.out.length + this.chunkBytes >= OUTPUT_HIGH_WATER
    );
  }

  /**
   * Flush when large bodies are queued: write everything in order, producing each body's frames
   * from its file a slice at a time, and stop (until 'drain') once the socket is backed up.
   */
  private flushWithStreams(): void {
    if (this.out.length > 0) {
      const tail = this.out.take();
      this.chunkBytes += tail.length;
      this.chunks.push(tail);
    }
    const chunks = this.chunks;
    let i = 0;
    let ok = true;
    this.transport.cork();
    try {
      while (i < chunks.length) {
        const c = chunks[i]!;
        if (c instanceof BodyStream) {
          if (!ok || this.transport.writableLength >= OUTPUT_HIGH_WATER) break;
          const slice = c.next(STREAM_SLICE);
          this.stats.sendOct += slice.length;
          ok = this.transport.write(slice) && ok;
          if (!c.done) continue;
          c.blob.release();
          this.streams--;
        } else {
          this.chunkBytes -= c.length;
          this.stats.sendOct += c.length;
          ok = this.transport.write(c) && ok;
        }
        i++;
      }
    } catch (err) {
      this.host.logger.error(
        `connection ${this.name}: cannot read a message body from disk: ${(err as Error).message}`,
      );
      this.transport.uncork();
      this.dropChunks();
      this.destroy();
      return;
    }
    this.transport.uncork();
    this.chunks = i === chunks.length ? [] : chunks.slice(i);
    if (this.streams > 0) {
      // Go on when the socket drains, or on the next turn if it did not fill.
      if (!ok) this.outputBlocked = true;
      else setImmediate(flushConnection, this);
      return;
    }
    if (this.deliveriesDeferred || this.held !== null) {
      this.deliveriesDeferred = false;
      setImmediate(() => {
        this.releaseHeld();
        this.resumeDeliveries();
      });
    }
  }

  /** Forget unsent output (the connection is gone), releasing bodies being streamed. */
  private dropChunks(): void {
    for (const c of this.chunks) if (c instanceof BodyStream) c.blob.release();
    this.chunks = [];
    this.chunkBytes = 0;
    this.streams = 0;
  }

  private resumeDeliveries(): void {
    for (const ch of this.channels.values()) {
      for (const c of ch.consumers.values()) c.queue.scheduleDrain();
    }
  }
}

/** Bytes of a large body read from disk and written per step. */
const STREAM_SLICE = 1024 * 1024;

/** A large body on its way out: body frames made from the blob file on demand. */
class BodyStream {
  readonly blob: Blob;
  private readonly channel: number;
  private readonly maxPayload: number;
  private offset = 0;

  constructor(blob: Blob, channel: number, frameMax: number) {
    this.blob = blob;
    this.channel = channel;
    this.maxPayload = frameMax - 8;
  }

  get done(): boolean {
    return this.offset >= this.blob.size;
  }

  /** The next body frames, about `budget` bytes of body, read straight into one buffer. */
  next(budget: number): Buffer {
    const n = Math.min(budget, this.blob.size - this.offset);
    const frames = Math.ceil(n / this.maxPayload);
    const buf = Buffer.allocUnsafe(n + frames * 8);
    let pos = 0;
    let left = n;
    while (left > 0) {
      const size = Math.min(left, this.maxPayload);
      buf[pos] = FrameType.Body;
      buf.writeUInt16BE(this.channel, pos + 1);
      buf.writeUInt32BE(size, pos + 3);
      this.blob.readInto(this.offset, size, buf, pos + 7);
      buf[pos + 7 + size] = 0xce;
      pos += size + 8;
      this.offset += size;
      left -= size;
    }
    return buf;
  }
}

interface HeldFrame {
  type: number;
  channelId: number;
  payload: Buffer;
}

function flushConnection(conn: Connection): void {
  conn.flush();
}

function endTurn(conn: Connection): void {
  conn.endTurn();
}

/** A backlogged publisher waits one more loop iteration, in which consumers' acks are read. */
function skipTurn(conn: Connection): void {
  setImmediate(endTurn, conn);
}

/** Anything thrown below a handler becomes an AmqpError; bugs become 541 and are logged. */
export function toAmqpError(err: unknown, logger: Logger): AmqpError {
  if (err instanceof AmqpError) return err;
  logger.error(
    `internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
  );
  return new AmqpError(ReplyCode.InternalError, 'internal error');
}

/**
 * The basic.deliver method frame, written field by field: the hottest encoder of the broker, so
 * it skips the generic method encoder's argument object (bench/micro measures both).
 */
export function writeDeliverFrame(
  w: Writer,
  channel: number,
  consumerTag: string,
  deliveryTag: number,
  redelivered: boolean,
  exchange: string,
  routingKey: string,
): void {
  const start = w.startFrame(FrameType.Method, channel);
  w.u32(Method.BasicDeliver);
  w.shortstr(consumerTag);
  w.u64(deliveryTag);
  w.u8(redelivered ? 1 : 0);
  w.shortstr(exchange);
  w.shortstr(routingKey);
  w.endFrame(start);
}
