import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { AmqpError } from '../client/index.js';
import type { Channel, Connection, Consumer, FieldTable, Message } from '../client/index.js';
import {
  TransferError,
  TransferErrorCode,
  codeFromWire,
  invalidTransferArgument,
} from './errors.js';
import { IncomingTransfer } from './incoming-transfer.js';
import type { IncomingLimits } from './incoming-transfer.js';
import { OfferListener } from './offer-listener.js';
import type { AcceptOptions } from './offer-listener.js';
import { OutgoingTransfer } from './outgoing-transfer.js';
import {
  DEFAULT_ACCEPT_TIMEOUT,
  DEFAULT_CHUNK_SIZE,
  DEFAULT_MAX_RETRIES,
  DEFAULT_QUEUE_EXPIRES,
  DEFAULT_RETRY_INTERVAL,
  DEFAULT_SENDER_WINDOW,
  DEFAULT_TIMEOUT,
  DEFAULT_WINDOW,
  Header,
  MAX_CHUNK_SIZE,
  MAX_WINDOW,
  MessageKind,
  PROTOCOL_VERSION,
  describeValue,
  intHeader,
  offerFromJson,
  offerToTable,
  protocolError,
  stringHeader,
} from './protocol.js';
import type { TransferMeta, TransferOffer } from './protocol.js';
import { openSource } from './sources.js';
import type { TransferSource } from './sources.js';
import type { TransferHost } from './transfer-host.js';

/** Defaults for the endpoint's transfers; each can be overridden per transfer. */
export interface TransferEndpointOptions {
  /** Bytes per chunk of outgoing transfers (default 64 KiB, the seed's). */
  chunkSize?: number | undefined;
  /** Receiver window: chunks requested ahead of what the application consumed (default 32). */
  window?: number | undefined;
  /** Sender window: most chunks a receiver may have in flight (default 128). */
  senderWindow?: number | undefined;
  /** Silence from the peer (ms) after which a transfer fails (default 60 s). */
  timeout?: number | undefined;
  /** How long (ms) an offer waits for a receiver to start (default 5 min). */
  acceptTimeout?: number | undefined;
  /** A chunk not received this long (ms) after it was requested is requested again (default 5 s). */
  retryInterval?: number | undefined;
  /** Times a chunk that fails its CRC is requested again before the transfer fails (default 5). */
  maxRetries?: number | undefined;
  /** x-expires (ms) of the endpoint's queue, so it outlives a reconnect but not a dead process long (default 5 min). */
  queueExpires?: number | undefined;
  /** Messages the endpoint's consumer may hold unacknowledged (default 256). */
  prefetch?: number | undefined;
}

export interface SendOptions {
  chunkSize?: number | undefined;
  /** MIME type of the payload, passed to the receiver. */
  contentType?: string | undefined;
  /** A name for the payload (default: the file's name for `{ path }` sources). */
  name?: string | undefined;
  /** Application metadata passed to the receiver. */
  meta?: TransferMeta | undefined;
  /** SHA-256 (hex) of the payload if already known; the receiver then checks against it too. */
  sha256?: string | undefined;
  timeout?: number | undefined;
  acceptTimeout?: number | undefined;
  /** Sender window (chunks). */
  window?: number | undefined;
  /** Aborts the transfer. */
  signal?: AbortSignal | undefined;
  /** `send` only: declare the destination queue (durable) first (default true). */
  declare?: boolean | undefined;
}

export interface ReceiveOptions {
  /** Receiver window (chunks). */
  window?: number | undefined;
  timeout?: number | undefined;
  retryInterval?: number | undefined;
  maxRetries?: number | undefined;
  /** Aborts the transfer. */
  signal?: AbortSignal | undefined;
}

export interface TransferEndpointEvents {
  /** A message that could not be handled (malformed, from an unknown protocol version). */
  error: [error: Error];
  close: [];
}

const EMPTY = Buffer.alloc(0);
const ACK_BATCH = 32;
const ACK_DELAY = 5;

/**
 * One side of any number of transfers over one connection: both sender and receiver. It owns a
 * queue (`warren.transfer.<random>`, non-exclusive with x-expires, so it survives a reconnect and
 * disappears a while after its process does) where peers send requests, chunks, done and abort,
 * a confirm-mode channel for control messages and a plain one for chunks. Transfers are told
 * apart by their unique ids, so any number run in parallel, with one peer or many.
 */
