import { EventEmitter } from 'node:events';
import {
  AmqpError,
  FrameType,
  Method,
  ReplyCode,
  decodeMethod,
  methodName,
} from '../protocol/index.js';
import type { AnyMethod, BasicProperties, Reader } from '../protocol/index.js';
import { Deque } from '../util/deque.js';
import { Call } from './call.js';
import { guard } from './call-options.js';
import type { CallOptions } from './call-options.js';
import { ContentAssembler, ContentKind } from './content-assembler.js';
import { consumerCancelledError } from './consumer.js';
import type { Consumer, ConsumerHost } from './consumer.js';
import { channelClosedError, connectionLostError, invalidArgument } from './errors.js';
import type { FrameOutput } from './frame-output.js';
import { Message, SettleKind } from './message.js';
import type { Body, ReturnedMessage, Settler } from './message.js';
import type { ResolvedOptions, UnconfirmedPolicy } from './options.js';
import { Publisher } from './publisher.js';
import type { Topology } from './topology.js';

export const ChannelState = {
  /** Waiting for the connection (first open or after a drop) or for channel.open-ok. */
  Recovering: 'recovering',
  Open: 'open',
  /** close() sent channel.close and waits for close-ok. */
  Closing: 'closing',
  Closed: 'closed',
} as const;
export type ChannelState = (typeof ChannelState)[keyof typeof ChannelState];

export interface ChannelEvents {
  /** A mandatory publish came back unroutable. */
  return: [message: ReturnedMessage];
  /** The channel closed for good: null when closed by the application. */
  close: [error: Error | null];
  /** The broker paused (false) or resumed (true) deliveries with channel.flow. */
  flow: [active: boolean];
}

/** What a channel uses of its connection. */
export interface ChannelHost {
  readonly reader: Reader;
  readonly options: ResolvedOptions;
  readonly topology: Topology;
  readonly output: FrameOutput;
  /** The frames of the current session can be written. */
  readonly sessionOpen: boolean;
  /** Increments whenever a session ends; delivery tags are only valid within one. */
  readonly epoch: number;
  releaseChannel(ch: ChannelCore): void;
  reportError(err: Error): void;
  protocolError(text: string): Error;
}

const RESOLVED = Promise.resolve();

/** Thrown inside recovery when the broker closed the channel and it must be opened again. */
class ReopenChannel extends Error {}

/**
 * The machinery of a channel: synchronous requests and their replies (matched explicitly, since a
 * reply's id is not always the request's + 1), content assembly, publishing (see Publisher), acks
 * coalesced per tick, closing, and re-opening on a new connection after a drop. `Channel` adds
 * the typed AMQP methods on top.
 */
export class ChannelCore extends EventEmitter<ChannelEvents> implements Settler, ConsumerHost {
  readonly id: number;
  /** Internal channels (topology recovery) are neither recorded nor recovered. */
  readonly internal: boolean;
  protected readonly host: ChannelHost;
  protected readonly publisher: Publisher;
  protected stateValue: ChannelState = ChannelState.Recovering;
  protected closeError: Error | null = null;
  /** The session this channel is open in at the broker, or -1. */
  protected epoch = -1;

  /** Requests sent and waiting for their reply, in order. */
  private readonly calls = new Deque<Call>();
  /** Requests waiting for the channel to (re)open. */
  private readonly unsent = new Deque<Call>();
  protected readonly consumers = new Map<string, Consumer>();
  private readonly content = new ContentAssembler();

  protected txMode = false;
  private txDirty = false;
  private txLost = false;
  /** basic.qos values in force, re-applied after a reconnect. */
  protected consumerPrefetch = 0;
  protected channelPrefetch = 0;
  private brokerFlow = true;

  /** Acks: every tag up to ackFloor is settled; an ack(multiple) up to pendingAck is owed. */
  private ackFloor = 0;
  private pendingAck = 0;

  private openWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private closeOk: (() => void) | null = null;
  private closing: Promise<void> | null = null;
  /** close() was called: no new publishes, even while it waits for confirms. */
  private closeRequested = false;
  private recovering = false;

  constructor(host: ChannelHost, id: number, internal: boolean) {
    super();
    this.host = host;
    this.id = id;
    this.internal = internal;
    this.publisher = new Publisher(host.output, id, host.options.unconfirmed);
  }

  get state(): ChannelState {
    return this.stateValue;
  }

