import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import {
  AmqpError,
  FrameParser,
  FrameType,
  Method,
  PROTOCOL_HEADER,
  Reader,
  ReplyCode,
  decodeMethod,
  methodName,
} from '../protocol/index.js';
import type { AnyMethod, FieldTable } from '../protocol/index.js';
import { Deferred, guard, pause } from './call-options.js';
import type { CallOptions } from './call-options.js';
import { Channel } from './channel.js';
import type { ChannelOptions, QueueOptions } from './channel.js';
import type { ChannelCore, ChannelHost } from './channel-core.js';
import {
  ClientError,
  ClientErrorCode,
  connectionClosedError,
  connectionLostError,
} from './errors.js';
import { FrameOutput } from './frame-output.js';
import { startOk, tuneOk } from './handshake.js';
import { Heartbeat } from './heartbeat.js';
import { MessageQueue } from './message-queue.js';
import type { MessageQueueOptions } from './message-queue.js';
import type { Message } from './message.js';
import type { ResolvedOptions } from './options.js';
import { Fanout, Router } from './patterns/pub-sub.js';
import type { ExchangeHelperOptions } from './patterns/pub-sub.js';
import { RpcClient, RpcServer } from './patterns/rpc.js';
import type { RpcReply, RpcServerOptions } from './patterns/rpc.js';
import { WorkQueue } from './patterns/work-queue.js';
import { Topology } from './topology.js';
import { recoverTopology } from './topology-recovery.js';
import { openTransport } from './transport.js';

export const ConnectionState = {
  Connecting: 'connecting',
  Open: 'open',
  /** The connection dropped; a new one is being opened and the old state restored. */
  Reconnecting: 'reconnecting',
  Closing: 'closing',
  Closed: 'closed',
} as const;
export type ConnectionState = (typeof ConnectionState)[keyof typeof ConnectionState];

export interface ReconnectingInfo {
  /** 1 for the first attempt after the drop. */
  attempt: number;
  /** Milliseconds until this attempt (jittered). */
  delay: number;
  /** Why the previous connection or attempt failed. */
  error: Error;
}

export interface ConnectionEvents {
  /** The broker stopped reading from this connection (resource alarm); publishes will stall. */
  blocked: [reason: string];
  unblocked: [];
  /** The connection dropped; reconnection starts. */
  disconnect: [error: Error];
  reconnecting: [info: ReconnectingInfo];
  /** Reconnected and restored: topology declared again, channels and consumers back. */
  reconnected: [info: { attempts: number }];
  /** Closed for good: null when closed by the application. */
  close: [error: Error | null];
  /** Something went wrong that did not close the connection (a failed handler, a topology entity that could not be restored). */
  error: [error: Error];
  /** A server-named queue got a new name when it was declared again after a reconnect. */
  queueRenamed: [from: string, to: string];
}

const CLOSE_TIMEOUT_MS = 5000;
/** Hard-error closes in a row (each session shorter than the reset time) before giving up. */
const MAX_HARD_ERRORS = 3;
const HARD_ERROR_RESET_MS = 10_000;

const RESOLVED = Promise.resolve();

interface Handshake {
  done(err: Error | null): void;
}

/**
 * A connection to an AMQP 0-9-1 broker (Warren or RabbitMQ). It owns one session at a time (a
 * socket or in-process stream, its parser and its output buffer); when a session drops and
 * reconnection is on, it opens a new one with jittered exponential backoff and restores what the
 * application had: exchanges, queues and bindings it declared, then each channel with its qos,
 * confirm mode and consumers. Frames are written into one buffer and flushed once per tick.
 */
export class Connection extends EventEmitter<ConnectionEvents> implements ChannelHost {
  /** @internal */
  readonly options: ResolvedOptions;
  /** @internal what to declare again after a reconnect */
  readonly topology = new Topology();
  /** @internal the reader every channel decodes with (frames are handled one at a time) */
  readonly reader = new Reader(Buffer.alloc(0));
  /** The broker's server-properties from connection.start (product, version, capabilities). */
  serverProperties: FieldTable = {};
  /** Negotiated limits of the current session. */
  frameMax = 0;
  channelMax = 0;
  heartbeat = 0;
  /** @internal */
  epoch = 0;
  /** @internal */
  sessionOpen = false;
  /** @internal where frames are written */
  readonly output = new FrameOutput();

