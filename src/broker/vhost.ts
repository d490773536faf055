import { randomBytes } from 'node:crypto';
import { AmqpError, amqpErrors, Decimal, ReplyCode, TypedValue } from '../protocol/index.js';
import type { FieldTable, FieldValue } from '../protocol/index.js';
import { Binding, fieldTypeName } from './binding.js';
import type { Destination } from './binding.js';
import { DirectExchange } from './exchange/direct-exchange.js';
import { ExchangeType } from './exchange/exchange.js';
import type { ExchangeOptions, Exchange } from './exchange/exchange.js';
import { FanoutExchange } from './exchange/fanout-exchange.js';
import { HeadersExchange } from './exchange/headers-exchange.js';
import { TopicExchange } from './exchange/topic-exchange.js';
import { MemoryBudget } from './memory-budget.js';
import { Message } from './message.js';
import { Queue } from './queue.js';
import { MAX_EXPIRY_MS } from './queue-features.js';
import type { DeathReason, QueueOptions, QueueOwner, QueueResources } from './queue.js';

const exchangeClasses = {
  [ExchangeType.Direct]: DirectExchange,
  [ExchangeType.Fanout]: FanoutExchange,
  [ExchangeType.Topic]: TopicExchange,
  [ExchangeType.Headers]: HeadersExchange,
} as const;

/** Queue arguments compared on redeclaration, as RabbitMQ does; others may differ freely. */
const QUEUE_EQUIVALENCE_ARGS = [
  'x-expires',
  'x-message-ttl',
  'x-dead-letter-exchange',
  'x-dead-letter-routing-key',
  'x-max-length',
  'x-max-length-bytes',
  'x-max-priority',
  'x-overflow',
  'x-single-active-consumer',
  'x-queue-type',
];
const EXCHANGE_EQUIVALENCE_ARGS = ['alternate-exchange'];

/**
 * Observers of topology changes: the store persists the durable ones. Called after the change;
 * `restore*` methods (recovery) do not call them.
 */
export interface VirtualHostEvents {
  exchangeDeclared?(exchange: Exchange): void;
  exchangeDeleted?(exchange: Exchange): void;
  queueDeclared?(queue: Queue): void;
  queueDeleted?(queue: Queue): void;
  bindingAdded?(binding: Binding): void;
  bindingRemoved?(binding: Binding): void;
  /** A dead-lettered message was dropped because it would cycle. */
  deadLetterCycle?(queue: Queue, target: Queue): void;
}

/** What a vhost needs from the broker to create queues. */
export interface VirtualHostDeps {
  events?: VirtualHostEvents;
  /**
   * Memory budget and disk for a new queue. `storageId` names the directory of a durable queue
   * being restored; null for a new queue (the broker picks one if the queue is durable).
   */
  queueResources?(options: QueueOptions, storageId: string | null): QueueResources;
}

const unlimited = new MemoryBudget(Infinity);
const noResources = (): QueueResources => ({ budget: unlimited, openStore: null, storageId: null });

export interface DeclareExchangeArgs extends ExchangeOptions {
  passive: boolean;
}

export interface DeclareQueueArgs extends Omit<QueueOptions, 'owner'> {
  passive: boolean;
}

/**
 * A virtual host: its own exchanges, queues and bindings. Methods take already-decoded
 * arguments and throw AmqpError with RabbitMQ's reply codes and texts; they never see frames.
 */
export class VirtualHost {
  readonly name: string;
  readonly exchanges = new Map<string, Exchange>();
  readonly queues = new Map<string, Queue>();
  /** Most queues this vhost may hold (RabbitMQ's max-queues vhost limit); null: no limit. */
  maxQueues: number | null = null;
  private events: VirtualHostEvents;
  private readonly deps: VirtualHostDeps;
  private routeEpoch = 0;
  private readonly scratch: Binding[] = [];