  /** Open now (not closed, not waiting for a reconnect). */
  get isOpen(): boolean {
    return this.stateValue === ChannelState.Open;
  }

  /** Publishes written in confirm mode and not yet confirmed. */
  get unconfirmed(): number {
    return this.publisher.tracker.outstanding;
  }

  /** True in confirm mode. */
  get confirming(): boolean {
    return this.publisher.confirmMode;
  }

  /** Whether the broker lets deliveries flow on this channel (channel.flow). */
  get flowActive(): boolean {
    return this.brokerFlow;
  }

  // =================================================================== requests

  /**
   * Send a synchronous method and wait for its reply (`reply`, or `alt` for methods with two
   * possible answers). While the channel waits for a reconnect, the request waits too.
   */
  protected request(
    method: AnyMethod,
    reply: number,
    alt: number,
    options: CallOptions | undefined,
    retry: boolean,
    onOk: ((m: AnyMethod) => void) | null = null,
    direct = false,
  ): Promise<AnyMethod> {
    return this.call(method, reply, alt, options, retry, onOk, direct) as Promise<AnyMethod>;
  }

  protected call(
    method: AnyMethod,
    reply: number,
    alt: number,
    options: CallOptions | undefined,
    retry: boolean,
    onOk: ((m: AnyMethod) => void) | null,
    direct: boolean,
  ): Promise<AnyMethod | Message | null> {
    const st = this.stateValue;
    if (st === ChannelState.Closed || (st === ChannelState.Closing && !direct)) {
      return Promise.reject(channelClosedError(this.id, this.closeError));
    }
    return new Promise((resolve, reject) => {
      const c = new Call(method, reply, alt, retry, onOk);
      c.resolve = resolve;
      c.reject = reject;
      c.disarm = guard(options, methodName(method.id), (err) => {
        c.settled = true;
        reject(err);
      });
      if (c.settled) return;
      if (direct || (this.stateValue === ChannelState.Open && this.unsent.length === 0)) {
        this.sendCall(c);
      } else {
        this.unsent.push(c);
      }
    });
  }

  private sendCall(c: Call): void {
    this.sendMethod(c.method);
    this.calls.push(c);
  }

  protected sendMethod(m: AnyMethod): void {
    if (this.pendingAck !== 0) this.writePendingAck();
    this.host.output.sendMethod(this.id, m);
  }

  private onReply(m: AnyMethod): void {
    const c = this.calls.shift();
    if (c === undefined) {
      throw this.host.protocolError(`unexpected ${methodName(m.id)} on channel ${this.id}`);
    }
    if (m.id !== c.reply && m.id !== c.alt) {
      throw this.host.protocolError(
        `expected ${methodName(c.reply)} on channel ${this.id} in reply to ${methodName(c.method.id)}, got ${methodName(m.id)}`,
      );
    }
    if (m.id === Method.BasicGetOk) {
      // The message follows in header and body frames; the call settles when it is complete.
      this.content.kind = ContentKind.Get;
      this.content.getOk = m;
      this.content.getCall = c;
      return;
    }
    c.onOk?.(m);
    c.succeed(m.id === Method.BasicGetEmpty ? null : m);
  }

  // =================================================================== incoming frames

  /** @internal a frame for this channel. */
  onFrame(type: number, payload: Buffer): void {
    const closing = this.stateValue === ChannelState.Closing;
    if (type === FrameType.Method) {
      const m = decodeMethod(this.host.reader.reset(payload));
      if (closing) this.onMethodWhileClosing(m);
      else if (this.content.busy) {
        throw this.host.protocolError(
          `expected the content of a delivery on channel ${this.id}, got ${methodName(m.id)}`,
        );
      } else this.onMethod(m);
    } else if (closing) {
      // spec: after channel.close, everything but close and close-ok is discarded.
    } else if (type === FrameType.Header) {
      const done = this.content.header(this.host.reader.reset(payload));
      if (done === null) {
        throw this.host.protocolError(`content header without a method on channel ${this.id}`);
      }
      if (done) this.complete();
    } else if (type === FrameType.Body) {
      const done = this.content.bodyFrame(payload);
      if (done === null) {
        throw this.host.protocolError(`unexpected content body on channel ${this.id}`);
      }
      if (done) this.complete();
    }
  }