  private stateValue: ConnectionState = ConnectionState.Connecting;
  private blockedReason: string | null = null;
  private transport: Duplex | null = null;
  private parser: FrameParser | null = null;
  private readonly channels = new Map<number, Channel>();
  private nextChannelId = 1;
  private handshake: Handshake | null = null;
  private readonly heartbeatWatch = new Heartbeat(this.output, (seconds) => {
    this.lostCause = new ClientError(
      ClientErrorCode.ConnectionLost,
      `no data from ${this.options.target} for two heartbeat intervals (${seconds} s)`,
    );
    this.transport?.destroy();
  });
  private lostCause: Error | null = null;
  private sessionStartedAt = 0;
  /** Sessions in a row the broker ended with a hard error. */
  private hardErrors = 0;
  private reconnectAbort: AbortController | null = null;
  private closePromise: Promise<void> | null = null;
  private closeResolvers: (() => void)[] = [];
  private closeCause: Error | null = null;
  private closeTimer: NodeJS.Timeout | null = null;
  private secretWaiter: Deferred<void> | null = null;
  private readonly frameHandler = {
    onFrame: (type: number, channel: number, payload: Buffer): void =>
      this.onFrame(type, channel, payload),
  };

  /** Use `connect()`. */
  constructor(options: ResolvedOptions) {
    super();
    this.options = options;
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  /** True between the handshake and a drop or close. */
  get isOpen(): boolean {
    return this.stateValue === ConnectionState.Open;
  }

  /** The reason of connection.blocked while the broker blocks this connection, else null. */
  get blocked(): string | null {
    return this.blockedReason;
  }

  /** The broker's capabilities table (publisher_confirms, direct_reply_to, ...). */
  get capabilities(): FieldTable {
    const c = this.serverProperties.capabilities;
    return c !== null && typeof c === 'object' && !Array.isArray(c) && !Buffer.isBuffer(c)
      ? (c as FieldTable)
      : {};
  }

  // ===================================================================== public API

  /** Open a channel; with `confirm` it is in confirm mode, with `prefetch` it has that qos. */
  async channel(options: ChannelOptions = {}): Promise<Channel> {
    const ch = this.newChannel(false);
    try {
      await new Promise<void>((resolve, reject) => {
        const disarm = guard(options, 'channel.open', reject);
        ch.ready().then(
          () => {
            disarm();
            resolve();
          },
          (err: Error) => {
            disarm();
            reject(err);
          },
        );
      });
      if (options.prefetch !== undefined) await ch.qos(options.prefetch, options);
      const confirm = options.confirm;
      if (confirm !== undefined && confirm !== false) {
        await ch.confirmSelect(confirm === true ? options : { ...options, ...confirm });
      }
    } catch (err) {
      void ch.close().catch(() => undefined);
      throw err;
    }
    return ch;
  }

  /**
   * The message-queue API on queue `name` (declared if needed; '' makes a server-named one):
   * `put`, blocking `get`, `poll`, `notify`, with explicit acknowledgement.
   */
  queue(name: string, options?: MessageQueueOptions): Promise<MessageQueue> {
    return MessageQueue.open(this, name, options);
  }

  /** Work queue: durable queue, persistent confirmed tasks, workers with fair dispatch. */
  workQueue(name: string, options?: QueueOptions): Promise<WorkQueue> {
    return WorkQueue.open(this, name, options);
  }

  /** Publish/subscribe over a fanout exchange. */
  fanout(exchange: string, options?: ExchangeHelperOptions): Promise<Fanout> {
    return Fanout.open(this, exchange, options);
  }

  /** Routing over a direct exchange: subscribers pick exact routing keys. */
  direct(exchange: string, options?: ExchangeHelperOptions): Promise<Router> {
    return Router.open(this, exchange, 'direct', options);
  }

  /** Topics over a topic exchange: subscribers pick patterns (`*` one word, `#` any). */
  topic(exchange: string, options?: ExchangeHelperOptions): Promise<Router> {
    return Router.open(this, exchange, 'topic', options);
  }

  /** A request/reply client (direct reply-to where the broker has it). */
  rpcClient(): Promise<RpcClient> {
    return RpcClient.open(this);
  }

  /** Serve requests from `queue` with `handler`; its result is the reply. */
  rpcServer(
    queue: string,
    handler: (request: Message) => RpcReply | Promise<RpcReply>,
    options?: RpcServerOptions,
  ): Promise<RpcServer> {
    return RpcServer.open(this, queue, handler, options);
  }

  /**
   * Close the connection: wait (up to `timeout` ms, default 10 s) for publishes awaiting
   * confirms, then connection.close and close-ok. What is still pending then fails with
   * WARREN_ERR_CHANNEL_CLOSED; consumers' iterators finish.
   */
  close(options: { timeout?: number | undefined } = {}): Promise<void> {
    if (this.closePromise !== null) return this.closePromise;
    if (this.stateValue === ConnectionState.Closed) return RESOLVED;
    const wasOpen = this.stateValue === ConnectionState.Open;
    this.stateValue = ConnectionState.Closing;
    this.reconnectAbort?.abort();
    this.closePromise = new Promise<void>((resolve) => this.closeResolvers.push(resolve));
    void this.closeGracefully(wasOpen, options.timeout ?? 10_000);
    return this.closePromise;
  }

  private async closeGracefully(wasOpen: boolean, timeout: number): Promise<void> {
    if (wasOpen) {
      const waits = [...this.channels.values()]
        .filter((c) => c.confirming && c.isOpen)
        .map((c) => c.waitForConfirms({ timeout }).catch(() => undefined));
      if (waits.length > 0) await Promise.all(waits);
    }
    const t = this.transport;
    if (t !== null && this.sessionOpen) {
      this.output.sendMethod(0, {
        id: Method.ConnectionClose,
        replyCode: ReplyCode.ReplySuccess,
        replyText: 'closed by the application',
        classId: 0,
        methodId: 0,
      });
      this.output.flush();
      this.closeTimer = setTimeout(() => t.destroy(), CLOSE_TIMEOUT_MS);
      this.closeTimer.unref();
    } else {
      // No open session (a handshake may be under way): nothing to say goodbye to.
      this.finalize(null);
    }
  }

  /** Send new credentials (connection.update-secret), e.g. a refreshed OAuth token. */
  async updateSecret(
    secret: string | Buffer,
    reason: string,
    options?: CallOptions,
  ): Promise<void> {
    if (!this.sessionOpen) throw connectionClosedError(this.closeCause);
    const d = new Deferred<void>();
    this.secretWaiter = d;
    const disarm = guard(options, 'connection.update-secret', (err) => d.reject(err));
    this.output.sendMethod(0, {
      id: Method.ConnectionUpdateSecret,
      newSecret: Buffer.isBuffer(secret) ? secret : Buffer.from(secret),
      reason,
    });
    if (typeof secret === 'string') this.options.password = secret;
    try {
      await d.promise;
    } finally {
      disarm();
    }
  }

  // ===================================================================== session

  /** @internal open the first session; connect() calls it. */
  async start(): Promise<void> {
    try {
      await this.openSession(this.options.signal);
      this.stateValue = ConnectionState.Open;
    } catch (err) {
      this.stateValue = ConnectionState.Closed;
      throw err;
    }
  }

  private openSession(outer: AbortSignal | undefined): Promise<void> {
    const o = this.options;
    return new Promise<void>((resolve, reject) => {
      const ac = new AbortController();
      let done = false;
      const finish = (err: Error | null): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        outer?.removeEventListener('abort', onAbort);
        this.handshake = null;
        if (err === null) {
          resolve();
          return;
        }
        const t = this.transport;
        this.transport = null;
        this.parser = null;
        t?.destroy();
        reject(err);
      };
      const timer = setTimeout(() => {
        ac.abort();
        finish(
          new ClientError(
            ClientErrorCode.ConnectFailed,
            `no AMQP connection to ${o.target} within ${o.connectTimeout} ms; check the address and that the broker is up (connectTimeout raises the limit)`,
          ),
        );
      }, o.connectTimeout);
      const onAbort = (): void => {
        ac.abort();
        finish(new ClientError(ClientErrorCode.Aborted, `connecting to ${o.target} was aborted`));
      };
      if (outer !== undefined) {
        if (outer.aborted) {
          onAbort();
          return;
        }
        outer.addEventListener('abort', onAbort, { once: true });
      }
      openTransport(o, ac.signal).then(
        (t) => {
          if (done) {
            t.destroy();
            return;
          }
          this.handshake = { done: finish };
          this.attach(t);
          t.write(PROTOCOL_HEADER);
        },
        (err: Error) => finish(err),
      );
    });
  }