  constructor(name: string, deps: VirtualHostDeps = {}) {
    this.name = name;
    this.deps = deps;
    this.events = deps.events ?? {};
    const durable = { durable: true, autoDelete: false, internal: false, arguments: {} };
    this.addExchange('', ExchangeType.Direct, durable);
    this.addExchange('amq.direct', ExchangeType.Direct, durable);
    this.addExchange('amq.fanout', ExchangeType.Fanout, durable);
    this.addExchange('amq.topic', ExchangeType.Topic, durable);
    this.addExchange('amq.headers', ExchangeType.Headers, durable);
    this.addExchange('amq.match', ExchangeType.Headers, durable);
    this.addExchange('amq.rabbitmq.trace', ExchangeType.Topic, { ...durable, internal: true });
  }

  /** Start reporting changes (after recovery, so restoring does not write back). */
  attachEvents(events: VirtualHostEvents): void {
    this.events = events;
  }

  // ------------------------------------------------------------------ exchanges

  getExchange(name: string): Exchange {
    const ex = this.exchanges.get(name);
    if (ex === undefined)
      throw amqpErrors.notFound(`no exchange '${name}' in vhost '${this.name}'`);
    return ex;
  }

  declareExchange(name: string, type: string, args: DeclareExchangeArgs): Exchange {
    if (args.passive) {
      if (name === '') throw this.defaultExchangeRefused();
      return this.getExchange(name);
    }
    // RabbitMQ checks the type first (a connection error), then the name.
    if (!isExchangeType(type)) {
      throw new AmqpError(ReplyCode.CommandInvalid, `unknown exchange type '${type}'`);
    }
    if (name === '') throw this.defaultExchangeRefused();
    const existing = this.exchanges.get(name);
    if (name.startsWith('amq.') && existing === undefined) {
      throw amqpErrors.accessRefused(`exchange name '${name}' contains reserved prefix 'amq.*'`);
    }
    if (existing !== undefined) {
      const what = `exchange '${name}' in vhost '${this.name}'`;
      assertSame('type', what, type, existing.type);
      assertSame('durable', what, args.durable, existing.durable);
      assertSame('auto_delete', what, args.autoDelete, existing.autoDelete);
      assertSame('internal', what, args.internal, existing.internal);
      assertArgsEquivalent(what, args.arguments, existing.arguments, EXCHANGE_EQUIVALENCE_ARGS);
      return existing;
    }
    const ex = this.addExchange(name, type, args);
    try {
      this.events.exchangeDeclared?.(ex);
    } catch (err) {
      // Not stored (disk full): undo, so memory never promises what disk does not hold.
      this.exchanges.delete(name);
      throw storageFailed(`exchange '${name}'`, err);
    }
    return ex;
  }

  /** Recreate a durable exchange from the store (no checks, no events). */
  restoreExchange(name: string, type: string, options: ExchangeOptions): Exchange | undefined {
    if (!isExchangeType(type) || this.exchanges.has(name)) return this.exchanges.get(name);
    return this.addExchange(name, type, options);
  }

  private addExchange(name: string, type: ExchangeType, options: ExchangeOptions): Exchange {
    const ex = new exchangeClasses[type](this.name, name, options);
    this.exchanges.set(name, ex);
    return ex;
  }

  deleteExchange(name: string, ifUnused: boolean): void {
    if (name === '') throw this.defaultExchangeRefused();
    // Refused by name, whether or not such an exchange exists.
    if (name.startsWith('amq.')) {
      throw amqpErrors.accessRefused(
        `deletion of system exchange '${name}' in vhost '${this.name}' not allowed`,
      );
    }
    const ex = this.exchanges.get(name);
    if (ex === undefined) return; // idempotent, as RabbitMQ 3.x
    if (ifUnused && ex.bindings.size > 0) {
      throw amqpErrors.preconditionFailed(`exchange '${name}' in vhost '${this.name}' in use`);
    }
    this.removeExchange(ex);
  }