  private onMethod(m: AnyMethod): void {
    switch (m.id) {
      case Method.BasicDeliver:
        this.content.kind = ContentKind.Deliver;
        this.content.deliver = m;
        return;
      case Method.BasicAck:
        this.publisher.ack(m.deliveryTag, m.multiple);
        if (this.stateValue === ChannelState.Open) this.publisher.pump();
        return;
      case Method.BasicNack:
        this.publisher.nack(m.deliveryTag, m.multiple);
        if (this.stateValue === ChannelState.Open) this.publisher.pump();
        return;
      case Method.BasicReturn:
        this.content.kind = ContentKind.Return;
        this.content.returned = m;
        return;
      case Method.BasicCancel: {
        // RabbitMQ's consumer_cancel_notify: the broker cancelled a consumer.
        const c = this.consumers.get(m.consumerTag);
        if (c !== undefined) {
          this.consumers.delete(m.consumerTag);
          c.end(consumerCancelledError(c), true);
        }
        return;
      }
      case Method.ChannelFlow:
        this.brokerFlow = m.active;
        this.sendMethod({ id: Method.ChannelFlowOk, active: m.active });
        this.emit('flow', m.active);
        return;
      case Method.ChannelClose:
        this.onBrokerClose(m.replyCode, m.replyText, m.classId, m.methodId);
        return;
      default:
        this.onReply(m);
    }
  }

  private complete(): void {
    const a = this.content;
    const kind = a.kind;
    const props = a.properties!;
    const body = a.body!;
    if (kind === ContentKind.Deliver) {
      const d = a.deliver!;
      a.reset();
      const c = this.consumers.get(d.consumerTag);
      const noAck = c === undefined || c.brokerNoAck;
      if (noAck && d.deliveryTag === this.ackFloor + 1) this.ackFloor = d.deliveryTag;
      const msg = new Message(
        this,
        this.epoch,
        d.deliveryTag,
        d.redelivered,
        d.exchange,
        d.routingKey,
        d.consumerTag,
        -1,
        props,
        body,
        noAck,
      );
      // A delivery for a consumer this channel no longer knows cannot be acked safely: drop it.
      if (c !== undefined) c.deliver(msg);
    } else if (kind === ContentKind.Get) {
      const g = a.getOk!;
      const call = a.getCall!;
      a.reset();
      const noAck = (call.method as { noAck: boolean }).noAck;
      if (noAck && g.deliveryTag === this.ackFloor + 1) this.ackFloor = g.deliveryTag;
      const msg = new Message(
        this,
        this.epoch,
        g.deliveryTag,
        g.redelivered,
        g.exchange,
        g.routingKey,
        '',
        g.messageCount,
        props,
        body,
        noAck,
      );
      // The caller gave up (timeout/abort) while the message was on its way: give it back.
      if (call.settled) this.requeue(msg);
      else call.succeed(msg);
    } else if (kind === ContentKind.Return) {
      const r = a.returned!;
      a.reset();
      this.publisher.returned(r, body);
      this.emit('return', {
        replyCode: r.replyCode,
        replyText: r.replyText,
        exchange: r.exchange,
        routingKey: r.routingKey,
        properties: props,
        body,
      });
    }
  }

  // =================================================================== publishing

  /** Publish after option conversion; see Channel.publish. */
  protected publishRaw(
    exchange: string,
    routingKey: string,
    body: Body,
    mandatory: boolean,
    props: BasicProperties,
    wait?: CallOptions,
  ): Promise<void> {
    const st = this.stateValue;
    if (st === ChannelState.Closed || st === ChannelState.Closing || this.closeRequested) {
      return Promise.reject(channelClosedError(this.id, this.closeError));
    }
    if (this.txMode) this.txDirty = true;
    const payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : toBuffer(body);
    return this.publisher.publish(
      st === ChannelState.Open,
      exchange,
      routingKey,
      mandatory,
      props,
      payload,
      wait,
    );
  }

  /** Resolve once everything published so far is confirmed; reject if any of it failed. */
  waitForConfirms(options?: CallOptions): Promise<void> {
    if (this.stateValue === ChannelState.Closed) {
      return Promise.reject(channelClosedError(this.id, this.closeError));
    }
    return this.publisher.waitForConfirms(options);
  }

  protected enterConfirmMode(window: number, policy: UnconfirmedPolicy | undefined): void {
    this.publisher.enterConfirmMode(window, policy);
  }

  protected enterTxMode(): void {
    this.txMode = true;
  }

  /** tx.commit/rollback completed: the work after it belongs to a new transaction. */
  protected txEnded(): void {
    this.txDirty = false;
  }