  private attach(t: Duplex): void {
    this.transport = t;
    this.output.attach(t);
    this.parser = new FrameParser(this.frameHandler, 0xffff_ffff);
    this.heartbeatWatch.received = true;
    t.on('data', (chunk: Buffer) => {
      if (t !== this.transport) return;
      this.heartbeatWatch.received = true;
      try {
        this.parser!.push(chunk);
      } catch (err) {
        this.failSession(err as Error);
      }
    });
    t.on('drain', () => {
      if (t === this.transport) this.output.onDrain();
    });
    t.on('error', (err: Error) => {
      if (t === this.transport && this.lostCause === null) {
        this.lostCause = new ClientError(
          ClientErrorCode.ConnectionLost,
          `the connection to ${this.options.target} failed: ${err.message}`,
          { cause: err },
        );
      }
    });
    t.on('close', () => this.onTransportClose(t));
  }

  private onTransportClose(t: Duplex): void {
    if (t !== this.transport) return;
    this.transport = null;
    this.parser = null;
    const cause =
      this.lostCause ??
      new ClientError(
        ClientErrorCode.ConnectionLost,
        `the connection to ${this.options.target} was closed by the peer`,
      );
    this.lostCause = null;
    const h = this.handshake;
    if (h !== null) {
      h.done(
        cause instanceof AmqpError
          ? cause
          : new ClientError(
              ClientErrorCode.ConnectFailed,
              `the broker at ${this.options.target} closed the connection during the handshake (${cause.message}); check user, password and vhost`,
              { cause },
            ),
      );
      return;
    }
    this.endSession(cause);
  }