export class TransferEndpoint extends EventEmitter<TransferEndpointEvents> implements TransferHost {
  readonly connection: Connection;
  /** Where peers reach this endpoint. */
  readonly queue: string;
  private readonly ctl: Channel;
  private readonly data: Channel;
  private consumer: Consumer | null = null;
  private readonly outgoing = new Map<string, OutgoingTransfer>();
  private readonly incoming = new Map<string, IncomingTransfer>();
  private readonly declared = new Set<string>();
  private readonly defaults: Required<{ [K in keyof TransferEndpointOptions]: number }>;
  private timer: NodeJS.Timeout | null = null;
  private tickMs = 1000;
  private unacked: Message | null = null;
  private unackedCount = 0;
  private ackTimer: NodeJS.Timeout | null = null;
  private closing: Promise<void> | null = null;
  private readonly onReconnected = (): void => {
    for (const t of [...this.incoming.values()]) t.onReconnected();
    for (const t of [...this.outgoing.values()]) t.onReconnected();
  };
  private readonly onConnectionClose = (err: Error | null): void => {
    if (this.closing !== null) return;
    this.closing = Promise.resolve();
    this.connection.off('reconnected', this.onReconnected);
    this.shutDown(
      new TransferError(
        TransferErrorCode.Closed,
        '',
        `the connection of the transfer endpoint closed${err !== null ? `: ${err.message}` : ''}`,
        err !== null ? { cause: err } : undefined,
      ),
    );
    this.emit('close');
  };

  private constructor(
    conn: Connection,
    queue: string,
    ctl: Channel,
    data: Channel,
    defaults: Required<{ [K in keyof TransferEndpointOptions]: number }>,
  ) {
    super();
    this.connection = conn;
    this.queue = queue;
    this.ctl = ctl;
    this.data = data;
    this.defaults = defaults;
  }

  /** Open an endpoint on `conn`: declares its queue and starts consuming it. */
  static async open(
    conn: Connection,
    options: TransferEndpointOptions = {},
  ): Promise<TransferEndpoint> {
    const d = {
      chunkSize: options.chunkSize ?? DEFAULT_CHUNK_SIZE,
      window: options.window ?? DEFAULT_WINDOW,
      senderWindow: options.senderWindow ?? DEFAULT_SENDER_WINDOW,
      timeout: options.timeout ?? DEFAULT_TIMEOUT,
      acceptTimeout: options.acceptTimeout ?? DEFAULT_ACCEPT_TIMEOUT,
      retryInterval: options.retryInterval ?? DEFAULT_RETRY_INTERVAL,
      maxRetries: options.maxRetries ?? DEFAULT_MAX_RETRIES,
      queueExpires: options.queueExpires ?? DEFAULT_QUEUE_EXPIRES,
      prefetch: options.prefetch ?? 256,
    };
    checkChunkSize(d.chunkSize);
    checkWindow('window', d.window);
    checkWindow('senderWindow', d.senderWindow);
    checkMs('timeout', d.timeout);
    checkMs('acceptTimeout', d.acceptTimeout);
    checkMs('retryInterval', d.retryInterval);
    checkMs('queueExpires', d.queueExpires);
    if (!Number.isInteger(d.maxRetries) || d.maxRetries < 0) {
      throw invalidTransferArgument(`maxRetries must be a whole number, got ${d.maxRetries}`);
    }
    const queue = `warren.transfer.${randomBytes(12).toString('base64url')}`;
    const ctl = await conn.channel({ confirm: { unconfirmed: 'retry' }, prefetch: d.prefetch });
    let data: Channel | null = null;
    try {
      await ctl.queueDeclare(queue, { expires: d.queueExpires });
      data = await conn.channel();
      const ep = new TransferEndpoint(conn, queue, ctl, data, d);
      ep.consumer = await ctl.consume(queue, (m) => ep.onMessage(m));
      conn.on('reconnected', ep.onReconnected);
      conn.once('close', ep.onConnectionClose);
      // The channel closing under us, or the broker cancelling the consumer (someone deleted the
      // queue): the endpoint cannot hear its peers any more.
      const broken = (what: string, err: Error | null): void => {
        if (ep.closing !== null || err === null) return;
        ep.closing = ep.closeNow(
          new TransferError(TransferErrorCode.Closed, '', `${what}: ${err.message}`, {
            cause: err,
          }),
        );
      };
      ctl.once('close', (err) => broken("the transfer endpoint's channel closed", err));
      void ep.consumer.closed.then((err) =>
        broken(`the transfer endpoint stopped consuming its queue '${queue}'`, err),
      );
      return ep;
    } catch (err) {
      await ctl.close().catch(() => undefined);
      await data?.close().catch(() => undefined);
      throw err;
    }
  }