  /** A commit must fail if the connection dropped during its transaction (its work is gone). */
  protected takeTxLost(): boolean {
    const lost = this.txLost;
    this.txLost = false;
    return lost;
  }

  // =================================================================== acknowledgements

  /** @internal Settler: ack/nack/reject a message of this channel. */
  settle(msg: Message, kind: SettleKind, multiple: boolean, requeue: boolean): void {
    if (msg.settled && !multiple) return;
    msg.settled = true;
    // After a reconnect the broker has requeued the message; its tag means nothing now. While
    // consumers are being restored the channel is not "open" yet but its deliveries are live.
    const st = this.stateValue;
    if (msg.epoch !== this.epoch || this.epoch === -1) return;
    if (st === ChannelState.Closing || st === ChannelState.Closed) return;
    if (this.txMode) this.txDirty = true;
    const tag = msg.deliveryTag;
    const out = this.host.output;
    if (kind === SettleKind.Ack && !multiple && tag === this.ackFloor + 1) {
      // In-order acks are coalesced into one ack(multiple) per tick.
      this.ackFloor = tag;
      if (this.pendingAck === 0) out.scheduleAck(this);
      this.pendingAck = tag;
      return;
    }
    if (this.pendingAck !== 0) this.writePendingAck();
    if (kind === SettleKind.Ack) {
      out.sendMethod(this.id, { id: Method.BasicAck, deliveryTag: tag, multiple });
    } else if (kind === SettleKind.Nack) {
      out.sendMethod(this.id, { id: Method.BasicNack, deliveryTag: tag, multiple, requeue });
    } else {
      out.sendMethod(this.id, { id: Method.BasicReject, deliveryTag: tag, requeue });
    }
    if (multiple ? tag > this.ackFloor : tag === this.ackFloor + 1) this.ackFloor = tag;
  }

  /** @internal write the coalesced ack; called when the connection flushes. */
  writePendingAck(): void {
    const tag = this.pendingAck;
    if (tag === 0) return;
    this.pendingAck = 0;
    if (this.epoch === -1 || this.stateValue === ChannelState.Closed) return;
    this.host.output.sendMethod(this.id, { id: Method.BasicAck, deliveryTag: tag, multiple: true });
  }

  /** @internal ConsumerHost: an iterator handed out a message of a noAck consumer. */
  autoAck(msg: Message): void {
    this.settle(msg, SettleKind.Ack, false, false);
  }

  /** @internal ConsumerHost: give a message nobody will process back to the queue. */
  requeue(msg: Message): void {
    if (!msg.settled) this.settle(msg, SettleKind.Reject, false, true);
  }

  /** @internal ConsumerHost */
  reportError(err: Error): void {
    this.host.reportError(err);
  }

  /** @internal ConsumerHost: implemented by Channel. */
  cancelConsumer(_consumer: Consumer, _options?: CallOptions): Promise<void> {
    return RESOLVED;
  }

  // =================================================================== consumers

  protected addConsumer(c: Consumer): void {
    if (this.consumers.has(c.tag)) {
      throw invalidArgument(`consumer tag '${c.tag}' is already used on channel ${this.id}`);
    }
    this.consumers.set(c.tag, c);
  }

  protected removeConsumer(c: Consumer): void {
    if (this.consumers.get(c.tag) === c) this.consumers.delete(c.tag);
  }

  /** @internal a server-named queue was renamed after a reconnect. */
  renameQueue(from: string, to: string): void {
    for (const c of this.consumers.values()) c.rename(from, to);
  }

  // =================================================================== open and recovery

  /** Resolves when the channel is open (now or after the reconnect in progress). */
  protected whenOpen(): Promise<void> {
    if (this.stateValue === ChannelState.Open) return RESOLVED;
    if (this.stateValue === ChannelState.Closed || this.stateValue === ChannelState.Closing) {
      return Promise.reject(channelClosedError(this.id, this.closeError));
    }
    return new Promise((resolve, reject) => this.openWaiters.push({ resolve, reject }));
  }