  /** A broken frame or protocol violation from the broker: say why and drop the session. */
  private failSession(err: Error): void {
    const t = this.transport;
    if (t === null) return;
    const amqp = err instanceof AmqpError;
    const code = amqp ? err.replyCode : ReplyCode.UnexpectedFrame;
    const cause =
      err instanceof ClientError || amqp
        ? err
        : new ClientError(
            ClientErrorCode.Protocol,
            `client error handling a frame: ${err.message}`,
            {
              cause: err,
            },
          );
    this.lostCause = cause;
    if (this.sessionOpen) {
      this.output.sendMethod(0, {
        id: Method.ConnectionClose,
        replyCode: code,
        replyText: (amqp ? err.replyText : `UNEXPECTED_FRAME - ${err.message}`).slice(0, 255),
        classId: 0,
        methodId: 0,
      });
      this.output.flush();
    }
    t.destroy();
  }

  private endSession(cause: Error): void {
    this.sessionOpen = false;
    this.epoch++;
    this.heartbeatWatch.stop();
    this.output.attach(null);
    this.blockedReason = null;
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    this.closeTimer = null;
    this.secretWaiter?.reject(connectionLostError('connection.update-secret', cause));
    this.secretWaiter = null;
    const st = this.stateValue;
    if (st === ConnectionState.Closing || st === ConnectionState.Closed) {
      this.finalize(null);
      return;
    }
    // A broker that keeps closing new sessions with a hard error (not an operator's 320) is
    // refusing something the client re-sends: stop instead of reconnecting in a loop.
    const lived = Date.now() - this.sessionStartedAt;
    if (lived > HARD_ERROR_RESET_MS) this.hardErrors = 0;
    if (cause instanceof AmqpError && cause.replyCode !== ReplyCode.ConnectionForced) {
      this.hardErrors++;
    }
    const recover =
      this.options.reconnect.enabled && !isFatal(cause) && this.hardErrors < MAX_HARD_ERRORS;
    const culprit =
      cause instanceof AmqpError && cause.classId !== 0
        ? (cause.classId << 16) | cause.methodId
        : 0;
    for (const ch of [...this.channels.values()]) ch.sessionLost(cause, recover, culprit);
    if (!recover) {
      this.finalize(cause);
      return;
    }
    if (st === ConnectionState.Open) {
      this.stateValue = ConnectionState.Reconnecting;
      this.emit('disconnect', cause);
      void this.reconnectLoop(cause);
    }
    // Already reconnecting: the attempt in progress fails and the loop goes on.
  }

