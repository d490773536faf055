import { randomBytes } from 'node:crypto';
import { guard } from '../call-options.js';
import type { CallOptions } from '../call-options.js';
import type { Channel, QueueOptions } from '../channel.js';
import type { Connection } from '../connection.js';
import type { Consumer } from '../consumer.js';
import { ClientError, ClientErrorCode, connectionLostError } from '../errors.js';
import type { Body, Message, PublishOptions, ReturnedMessage } from '../message.js';

/** RabbitMQ's direct reply-to pseudo-queue (Warren has it too). */
export const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';
/** Header an RPC server sets on a reply to say the handler failed (its value is the message). */
export const RPC_ERROR_HEADER = 'x-warren-rpc-error';

export interface RpcCallOptions extends CallOptions {
  /** Exchange to send the request to (default: the default exchange, i.e. straight to a queue). */
  exchange?: string | undefined;
  /** Extra properties for the request (replyTo and correlationId are set by the client). */
  properties?: PublishOptions | undefined;
}

interface PendingCall {
  resolve: (m: Message) => void;
  reject: (err: Error) => void;
  disarm: () => void;
  /** The request was written: a reply can only come to the session that sent it. */
  sent: boolean;
}

/**
 * Request/reply over reply_to + correlation_id. Replies come through direct reply-to when the
 * broker supports it (no queue per client), else through an exclusive server-named queue.
 * Requests are published mandatory: a request nobody can receive fails at once with NO_ROUTE.
 */
export class RpcClient {
  private readonly channel: Channel;
  private readonly consumer: Consumer;
  private replyTo: string;
  private readonly pending = new Map<string, PendingCall>();
  private readonly prefix = `${randomBytes(6).toString('base64url')}.`;
  private counter = 0;
  private readonly conn: Connection;
  private readonly onDisconnect: (err: Error) => void;
  private readonly onRenamed: (from: string, to: string) => void;

  private constructor(conn: Connection, channel: Channel, consumer: Consumer, replyTo: string) {
    this.conn = conn;
    this.channel = channel;
    this.consumer = consumer;
    this.replyTo = replyTo;
    // A request written before a drop has its reply addressed to the old session: it is lost.
    this.onDisconnect = (err) => {
      for (const [id, p] of this.pending) {
        if (!p.sent) continue;
        this.pending.delete(id);
        p.disarm();
        p.reject(connectionLostError('the RPC call', err));
      }
    };
    this.onRenamed = (from, to) => {
      if (from === this.replyTo) this.replyTo = to;
    };
    conn.on('disconnect', this.onDisconnect);
    conn.on('queueRenamed', this.onRenamed);
    channel.on('return', (m) => this.onReturn(m));
    channel.once('close', (err) =>
      this.failAll(
        err ?? new ClientError(ClientErrorCode.ConnectionClosed, 'the RPC client was closed'),
      ),
    );
  }

  /** @internal use `connection.rpcClient()`. */
  static async open(conn: Connection): Promise<RpcClient> {
    const ch = await conn.channel();
    try {
      let replyTo = DIRECT_REPLY_TO;
      if (conn.capabilities.direct_reply_to !== true) {
        replyTo = (await ch.queueDeclare('', { exclusive: true, autoDelete: true })).queue;
      }
      let client: RpcClient | null = null;
      const consumer = await ch.consume(replyTo, (m) => client?.onReply(m), { noAck: true });
      client = new RpcClient(conn, ch, consumer, replyTo);
      return client;
    } catch (err) {
      await ch.close().catch(() => undefined);
      throw err;
    }
  }

  /** Send a request to `queue` (or, with `exchange`, that routing key) and wait for the reply. */
  call(queue: string, body: Body, options: RpcCallOptions = {}): Promise<Message> {
    const id = this.prefix + (++this.counter).toString(36);
    return new Promise<Message>((resolve, reject) => {
      const p: PendingCall = { resolve, reject, disarm: () => undefined, sent: false };
      p.disarm = guard(options, `RPC call to '${queue}'`, (err) => {
        this.pending.delete(id);
        reject(err);
      });
      this.pending.set(id, p);
      const props: PublishOptions = {
        ...options.properties,
        replyTo: this.replyTo,
        correlationId: id,
        mandatory: true,
      };
      // A request nobody answered in time is of no use: let the broker drop it.
      if (options.timeout !== undefined && props.expiration === undefined) {
        props.expiration = Math.max(1, Math.ceil(options.timeout));
      }
      this.channel.publish(options.exchange ?? '', queue, body, props).then(
        () => {
          p.sent = true;
        },
        (err: Error) => {
          if (!this.pending.delete(id)) return;
          p.disarm();
          reject(err);
        },
      );
    });
  }