  private removeExchange(ex: Exchange): void {
    ex.deleted = true;
    this.exchanges.delete(ex.name);
    for (const b of [...ex.bindings.values()]) this.removeBinding(b);
    for (const b of [...ex.inbound]) this.removeBinding(b);
    this.events.exchangeDeleted?.(ex);
  }

  bindExchange(destination: string, source: string, routingKey: string, args: FieldTable): void {
    const { src, dst } = this.bindingEnds(source, destination, 'exchange');
    src.validateBinding(args);
    const b = new Binding(src, dst, 'exchange', routingKey, args);
    if (src.addBinding(b)) {
      (dst as Exchange).inbound.add(b);
      this.persistBinding(b);
    }
  }

  unbindExchange(destination: string, source: string, routingKey: string, args: FieldTable): void {
    const src = this.unbindingSource(source, destination, 'exchange');
    const b = src?.bindings.get(Binding.keyOf('exchange', destination, routingKey, args));
    if (b !== undefined) this.removeBinding(b);
  }

  // ------------------------------------------------------------------ queues

  getQueue(name: string): Queue {
    const q = this.queues.get(name);
    if (q === undefined) throw amqpErrors.notFound(`no queue '${name}' in vhost '${this.name}'`);
    return q;
  }

  /**
   * Declare (or find, if passive / equivalent) a queue. An empty name gets `serverName` (the
   * caller may pick it first, to check permissions on it as RabbitMQ does).
   */
  declareQueue(
    requestedName: string,
    args: DeclareQueueArgs,
    owner: QueueOwner,
    serverName: string = serverNamedQueue(),
  ): { queue: Queue; created: boolean } {
    if (args.passive) {
      const q = this.getQueue(requestedName);
      this.checkExclusiveAccess(q, owner);
      // A declare, passive or not, counts as use for x-expires (RabbitMQ's stat call).
      q.resetUnusedTimer();
      return { queue: q, created: false };
    }
    const name = requestedName === '' ? serverName : requestedName;
    if (requestedName.startsWith('amq.')) {
      throw amqpErrors.accessRefused(`queue name '${name}' contains reserved prefix 'amq.*'`);
    }
    const existing = this.queues.get(name);
    if (existing !== undefined) {
      this.checkExclusiveAccess(existing, owner);
      if (existing.exclusive !== args.exclusive) throw this.exclusiveLocked(name);
      const what = `queue '${name}' in vhost '${this.name}'`;
      assertSame('durable', what, args.durable, existing.durable);
      assertSame('auto_delete', what, args.autoDelete, existing.autoDelete);
      assertArgsEquivalent(what, args.arguments, existing.arguments, QUEUE_EQUIVALENCE_ARGS);
      existing.resetUnusedTimer();
      return { queue: existing, created: false };
    }
    // Only new queues count against the limit; RabbitMQ checks it before the arguments.
    if (this.maxQueues !== null && this.queues.size >= this.maxQueues) {
      throw amqpErrors.preconditionFailed(
        `cannot declare queue '${name}': queue limit in vhost '${this.name}' (${this.maxQueues}) is reached`,
      );
    }
    validateQueueArguments(`queue '${name}' in vhost '${this.name}'`, args.arguments);
    const queue = this.addQueue(name, { ...args, owner: args.exclusive ? owner : null }, null);
    try {
      this.events.queueDeclared?.(queue);
    } catch (err) {
      this.queues.delete(name);
      queue.destroy();
      throw storageFailed(`queue '${name}'`, err);
    }
    // Every queue is bound to the default exchange by its name; that binding is implicit.
    return { queue, created: true };
  }

  /** Recreate a durable queue from the store (no checks, no events); its messages follow. */
  restoreQueue(name: string, options: QueueOptions, storageId: string): Queue {
    return this.addQueue(name, options, storageId);
  }