  private async reconnectLoop(first: Error): Promise<void> {
    const rc = this.options.reconnect;
    const abort = new AbortController();
    this.reconnectAbort = abort;
    let delay = rc.initialDelay;
    let error = first;
    for (let attempt = 1; this.stateValue === ConnectionState.Reconnecting; attempt++) {
      if (attempt > rc.maxAttempts) {
        this.finalize(
          new ClientError(
            ClientErrorCode.ConnectionClosed,
            `gave up reconnecting to ${this.options.target} after ${rc.maxAttempts} attempts: ${error.message}`,
            { cause: error },
          ),
        );
        return;
      }
      // Jitter (50-100% of the delay) keeps many clients from reconnecting in lockstep.
      const wait = Math.round(delay * (0.5 + Math.random() * 0.5));
      this.emit('reconnecting', { attempt, delay: wait, error });
      await pause(wait, abort.signal);
      if (this.stateValue !== ConnectionState.Reconnecting) return;
      try {
        await this.openSession(abort.signal);
        await this.recoverAll();
        if (this.stateValue !== ConnectionState.Reconnecting || !this.sessionOpen) {
          throw this.lostCause ?? connectionLostError('recovery', null);
        }
        this.stateValue = ConnectionState.Open;
        this.reconnectAbort = null;
        // Channels opened after the last recovery round are opened now.
        for (const ch of this.channels.values()) {
          if (!ch.internal && ch.state === 'recovering') ch.reopen().catch(() => undefined);
        }
        this.emit('reconnected', { attempts: attempt });
        return;
      } catch (err) {
        error = err as Error;
        if (this.stateValue !== ConnectionState.Reconnecting) return;
        if (isFatal(error)) {
          this.transport?.destroy();
          this.finalize(error);
          return;
        }
        // A session that came up but could not be restored is dropped and tried again.
        if (this.transport !== null) {
          this.lostCause = error;
          this.transport.destroy();
        }
        delay = Math.min(rc.maxDelay, Math.max(1, delay) * rc.multiplier);
      }
    }
  }

  /** Declare the recorded topology again, then reopen every channel (and its consumers). */
  private async recoverAll(): Promise<void> {
    if (this.options.recoverTopology && !this.topology.isEmpty) await recoverTopology(this);
    // Channels opened while this runs are picked up too.
    for (let round = 0; round < 1000; round++) {
      const pending = [...this.channels.values()].filter(
        (c) => !c.internal && c.state === 'recovering',
      );
      if (pending.length === 0) return;
      for (const ch of pending) await ch.reopen();
    }
  }

  /** @internal TopologyRecoveryHost */
  renameQueue(from: string, to: string): void {
    this.topology.renameQueue(from, to);
    for (const c of this.channels.values()) c.renameQueue(from, to);
    this.emit('queueRenamed', from, to);
  }

  /** @internal TopologyRecoveryHost: a channel for the client's own use, not recovered. */
  async internalChannel(): Promise<Channel> {
    const ch = this.newChannel(true);
    await ch.reopen();
    if (!ch.isOpen) throw connectionLostError('topology recovery', null);
    return ch;
  }

  private newChannel(internal: boolean): Channel {
    const st = this.stateValue;
    if (st === ConnectionState.Closed || st === ConnectionState.Closing) {
      throw connectionClosedError(this.closeCause);
    }
    const ch = new Channel(this, this.allocateChannelId(), internal);
    this.channels.set(ch.id, ch);
    if (!internal && st === ConnectionState.Open && this.sessionOpen) {
      // A failure here is either a dropped session (the reconnect reopens the channel) or
      // reported by the channel itself.
      ch.reopen().catch(() => undefined);
    }
    return ch;
  }

  private allocateChannelId(): number {
    const max = this.channelMax === 0 ? 2047 : this.channelMax;
    for (let i = 0; i < max; i++) {
      const id = this.nextChannelId;
      this.nextChannelId = id >= max ? 1 : id + 1;
      if (!this.channels.has(id)) return id;
    }
    throw new ClientError(
      ClientErrorCode.ChannelLimit,
      `all ${max} channels of the connection are in use; close channels you no longer need`,
    );
  }