  /** Transfers in progress (or offered and not yet started) from this endpoint. */
  get outgoingCount(): number {
    return this.outgoing.size;
  }

  /** Transfers being received (or accepted and not yet read) by this endpoint. */
  get incomingCount(): number {
    return this.incoming.size;
  }

  get isOpen(): boolean {
    return this.closing === null;
  }

  // ------------------------------------------------------------------ sending

  /**
   * Prepare a transfer without announcing it: the caller passes `transfer.offer` to the receiver
   * in a message of its own (an RPC request or reply), and the receiver calls `receive(offer)`.
   */
  async offer(source: TransferSource, options: SendOptions = {}): Promise<OutgoingTransfer> {
    this.checkOpen();
    const chunkSize = options.chunkSize ?? this.defaults.chunkSize;
    checkChunkSize(chunkSize);
    const window = options.window ?? this.defaults.senderWindow;
    checkWindow('window', window);
    const timeout = options.timeout ?? this.defaults.timeout;
    checkMs('timeout', timeout);
    const acceptTimeout = options.acceptTimeout ?? this.defaults.acceptTimeout;
    checkMs('acceptTimeout', acceptTimeout);
    if (options.sha256 !== undefined && !/^[0-9a-f]{64}$/.test(options.sha256)) {
      throw invalidTransferArgument('sha256 must be 64 lowercase hex digits');
    }
    const id = randomBytes(16).toString('base64url');
    const reader = await openSource(source, chunkSize, id);
    const offer: TransferOffer = {
      version: PROTOCOL_VERSION,
      id,
      sender: this.queue,
      size: reader.size,
      chunkSize,
      window,
      timeout,
      sha256: options.sha256,
      contentType: options.contentType,
      name: options.name ?? reader.name,
      meta: options.meta,
    };
    const t = new OutgoingTransfer(this, offer, reader, { timeout, acceptTimeout });
    this.outgoing.set(id, t);
    bindSignal(options.signal, () => t.abort('aborted by its AbortSignal'));
    return t;
  }

  /**
   * Offer a payload to whoever consumes `queue` (declared durable first unless `declare: false`).
   * The offer is published persistent and mandatory, expiring after `acceptTimeout`. Await
   * `transfer.done` for the outcome.
   */
  async send(
    queue: string,
    source: TransferSource,
    options: SendOptions = {},
  ): Promise<OutgoingTransfer> {
    const t = await this.offer(source, options);
    try {
      if (options.declare !== false) await this.ensureQueue(queue);
      await this.ctl.publish('', queue, EMPTY, {
        type: MessageKind.Offer,
        correlationId: t.id,
        replyTo: this.queue,
        contentType: t.offer.contentType,
        mandatory: true,
        persistent: true,
        expiration: options.acceptTimeout ?? this.defaults.acceptTimeout,
        headers: offerToTable(t.offer),
      });
    } catch (err) {
      t.close(
        new TransferError(
          TransferErrorCode.PeerGone,
          t.id,
          `the offer of transfer ${t.id} could not be delivered to queue '${queue}': ${(err as Error).message}`,
          { cause: err },
        ),
      );
      throw t.failure ?? err;
    }
    return t;
  }

  // ------------------------------------------------------------------ receiving

  /** Start receiving a transfer whose offer came some other way (e.g. inside an RPC message). */
  receive(offer: TransferOffer, options: ReceiveOptions = {}): IncomingTransfer {
    this.checkOpen();
    const o = offerFromJson(offer);
    if (this.incoming.has(o.id)) {
      throw invalidTransferArgument(`transfer ${o.id} is already being received by this endpoint`);
    }
    const limits: IncomingLimits = {
      window: options.window ?? this.defaults.window,
      timeout: options.timeout ?? this.defaults.timeout,
      retryInterval: options.retryInterval ?? this.defaults.retryInterval,
      maxRetries: options.maxRetries ?? this.defaults.maxRetries,
    };
    checkWindow('window', limits.window);
    checkMs('timeout', limits.timeout);
    checkMs('retryInterval', limits.retryInterval);
    const t = new IncomingTransfer(this, o, limits);
    this.incoming.set(o.id, t);
    bindSignal(options.signal, () => t.abort('aborted by its AbortSignal'));
    return t;
  }