  private addQueue(name: string, options: QueueOptions, storageId: string | null): Queue {
    const resources = (this.deps.queueResources ?? noResources)(options, storageId);
    const queue = new Queue(
      this.name,
      name,
      options,
      {
        onLastConsumerGone: (q) => this.removeQueue(q),
        deadLetter: (q, m, reason) => this.deadLetter(q, m, reason),
        unused: (q) => this.removeQueue(q),
      },
      resources,
    );
    this.queues.set(name, queue);
    return queue;
  }

  /** 405 unless the queue is not exclusive or belongs to this connection. */
  checkExclusiveAccess(q: Queue, owner: QueueOwner): void {
    if (q.exclusive && q.owner !== null && q.owner.id !== owner.id) {
      throw this.exclusiveLocked(q.name);
    }
  }

  private exclusiveLocked(name: string): AmqpError {
    return amqpErrors.resourceLocked(
      `cannot obtain exclusive access to locked queue '${name}' in vhost '${this.name}'. ` +
        'It could be originally declared on another connection or the exclusive property ' +
        'value does not match that of the original declaration.',
    );
  }

  deleteQueue(name: string, ifUnused: boolean, ifEmpty: boolean, owner: QueueOwner): number {
    const q = this.queues.get(name);
    if (q === undefined) return 0; // idempotent, as RabbitMQ 3.x
    this.checkExclusiveAccess(q, owner);
    if (ifUnused && q.consumerCount > 0) {
      throw amqpErrors.preconditionFailed(`queue '${name}' in vhost '${this.name}' in use`);
    }
    if (ifEmpty && q.messageCount > 0) {
      throw amqpErrors.preconditionFailed(`queue '${name}' in vhost '${this.name}' not empty`);
    }
    return this.removeQueue(q);
  }

  /** Delete a queue: cancel its consumers, drop its bindings, messages and files. */
  removeQueue(q: Queue): number {
    if (q.deleted) return 0;
    const count = q.messageCount;
    this.queues.delete(q.name);
    for (const b of [...q.bindings]) this.removeBinding(b);
    q.destroy();
    for (const c of [...q.consumers]) {
      q.removeConsumer(c);
      c.cancelled = true;
      c.channel.consumerCancelledByBroker?.(c);
    }
    this.events.queueDeleted?.(q);
    return count;
  }

  bindQueue(queueName: string, exchangeName: string, routingKey: string, args: FieldTable): void {
    const { src, dst } = this.bindingEnds(exchangeName, queueName, 'queue');
    src.validateBinding(args);
    const b = new Binding(src, dst, 'queue', routingKey, args);
    if (src.addBinding(b)) {
      (dst as Queue).bindings.add(b);
      this.persistBinding(b);
    }
  }

  private persistBinding(b: Binding): void {
    try {
      this.events.bindingAdded?.(b);
    } catch (err) {
      b.source.removeBinding(b);
      if (b.destinationKind === 'queue') (b.destination as Queue).bindings.delete(b);
      else (b.destination as Exchange).inbound.delete(b);
      throw storageFailed('binding', err);
    }
  }

  /** Recreate a durable binding from the store (no checks, no events). */
  restoreBinding(
    source: string,
    destination: string,
    kind: 'queue' | 'exchange',
    routingKey: string,
    args: FieldTable,
  ): boolean {
    const src = this.exchanges.get(source);
    const dst = kind === 'queue' ? this.queues.get(destination) : this.exchanges.get(destination);
    if (src === undefined || dst === undefined) return false;
    const b = new Binding(src, dst, kind, routingKey, args);
    if (!src.addBinding(b)) return true;
    if (kind === 'queue') (dst as Queue).bindings.add(b);
    else (dst as Exchange).inbound.add(b);
    return true;
  }

  unbindQueue(queueName: string, exchangeName: string, routingKey: string, args: FieldTable): void {
    const src = this.unbindingSource(exchangeName, queueName, 'queue');
    const b = src?.bindings.get(Binding.keyOf('queue', queueName, routingKey, args));
    if (b !== undefined) this.removeBinding(b);
  }