  /** @internal ChannelHost */
  releaseChannel(ch: ChannelCore): void {
    if (this.channels.get(ch.id) === ch) this.channels.delete(ch.id);
  }

  private finalize(err: Error | null): void {
    if (this.stateValue === ConnectionState.Closed) return;
    this.stateValue = ConnectionState.Closed;
    this.closeCause = err;
    this.reconnectAbort?.abort();
    this.heartbeatWatch.stop();
    this.handshake?.done(connectionClosedError(err));
    const t = this.transport;
    this.transport = null;
    t?.destroy();
    const cause = err === null ? null : connectionClosedError(err);
    for (const ch of [...this.channels.values()]) ch.closeForGood(cause, null);
    this.channels.clear();
    for (const r of this.closeResolvers) r();
    this.closeResolvers = [];
    this.emit('close', err);
  }

  // ===================================================================== incoming

  private onFrame(type: number, channel: number, payload: Buffer): void {
    if (channel === 0) {
      if (type === FrameType.Method)
        this.onConnectionMethod(decodeMethod(this.reader.reset(payload)));
      else if (type !== FrameType.Heartbeat) {
        throw this.protocolError(`content frame (type ${type}) on channel 0`);
      }
      return;
    }
    // Frames for a channel already gone (closed while they were in flight) are dropped.
    this.channels.get(channel)?.onFrame(type, payload);
  }

  private onConnectionMethod(m: AnyMethod): void {
    switch (m.id) {
      case Method.ConnectionStart:
        this.serverProperties = m.serverProperties;
        this.output.sendMethod(0, startOk(this.options, m.mechanisms));
        return;
      case Method.ConnectionTune: {
        const ok = tuneOk(this.options, m.channelMax, m.frameMax, m.heartbeat);
        this.channelMax = ok.channelMax;
        this.frameMax = ok.frameMax;
        this.heartbeat = ok.heartbeat;
        this.output.frameMax = ok.frameMax;
        this.parser!.maxFrameSize = ok.frameMax === 0 ? 0xffff_ffff : ok.frameMax;
        this.output.sendMethod(0, ok);
        this.output.sendMethod(0, {
          id: Method.ConnectionOpen,
          virtualHost: this.options.vhost,
          capabilities: '',
          insist: false,
        });
        return;
      }
      case Method.ConnectionOpenOk:
        this.sessionOpen = true;
        this.sessionStartedAt = Date.now();
        this.heartbeatWatch.start(this.heartbeat);
        this.handshake?.done(null);
        return;
      case Method.ConnectionClose: {
        const err = AmqpError.fromClose(m.replyCode, m.replyText, m.classId, m.methodId, true);
        this.output.sendMethod(0, { id: Method.ConnectionCloseOk });
        this.output.flush();
        this.lostCause = err;
        this.transport?.end();
        this.transport?.destroy();
        return;
      }
      case Method.ConnectionCloseOk:
        this.transport?.destroy();
        return;
      case Method.ConnectionBlocked:
        this.blockedReason = m.reason;
        this.emit('blocked', m.reason);
        return;
      case Method.ConnectionUnblocked:
        this.blockedReason = null;
        this.emit('unblocked');
        return;
      case Method.ConnectionUpdateSecretOk:
        this.secretWaiter?.resolve();
        this.secretWaiter = null;
        return;
      default:
        throw this.protocolError(`unexpected ${methodName(m.id)} on channel 0`);
    }
  }

  // ===================================================================== ChannelHost misc

  /** @internal */
  reportError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  /** @internal an error for a protocol violation by the broker; throwing it drops the session. */
  protocolError(text: string): Error {
    return new ClientError(ClientErrorCode.Protocol, `protocol violation by the broker: ${text}`);
  }
}

/** Errors that another attempt would only repeat: credentials, permissions, missing vhost. */
function isFatal(err: Error): boolean {
  if (err instanceof AmqpError) {
    return (
      err.replyCode === ReplyCode.AccessRefused ||
      err.replyCode === ReplyCode.NotAllowed ||
      err.replyCode === ReplyCode.InvalidPath
    );
  }
  return (
    err instanceof ClientError &&
    (err.code === ClientErrorCode.InvalidArgument || err.code === ClientErrorCode.InvalidUrl)
  );
}