  /**
   * @internal Open the channel on the current session and restore its state: qos, confirm and tx
   * mode, consumers (same tags). Then send what waited. A consumer the broker refuses (its queue
   * is gone) ends with the error and the channel, which the broker closed, is opened again.
   */
  async reopen(): Promise<void> {
    const host = this.host;
    if (this.stateValue !== ChannelState.Recovering || !host.sessionOpen) return;
    this.recovering = true;
    try {
      for (let attempt = 0; attempt <= this.consumers.size + 1; attempt++) {
        try {
          await this.restore();
          break;
        } catch (err) {
          if (err instanceof ReopenChannel && attempt <= this.consumers.size) continue;
          if (err instanceof AmqpError && !err.closesConnection) {
            // The broker refused something the channel had (e.g. qos): it cannot be restored.
            this.recovering = false;
            this.closeForGood(err, null);
            host.reportError(err);
            return;
          }
          throw err;
        }
      }
    } finally {
      this.recovering = false;
    }
    if (this.stateValue !== ChannelState.Recovering) return;
    this.stateValue = ChannelState.Open;
    for (let c = this.unsent.shift(); c !== undefined; c = this.unsent.shift()) {
      if (!c.settled) this.sendCall(c);
    }
    this.publisher.pump();
    const ws = this.openWaiters;
    this.openWaiters = [];
    for (const w of ws) w.resolve();
  }

  private async restore(): Promise<void> {
    const epoch = this.host.epoch;
    this.epoch = -1;
    this.ackFloor = 0;
    this.pendingAck = 0;
    await this.direct({ id: Method.ChannelOpen, outOfBand: '' }, Method.ChannelOpenOk);
    // Delivery tags count from here, in this session.
    this.epoch = epoch;
    if (this.channelPrefetch !== 0) await this.directQos(this.channelPrefetch, true);
    if (this.publisher.confirmMode) {
      await this.direct({ id: Method.ConfirmSelect, nowait: false }, Method.ConfirmSelectOk);
      this.publisher.restartNumbering();
    }
    if (this.txMode) await this.direct({ id: Method.TxSelect }, Method.TxSelectOk);
    let prefetch = 0;
    for (const c of [...this.consumers.values()]) {
      if (c.active || c.cancelling || !c.isActive || !c.established) continue;
      if (c.prefetch !== prefetch) {
        await this.directQos(c.prefetch, false);
        prefetch = c.prefetch;
      }
      try {
        await this.direct(consumeMethod(c), Method.BasicConsumeOk);
        c.active = true;
      } catch (err) {
        if (err instanceof AmqpError && !err.closesConnection) {
          this.consumers.delete(c.tag);
          c.end(err, false);
          this.host.reportError(err);
          throw new ReopenChannel();
        }
        throw err;
      }
    }
    if (prefetch !== this.consumerPrefetch) await this.directQos(this.consumerPrefetch, false);
  }

  private direct(m: AnyMethod, reply: number): Promise<AnyMethod> {
    return this.request(m, reply, 0, undefined, false, null, true);
  }

  private directQos(count: number, global: boolean): Promise<AnyMethod> {
    return this.direct(
      { id: Method.BasicQos, prefetchSize: 0, prefetchCount: count, global },
      Method.BasicQosOk,
    );
  }

  /**
   * @internal The session ended; `recover` says whether a new one will follow. Requests that can
   * be repeated wait for it, the others fail; unconfirmed publishes follow the unconfirmed policy;
   * consumers drop what they buffered (the broker requeues it).
   */
  sessionLost(cause: Error, recover: boolean, culprit = 0): void {
    this.content.reset();
    this.ackFloor = 0;
    this.pendingAck = 0;
    this.epoch = -1;
    const st = this.stateValue;
    if (st === ChannelState.Closed) return;
    if (!recover || st === ChannelState.Closing || this.internal) {
      this.closeForGood(cause, null);
      return;
    }
    this.stateValue = ChannelState.Recovering;
    const sent = this.calls.drain();
    // The request the broker named when it closed the connection fails with that error: sent
    // again, it would only close the next connection too.
    const blamed = culprit === 0 ? -1 : sent.findIndex((c) => c.method.id === culprit);
    for (let i = sent.length - 1; i >= 0; i--) {
      const c = sent[i]!;
      if (c.settled) continue;
      if (i === blamed) c.fail(cause);
      else if (c.retry) this.unsent.unshift(c);
      else c.fail(connectionLostError(methodName(c.method.id), cause));
    }
    this.publisher.sessionLost(cause);
    for (const c of this.consumers.values()) c.sessionLost();
    if (this.txMode && this.txDirty) this.txLost = true;
  }

  // =================================================================== closing