  /** True while a transfer with this id is being received here. */
  isReceiving(id: string): boolean {
    return this.incoming.has(id);
  }

  /**
   * Take offers from `queue` (declared durable first unless `declare: false`), as an async
   * iterator of incoming transfers. Each offer is acknowledged when the iterator hands it out:
   * from then on this endpoint is responsible for it.
   */
  accept(queue: string, options: AcceptOptions = {}): Promise<OfferListener> {
    this.checkOpen();
    return OfferListener.open(this, queue, options);
  }

  /** @internal declare `name` (durable) unless it exists already, with whatever arguments. */
  async ensureQueue(name: string): Promise<void> {
    if (this.declared.has(name)) return;
    const ch = await this.connection.channel();
    try {
      await ch.queueDeclare(name, { durable: true });
    } catch (err) {
      // 406: it exists with other properties (say, a quorum queue); use it as it is.
      if (!(err instanceof AmqpError) || err.replyCode !== 406) throw err;
      const check = await this.connection.channel();
      try {
        await check.queueCheck(name);
      } finally {
        await check.close().catch(() => undefined);
      }
    } finally {
      await ch.close().catch(() => undefined);
    }
    this.declared.add(name);
  }

  // ------------------------------------------------------------------ TransferHost

  /** @internal */
  control(to: string, kind: MessageKind, id: string, headers: FieldTable): Promise<void> {
    return this.ctl.publish('', to, EMPTY, {
      type: kind,
      correlationId: id,
      replyTo: this.queue,
      mandatory: true,
      headers: { [Header.Version]: PROTOCOL_VERSION, ...headers },
    });
  }

  /** @internal */
  chunk(to: string, id: string, headers: FieldTable, body: Buffer): Promise<void> {
    return this.data.publish('', to, body, {
      type: MessageKind.Chunk,
      correlationId: id,
      headers: { [Header.Version]: PROTOCOL_VERSION, ...headers },
    });
  }

  /** @internal */
  release(id: string, side: 'incoming' | 'outgoing'): void {
    if (side === 'incoming') this.incoming.delete(id);
    else this.outgoing.delete(id);
  }

  /** @internal */
  watch(interval: number): void {
    if (this.timer !== null && interval >= this.tickMs) return;
    this.tickMs = Math.min(this.timer === null ? 1000 : this.tickMs, interval);
    if (this.timer !== null) clearTimeout(this.timer);
    this.schedule();
  }