  private bindingEnds(
    source: string,
    destination: string,
    kind: 'queue' | 'exchange',
  ): { src: Exchange; dst: Destination } {
    if (source === '' || (kind === 'exchange' && destination === '')) {
      throw this.defaultExchangeRefused();
    }
    // Both missing: RabbitMQ names the source.
    const src = this.getExchange(source);
    const dst = kind === 'queue' ? this.getQueue(destination) : this.getExchange(destination);
    return { src, dst };
  }

  /**
   * The source exchange of a binding to remove, or undefined when either end is missing: like
   * RabbitMQ, unbinding what cannot be bound is a no-op, not a 404.
   */
  private unbindingSource(
    source: string,
    destination: string,
    kind: 'queue' | 'exchange',
  ): Exchange | undefined {
    if (source === '' || (kind === 'exchange' && destination === '')) {
      throw this.defaultExchangeRefused();
    }
    const dstExists =
      kind === 'queue' ? this.queues.has(destination) : this.exchanges.has(destination);
    return dstExists ? this.exchanges.get(source) : undefined;
  }

  private removeBinding(b: Binding): void {
    const src = b.source;
    if (!src.removeBinding(b)) return;
    if (b.destinationKind === 'queue') (b.destination as Queue).bindings.delete(b);
    else (b.destination as Exchange).inbound.delete(b);
    this.events.bindingRemoved?.(b);
    // spec: an auto-delete exchange goes when its last binding (as source) is removed.
    if (src.autoDelete && src.bindings.size === 0 && !src.deleted) this.removeExchange(src);
  }

  private defaultExchangeRefused(): AmqpError {
    return amqpErrors.accessRefused('operation not permitted on the default exchange');
  }

  // ------------------------------------------------------------------ dead-lettering

  /**
   * Republish a message that left `queue` without an ack to the queue's dead-letter exchange,
   * with the x-death history RabbitMQ writes, unless it would cycle back to a queue without a
   * consumer having rejected it on the way.
   */
  deadLetter(queue: Queue, message: Message, reason: DeathReason): void {
    const f = queue.features;
    const dlxName = f.deadLetterExchange;
    if (dlxName === null) return;
    const dlx = this.exchanges.get(dlxName);
    if (dlx === undefined) return; // RabbitMQ drops it silently too
    const props = message.propertiesPreservingTypes();
    const headers: FieldTable = { ...(props.headers ?? {}) };
    const deaths = (plainOf(headers['x-death']) as FieldValue[] | undefined) ?? [];
    const history = Array.isArray(deaths) ? [...deaths] : [];
    const existing = history.findIndex((d) => {
      const t = plainOf(d) as FieldTable;
      return plainOf(t.queue) === queue.name && plainOf(t.reason) === reason;
    });
    let death: FieldTable;
    if (existing >= 0) {
      const old = plainOf(history[existing]) as FieldTable;
      const count = Number(plainOf(old.count) ?? 0) + 1;
      death = { ...old, count: new TypedValue('l', count) };
      history.splice(existing, 1);
    } else {
      death = {
        count: new TypedValue('l', 1),
        reason,
        queue: queue.name,
        time: new TypedValue('T', new Date()),
        exchange: message.exchange,
        'routing-keys': [message.routingKey, ...routingKeysOf(headers.CC)],
      };
      if (props.expiration !== undefined) death['original-expiration'] = props.expiration;
    }
    history.unshift(death);
    headers['x-death'] = history;
    if (headers['x-first-death-reason'] === undefined) {
      headers['x-first-death-reason'] = reason;
      headers['x-first-death-queue'] = queue.name;
      headers['x-first-death-exchange'] = message.exchange;
    }
    // As RabbitMQ 3.13+ writes them: the newest x-death entry's (a repeat death keeps its
    // first exchange there).
    headers['x-last-death-reason'] = reason;
    headers['x-last-death-queue'] = queue.name;
    headers['x-last-death-exchange'] = death.exchange ?? message.exchange;
    // A dead-letter routing key replaces all the message's keys: RabbitMQ drops CC with them.
    if (f.deadLetterRoutingKey !== null) delete headers.CC;
    const { expiration: _dropped, ...rest } = props;
    const routingKey = f.deadLetterRoutingKey ?? message.routingKey;
    const dead = Message.create(dlxName, routingKey, { ...rest, headers }, message.body);
    const extraKeys = f.deadLetterRoutingKey === null ? routingKeysOf(headers.CC) : NO_KEYS;
    const targets: Queue[] = [];
    this.route(dlx, dead, routingKey, targets, extraKeys);
    const now = Date.now();
    for (const target of targets) {
      if (reason !== 'rejected' && cycles(history, target.name)) {
        this.events.deadLetterCycle?.(queue, target);
        continue;
      }
      target.publish(dead, now);
    }
  }