  private onBrokerClose(code: number, text: string, classId: number, methodId: number): void {
    const err = AmqpError.fromClose(code, text, classId, methodId, false);
    this.host.output.sendMethod(this.id, { id: Method.ChannelCloseOk });
    if (this.recovering) {
      // Recovery reopens the channel; only the request in flight learns why.
      this.epoch = -1;
      for (const c of this.calls.drain()) c.fail(err);
      this.content.reset();
      return;
    }
    this.closeForGood(err, err);
  }

  private onMethodWhileClosing(m: AnyMethod): void {
    // spec: after channel.close only close and close-ok count; confirms are still worth reading.
    switch (m.id) {
      case Method.ChannelCloseOk:
        this.closeOk?.();
        return;
      case Method.ChannelClose:
        this.host.output.sendMethod(this.id, { id: Method.ChannelCloseOk });
        this.closeOk?.();
        return;
      case Method.BasicAck:
        this.publisher.ack(m.deliveryTag, m.multiple);
        return;
      case Method.BasicNack:
        this.publisher.nack(m.deliveryTag, m.multiple);
        return;
      default:
        return;
    }
  }

  /**
   * Close the channel. In confirm mode it first waits (up to `timeout` ms, default 10 s) for the
   * broker to confirm what was published, since brokers drop unsent confirms when a channel
   * closes; publishes still unconfirmed then fail with WARREN_ERR_CHANNEL_CLOSED.
   */
  close(options: { timeout?: number | undefined } = {}): Promise<void> {
    if (this.closing !== null) return this.closing;
    if (this.stateValue === ChannelState.Closed) return RESOLVED;
    this.closeRequested = true;
    this.closing = this.closeAfterConfirms(options.timeout ?? 10_000);
    return this.closing;
  }

  private async closeAfterConfirms(timeout: number): Promise<void> {
    if (
      this.publisher.confirmMode &&
      this.publisher.pending &&
      this.stateValue === ChannelState.Open
    ) {
      await this.waitForConfirms({ timeout }).catch(() => undefined);
    }
    if (this.stateValue !== ChannelState.Open || !this.host.sessionOpen) {
      this.closeForGood(null, null);
      return;
    }
    this.writePendingAck();
    this.stateValue = ChannelState.Closing;
    await new Promise<void>((resolve) => {
      this.closeOk = () => {
        this.closeOk = null;
        this.closeForGood(null, null);
        resolve();
      };
      this.host.output.sendMethod(this.id, {
        id: Method.ChannelClose,
        replyCode: ReplyCode.ReplySuccess,
        replyText: 'closed by the application',
        classId: 0,
        methodId: 0,
      });
    });
  }

  /**
   * @internal The channel is done: everything waiting fails, consumers end. `cause` is null for
   * an application close; `failed` is the broker's error when it closed the channel.
   */
  closeForGood(cause: Error | null, failed: AmqpError | null): void {
    if (this.stateValue === ChannelState.Closed) return;
    this.stateValue = ChannelState.Closed;
    this.closeError = cause;
    this.epoch = -1;
    const closedErr = channelClosedError(this.id, cause);
    const failedId = failed === null ? 0 : (failed.classId << 16) | failed.methodId;
    const sent = this.calls.drain();
    for (let i = 0; i < sent.length; i++) {
      const c = sent[i]!;
      c.fail(i === 0 && c.method.id === failedId ? failed! : closedErr);
    }
    for (const c of this.unsent.drain()) c.fail(closedErr);
    this.publisher.failAll(failedId === Method.BasicPublish ? failed! : closedErr, closedErr);
    const consumers = [...this.consumers.values()];
    this.consumers.clear();
    for (const c of consumers) c.end(cause === null ? null : closedErr, false);
    const ws = this.openWaiters;
    this.openWaiters = [];
    for (const w of ws) w.reject(closedErr);
    this.closeOk?.();
    this.host.releaseChannel(this);
    this.emit('close', cause);
  }
}

function toBuffer(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** basic.consume for a consumer, as first sent and as re-sent after a reconnect. */
export function consumeMethod(c: Consumer): AnyMethod {
  const o = c.options;
  const args =
    o.priority !== undefined ? { ...o.arguments, 'x-priority': o.priority } : (o.arguments ?? {});
  return {
    id: Method.BasicConsume,
    ticket: 0,
    queue: c.queue,
    consumerTag: c.tag,
    noLocal: false,
    noAck: c.brokerNoAck,
    exclusive: o.exclusive ?? false,
    nowait: false,
    arguments: args,
  };
}