  /** @internal report something that went wrong outside any one transfer's control. */
  report(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  private schedule(): void {
    this.timer = setTimeout(() => this.onTick(), this.tickMs);
    this.timer.unref();
  }

  private onTick(): void {
    this.timer = null;
    const now = Date.now();
    for (const t of [...this.outgoing.values()]) t.tick(now);
    for (const t of [...this.incoming.values()]) t.tick(now);
    if (this.closing === null && this.outgoing.size + this.incoming.size > 0) this.schedule();
    else this.tickMs = 1000;
  }

  // ------------------------------------------------------------------ incoming messages

  private onMessage(m: Message): void {
    try {
      this.dispatch(m);
    } catch (err) {
      this.report(err as Error);
    }
    // Acks go out in batches (one ack with `multiple` per ACK_BATCH messages or ACK_DELAY ms):
    // per-message acks cost the receiver a socket write per chunk.
    this.unacked = m;
    if (++this.unackedCount >= ACK_BATCH) this.flushAcks();
    else this.ackTimer ??= setTimeout(this.flushAcks, ACK_DELAY);
  }

  private readonly flushAcks = (): void => {
    if (this.ackTimer !== null) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    const m = this.unacked;
    this.unacked = null;
    this.unackedCount = 0;
    m?.ack(true);
  };

  private dispatch(m: Message): void {
    const p = m.properties;
    const id = p.correlationId;
    const h = p.headers ?? {};
    if (id === undefined || id === '') {
      throw protocolError(
        '',
        `a ${p.type ?? 'message'} without a correlation id (the transfer id)`,
      );
    }
    const version = h[Header.Version];
    if (version !== PROTOCOL_VERSION) {
      throw protocolError(
        id,
        `a ${p.type ?? 'message'} of protocol version ${describeValue(version)}`,
      );
    }
    switch (p.type) {
      case MessageKind.Chunk:
        this.incoming.get(id)?.onChunk(h, m.body);
        return;
      case MessageKind.Request:
        this.onRequest(id, h, p.replyTo);
        return;
      case MessageKind.Done:
        this.outgoing.get(id)?.onDone(h);
        return;
      case MessageKind.Abort: {
        const code = codeFromWire(h[Header.Code]);
        const reason = stringHeader(h, Header.Reason, id) ?? 'no reason given';
        this.outgoing.get(id)?.onAbort(code, reason);
        this.incoming.get(id)?.onAbort(code, reason);
        return;
      }
      case MessageKind.Ping:
        this.outgoing.get(id)?.onPing();
        this.incoming.get(id)?.onPing(h[Header.Resume] === true);
        return;
      default:
        throw protocolError(id, `unexpected message type '${p.type ?? ''}' on an endpoint queue`);
    }
  }

  private onRequest(id: string, h: FieldTable, replyTo: string | undefined): void {
    if (replyTo === undefined || replyTo === '') {
      throw protocolError(id, 'a request without reply_to');
    }
    const t = this.outgoing.get(id);
    if (t === undefined) {
      // Finished, timed out, aborted, or never ours: the receiver should stop asking.
      this.control(replyTo, MessageKind.Abort, id, {
        [Header.Code]: TransferErrorCode.Aborted,
        [Header.Reason]: `the sender has no transfer ${id} (it finished, timed out or was aborted)`,
      }).catch(() => undefined);
      return;
    }
    let offset: number;
    let count: number;
    let verified: number;
    try {
      offset = intHeader(h, Header.Offset, id, 0, Number.MAX_SAFE_INTEGER);
      count = intHeader(h, Header.Count, id, 1, MAX_WINDOW);
      verified = intHeader(h, Header.Verified, id, 0, Number.MAX_SAFE_INTEGER);
    } catch (err) {
      t.close(err as TransferError);
      return;
    }
    t.onRequest(offset, count, verified, replyTo);
  }

  // ------------------------------------------------------------------ closing

  /**
   * Close: transfers in progress fail with WARREN_ERR_TRANSFER_CLOSED (their peers get an abort),
   * the queue is deleted and the channels closed. The connection stays open.
   */
  close(): Promise<void> {
    this.closing ??= this.closeNow(
      new TransferError(TransferErrorCode.Closed, '', 'the transfer endpoint was closed'),
    );
    return this.closing;
  }

  private async closeNow(cause: TransferError): Promise<void> {
    this.connection.off('reconnected', this.onReconnected);
    this.connection.off('close', this.onConnectionClose);
    this.shutDown(cause);
    this.flushAcks();
    await this.consumer?.cancel().catch(() => undefined);
    // Let the aborts just sent reach the peers.
    await this.ctl.waitForConfirms({ timeout: 2000 }).catch(() => undefined);
    await this.ctl.queueDelete(this.queue).catch(() => undefined);
    await this.ctl.close().catch(() => undefined);
    await this.data.close().catch(() => undefined);
    this.emit('close');
  }

  private shutDown(err: TransferError): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const t of [...this.outgoing.values()]) {
      t.close(
        new TransferError(err.code, t.id, `transfer ${t.id} stopped: ${err.message}`, {
          cause: err,
        }),
      );
    }
    for (const t of [...this.incoming.values()]) {
      t.close(
        new TransferError(err.code, t.id, `transfer ${t.id} stopped: ${err.message}`, {
          cause: err,
        }),
      );
    }
  }

  private checkOpen(): void {
    if (this.closing !== null) {
      throw new TransferError(
        TransferErrorCode.Closed,
        '',
        'the transfer endpoint is closed; open a new one with TransferEndpoint.open()',
      );
    }
  }
}

function bindSignal(signal: AbortSignal | undefined, abort: () => void): void {
  if (signal === undefined) return;
  if (signal.aborted) {
    abort();
    return;
  }
  signal.addEventListener('abort', abort, { once: true });
}

function checkChunkSize(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_CHUNK_SIZE) {
    throw invalidTransferArgument(
      `chunkSize must be a whole number of bytes from 1 to ${MAX_CHUNK_SIZE}, got ${n}`,
    );
  }
}

function checkWindow(name: string, n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_WINDOW) {
    throw invalidTransferArgument(
      `${name} must be a whole number of chunks from 1 to ${MAX_WINDOW}, got ${n}`,
    );
  }
}

function checkMs(name: string, n: number): void {
  if (!Number.isFinite(n) || n <= 0 || n > 0x7fff_ffff) {
    throw invalidTransferArgument(`${name} must be a positive number of milliseconds, got ${n}`);
  }
}