  // ------------------------------------------------------------------ routing

  /**
   * The queues a message reaches from an exchange, each once, following exchange-to-exchange
   * bindings (cycles are visited once). `out` is reused by the caller between publishes.
   * `extraKeys` are routing keys from the CC / BCC headers, matched as well as `routingKey`.
   */
  route(
    exchange: Exchange,
    message: Message,
    routingKey: string,
    out: Queue[],
    extraKeys: readonly string[] = NO_KEYS,
  ): void {
    const epoch = ++this.routeEpoch;
    if (exchange.name === '') {
      const q = this.queues.get(routingKey);
      if (q !== undefined) {
        q.routeMark = epoch;
        out.push(q);
      }
      for (const key of extraKeys) {
        const cc = this.queues.get(key);
        if (cc !== undefined && cc.routeMark !== epoch) {
          cc.routeMark = epoch;
          out.push(cc);
        }
      }
      return;
    }
    this.routeFrom(exchange, message, routingKey, out, epoch, extraKeys);
  }

  private routeFrom(
    exchange: Exchange,
    message: Message,
    routingKey: string,
    out: Queue[],
    epoch: number,
    extraKeys: readonly string[],
  ): void {
    exchange.routeMark = epoch;
    const matched = this.scratch;
    const base = matched.length;
    exchange.match(message, routingKey, matched);
    for (let k = 0; k < extraKeys.length; k++) exchange.match(message, extraKeys[k]!, matched);
    const end = matched.length;
    for (let i = base; i < end; i++) {
      const b = matched[i]!;
      if (b.destinationKind === 'queue') {
        const q = b.destination as Queue;
        if (q.routeMark !== epoch) {
          q.routeMark = epoch;
          out.push(q);
        }
      } else {
        const ex = b.destination as Exchange;
        if (ex.routeMark !== epoch) {
          this.routeFrom(ex, message, routingKey, out, epoch, extraKeys);
        }
      }
    }
    matched.length = base;
    if (end === base) {
      // An exchange that matched no binding hands the message to its alternate exchange, if
      // that exists (as RabbitMQ does for every exchange on the way, not only the first).
      const aeName = exchange.alternateExchange;
      const ae = aeName === undefined ? undefined : this.exchanges.get(aeName);
      if (ae !== undefined && ae.routeMark !== epoch) {
        this.routeFrom(ae, message, routingKey, out, epoch, extraKeys);
      }
    }
  }
}

const NO_KEYS: readonly string[] = [];

/** The values of a CC or BCC header that are strings. */
export function routingKeysOf(v: FieldValue): string[] {
  const plain = v instanceof TypedValue ? v.value : v;
  if (!Array.isArray(plain)) return [];
  const out: string[] = [];
  for (const k of plain as FieldValue[]) {
    const p = k instanceof TypedValue ? k.value : k;
    if (typeof p === 'string') out.push(p);
    else if (p instanceof Uint8Array) out.push(Buffer.from(p).toString());
  }
  return out;
}