  private onReply(m: Message): void {
    const id = m.properties.correlationId;
    if (id === undefined) return;
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    p.disarm();
    const remote = m.properties.headers?.[RPC_ERROR_HEADER];
    if (remote !== undefined) {
      p.reject(
        new ClientError(
          ClientErrorCode.RemoteError,
          `the RPC server failed: ${typeof remote === 'string' ? remote : JSON.stringify(remote)}`,
        ),
      );
    } else {
      p.resolve(m);
    }
  }

  private onReturn(m: ReturnedMessage): void {
    const id = m.properties.correlationId;
    if (id === undefined) return;
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    p.disarm();
    p.reject(
      new ClientError(
        ClientErrorCode.RemoteError,
        `no RPC server receives requests sent to '${m.routingKey}' (${m.replyText}); start one with connection.rpcServer()`,
      ),
    );
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) {
      p.disarm();
      p.reject(err);
    }
    this.pending.clear();
  }

  /** Calls waiting for their reply. */
  get inFlight(): number {
    return this.pending.size;
  }

  async close(): Promise<void> {
    this.conn.off('disconnect', this.onDisconnect);
    this.conn.off('queueRenamed', this.onRenamed);
    await this.consumer.cancel().catch(() => undefined);
    await this.channel.close();
  }
}

/** What an RPC handler returns: a body, or a body with reply properties. */
export type RpcReply = Body | { body: Body; properties?: PublishOptions };

export interface RpcServerOptions {
  /** Requests handled at once (default 16). */
  prefetch?: number | undefined;
  /** How to declare the request queue (default: non-durable, not exclusive). */
  queue?: QueueOptions | undefined;
}

/**
 * Serves requests from a queue: the handler's result is published to the request's reply_to with
 * its correlation_id, then the request is acked; if the handler throws, the caller gets the error
 * (WARREN_ERR_REMOTE). A request without reply_to is handled and acked (one-way).
 */
export class RpcServer {
  readonly queue: string;
  private readonly channel: Channel;
  private readonly consumer: Consumer;

  private constructor(channel: Channel, consumer: Consumer, queue: string) {
    this.channel = channel;
    this.consumer = consumer;
    this.queue = queue;
  }

  /** @internal use `connection.rpcServer(queue, handler)`. */
  static async open(
    conn: Connection,
    queue: string,
    handler: (request: Message) => RpcReply | Promise<RpcReply>,
    options: RpcServerOptions = {},
  ): Promise<RpcServer> {
    const ch = await conn.channel({ prefetch: options.prefetch ?? 16 });
    try {
      const { queue: name } = await ch.queueDeclare(queue, options.queue ?? {});
      const serve = async (req: Message): Promise<void> => {
        const replyTo = req.properties.replyTo;
        let reply: RpcReply;
        try {
          reply = await handler(req);
        } catch (err) {
          if (replyTo !== undefined) {
            await ch.publish('', replyTo, '', {
              correlationId: req.properties.correlationId,
              headers: { [RPC_ERROR_HEADER]: err instanceof Error ? err.message : String(err) },
            });
          }
          req.ack();
          return;
        }
        if (replyTo !== undefined) {
          const correlationId = req.properties.correlationId;
          if (typeof reply === 'string' || reply instanceof Uint8Array) {
            await ch.publish('', replyTo, reply, { correlationId });
          } else {
            await ch.publish('', replyTo, reply.body, { ...reply.properties, correlationId });
          }
        }
        req.ack();
      };
      const consumer = await ch.consume(name, serve);
      return new RpcServer(ch, consumer, name);
    } catch (err) {
      await ch.close().catch(() => undefined);
      throw err;
    }
  }

  /** Stop serving; requests still being handled go back to the queue for another server. */
  async close(): Promise<void> {
    await this.consumer.cancel().catch(() => undefined);
    await this.channel.close();
  }
}