/** A definition could not be written: 506 RESOURCE_ERROR, as for any resource the broker lacks. */
function storageFailed(what: string, err: unknown): AmqpError {
  const code = (err as NodeJS.ErrnoException).code;
  return new AmqpError(
    ReplyCode.ResourceError,
    `cannot store ${what}: ${code === 'ENOSPC' ? 'the disk is full' : ((err as Error).message ?? String(err))}`,
  );
}

function plainOf(v: FieldValue): FieldValue {
  return v instanceof TypedValue ? v.value : v;
}

/**
 * Whether dead-lettering to `target` closes a loop: the queue is in the history with no consumer
 * rejection since (rejections are deliberate and may repeat; expiry and length loops would spin).
 */
function cycles(history: readonly FieldValue[], target: string): boolean {
  for (const d of history) {
    const t = plainOf(d) as FieldTable;
    if (plainOf(t.reason) === 'rejected') return false;
    if (plainOf(t.queue) === target) return true;
  }
  return false;
}

function isExchangeType(t: string): t is ExchangeType {
  return t === 'direct' || t === 'fanout' || t === 'topic' || t === 'headers';
}

/** A new server-generated queue name, as RabbitMQ makes them (`amq.gen-` and 22 characters). */
export function serverNamedQueue(): string {
  return `amq.gen-${randomBytes(16).toString('base64url')}`;
}

function assertSame(arg: string, what: string, received: unknown, current: unknown): void {
  if (received !== current) {
    throw amqpErrors.preconditionFailed(
      `inequivalent arg '${arg}' for ${what}: received '${String(received)}' but current is '${String(current)}'`,
    );
  }
}

function assertArgsEquivalent(
  what: string,
  received: FieldTable,
  current: FieldTable,
  keys: readonly string[],
): void {
  for (const key of keys) {
    const r = received[key];
    const c = current[key];
    if (describeValue(r) === describeValue(c)) continue;
    // RabbitMQ quotes bare values when both sides have one, and describes them when one is absent.
    const text =
      r !== undefined && c !== undefined
        ? `received '${valueText(r)}' but current is '${valueText(c)}'`
        : `received ${describeValue(r)} but current is ${describeValue(c)}`;
    throw amqpErrors.preconditionFailed(`inequivalent arg '${key}' for ${what}: ${text}`);
  }
}

function valueText(v: FieldValue): string {
  const inner = v instanceof TypedValue ? v.value : v;
  if (inner instanceof Decimal) return String(inner.toNumber());
  if (inner !== null && typeof inner === 'object' && !Buffer.isBuffer(inner)) {
    return JSON.stringify(inner);
  }
  return String(inner);
}

/** RabbitMQ's wording for an argument in equivalence errors: "the value '5' of type 'long'". */
function describeValue(v: FieldValue): string {
  if (v === undefined) return 'none';
  const inner = v instanceof TypedValue ? v.value : v;
  let type: string;
  let text: string;
  if (typeof inner === 'string') [type, text] = ['longstr', inner];
  else if (typeof inner === 'boolean') [type, text] = ['bool', String(inner)];
  else if (typeof inner === 'number' && Number.isInteger(inner)) {
    type = inner >= -0x8000_0000 && inner <= 0x7fff_ffff ? 'signedint' : 'long';
    text = String(inner);
  } else if (typeof inner === 'number') [type, text] = ['double', String(inner)];
  else if (typeof inner === 'bigint') [type, text] = ['long', inner.toString()];
  else if (inner instanceof Decimal) [type, text] = ['decimal', String(inner.toNumber())];
  else if (inner === null) [type, text] = ['void', ''];
  else [type, text] = ['table', JSON.stringify(inner)];
  return `the value '${text}' of type '${type}'`;
}

/** Reject argument values RabbitMQ rejects, with its wording. `what` is "queue 'q' in vhost '/'". */
function validateQueueArguments(what: string, args: FieldTable): void {
  const dlx = args['x-dead-letter-exchange'];
  if (dlx !== undefined && typeof plainValue(dlx) !== 'string') {
    throw amqpErrors.preconditionFailed(
      `invalid type '${fieldTypeName(dlx)}' for arg 'x-dead-letter-exchange' in ${what}`,
    );
  }
  for (const [key, check] of QUEUE_ARGUMENT_CHECKS) {
    const value = args[key];
    if (value === undefined) continue;
    const problem = check(value, args);
    if (problem !== null) {
      throw amqpErrors.preconditionFailed(`invalid arg '${key}' for ${what}: ${problem}`);
    }
  }
}

/**
 * RabbitMQ's validators for queue.declare arguments, in its order. Each returns null when the value
 * is acceptable, else the problem as RabbitMQ prints it (an Erlang term: `{value_negative,-1}`,
 * or a quoted string).
 */
const QUEUE_ARGUMENT_CHECKS: readonly [
  string,
  (v: FieldValue, args: FieldTable) => string | null,
][] = [
  ['x-expires', (v) => checkInteger(v) ?? (num(v) === 0 ? '{value_zero,0}' : checkExpiry(v))],
  ['x-message-ttl', (v) => checkInteger(v) ?? checkExpiry(v)],
  ['x-dead-letter-exchange', (v) => checkType(v, 'string')],
  [
    'x-dead-letter-routing-key',
    (v, args) =>
      checkType(v, 'string') ??
      (args['x-dead-letter-exchange'] === undefined ? 'routing_key_but_no_dlx_defined' : null),
  ],
  ['x-max-length', checkNonNegative],
  ['x-max-length-bytes', checkNonNegative],
  [
    'x-max-priority',
    (v) => checkNonNegative(v) ?? (num(v) > 255 ? `{max_value_exceeded,${num(v)}}` : null),
  ],
  [
    'x-overflow',
    (v) =>
      checkType(v, 'string') ??
      (['drop-head', 'reject-publish', 'reject-publish-dlx'].includes(plainValue(v) as string)
        ? null
        : 'invalid_overflow'),
  ],
  [
    'x-queue-mode',
    (v) =>
      checkType(v, 'string') ??
      (plainValue(v) === 'default' || plainValue(v) === 'lazy'
        ? null
        : `"unsupported queue mode '${plainValue(v) as string}'"`),
  ],
  ['x-single-active-consumer', (v) => checkType(v, 'boolean')],
  [
    'x-queue-type',
    (v) => {
      const t = plainValue(v);
      if (typeof t !== 'string') return `{unacceptable_type,${fieldTypeName(v)}}`;
      if (t === 'classic') return null;
      // A deliberate difference: RabbitMQ accepts these; Warren has only classic queues.
      if (t === 'quorum' || t === 'stream') {
        return `'${t}' queues are not supported yet by Warren; declare a classic queue`;
      }
      return `"unsupported queue type '${t}'"`;
    },
  ],
];

function plainValue(v: FieldValue): FieldValue {
  return v instanceof TypedValue ? v.value : v;
}

function num(v: FieldValue): number {
  return Number(plainValue(v));
}

function checkInteger(v: FieldValue): string | null {
  const p = plainValue(v);
  if (typeof p === 'bigint' || (typeof p === 'number' && Number.isInteger(p))) return null;
  return `"expected integer, got ${fieldTypeName(v)}"`;
}

function checkNonNegative(v: FieldValue): string | null {
  return checkInteger(v) ?? (num(v) < 0 ? `{value_negative,${num(v)}}` : null);
}

function checkExpiry(v: FieldValue): string | null {
  if (num(v) < 0) return `{value_negative,${num(v)}}`;
  return num(v) > MAX_EXPIRY_MS ? `{value_too_large,${num(v)}}` : null;
}

function checkType(v: FieldValue, type: 'string' | 'boolean'): string | null {
  return typeof plainValue(v) === type ? null : `{unacceptable_type,${fieldTypeName(v)}}`;
}
