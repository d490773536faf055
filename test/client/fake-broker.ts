import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import {
  FrameParser,
  FrameType,
  Method,
  PROTOCOL_HEADER,
  Reader,
  Writer,
  decodeMethod,
  writeMethodFrame,
} from '../../src/protocol/index.js';
import type { AnyMethod } from '../../src/protocol/index.js';

/** One method received by the fake broker. */
export interface Received {
  channel: number;
  method: AnyMethod;
}

/**
 * A scripted AMQP 0-9-1 server for what real brokers cannot be made to do on demand:
 * connection.blocked, basic.nack, protocol violations. It does the handshake, answers
 * channel.open / confirm.select / queue.declare / basic.qos, counts publishes, records every method,
 * and lets the test send raw frames.
 */
export class FakeBroker {
  private server: Server | null = null;
  readonly sockets: Socket[] = [];
  readonly received: Received[] = [];
  /** Publish sequence numbers per channel in confirm mode. */
  readonly publishes = new Map<number, number>();
  port = 0;
  heartbeat = 0;
  /** Answer publishes in confirm mode with basic.ack automatically. */
  autoAck = false;
  /** Answer channel.flow with connection.close 540, as RabbitMQ does for active=false. */
  refuseFlow = false;
  /** Close every session with 541 right after opening it. */
  failEverySession = false;

  async start(): Promise<this> {
    this.server = createServer((s) => this.accept(s));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const addr = this.server.address();
    this.port = typeof addr === 'object' && addr !== null ? addr.port : 0;
    return this;
  }

  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  /** The socket of the latest client connection. */
  get socket(): Socket {
    const s = this.sockets[this.sockets.length - 1];
    if (s === undefined) throw new Error('no client connected');
    return s;
  }

  private accept(socket: Socket): void {
    this.sockets.push(socket);
    let header = true;
    const confirmChannels = new Set<number>();
    const parser = new FrameParser(
      {
        onFrame: (type, channel, payload) => {
          if (type !== FrameType.Method) return;
          const m = decodeMethod(new Reader(payload));
          this.received.push({ channel, method: m });
          this.answer(socket, channel, m, confirmChannels);
        },
      },
      1 << 20,
    );
    socket.on('data', (chunk: Buffer) => {
      if (header) {
        header = false;
        chunk = chunk.subarray(PROTOCOL_HEADER.length);
        this.send(socket, 0, {
          id: Method.ConnectionStart,
          versionMajor: 0,
          versionMinor: 9,
          serverProperties: { product: 'FakeBroker', capabilities: { publisher_confirms: true } },
          mechanisms: Buffer.from('PLAIN'),
          locales: Buffer.from('en_US'),
        });
      }
      if (chunk.length > 0) parser.push(chunk);
    });
    socket.on('error', () => undefined);
  }

  private answer(socket: Socket, ch: number, m: AnyMethod, confirm: Set<number>): void {
    switch (m.id) {
      case Method.ConnectionStartOk:
        this.send(socket, 0, {
          id: Method.ConnectionTune,
          channelMax: 16,
          frameMax: 131072,
          heartbeat: this.heartbeat,
        });
        return;
      case Method.ConnectionOpen:
        this.send(socket, 0, { id: Method.ConnectionOpenOk, knownHosts: '' });
        if (this.failEverySession) {
          this.send(socket, 0, {
            id: Method.ConnectionClose,
            replyCode: 541,
            replyText: 'INTERNAL_ERROR - always',
            classId: 0,
            methodId: 0,
          });
        }
        return;
      case Method.ChannelFlow:
        if (this.refuseFlow) {
          this.send(socket, 0, {
            id: Method.ConnectionClose,
            replyCode: 540,
            replyText: 'NOT_IMPLEMENTED - active=false',
            classId: 20,
            methodId: 20,
          });
        } else {
          this.send(socket, ch, { id: Method.ChannelFlowOk, active: m.active });
        }
        return;
      case Method.ConnectionClose:
        this.send(socket, 0, { id: Method.ConnectionCloseOk });
        socket.end();
        return;
      case Method.ChannelOpen:
        this.send(socket, ch, { id: Method.ChannelOpenOk, channelId: Buffer.alloc(0) });
        return;
      case Method.ChannelClose:
        this.send(socket, ch, { id: Method.ChannelCloseOk });
        return;
      case Method.ConfirmSelect:
        confirm.add(ch);
        this.publishes.set(ch, 0);
        this.send(socket, ch, { id: Method.ConfirmSelectOk });
        return;
      case Method.BasicQos:
        this.send(socket, ch, { id: Method.BasicQosOk });
        return;
      case Method.QueueDeclare:
        this.send(socket, ch, {
          id: Method.QueueDeclareOk,
          queue: m.queue === '' ? 'amq.gen-fake' : m.queue,
          messageCount: 0,
          consumerCount: 0,
        });
        return;
      case Method.BasicPublish:
        if (confirm.has(ch)) {
          const seq = (this.publishes.get(ch) ?? 0) + 1;
          this.publishes.set(ch, seq);
          if (this.autoAck) {
            this.send(socket, ch, { id: Method.BasicAck, deliveryTag: seq, multiple: false });
          }
        }
        return;
      default:
        return;
    }
  }

  /** Send a method frame to a client. */
  send(socket: Socket, channel: number, m: AnyMethod): void {
    const w = new Writer(256);
    writeMethodFrame(w, channel, m);
    socket.write(w.toBuffer());
  }

  /** Send raw bytes to the latest client. */
  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Methods with this id received so far. */
  methods(id: number): Received[] {
    return this.received.filter((r) => r.method.id === id);
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const srv = this.server;
    this.server = null;
    if (srv !== null) await new Promise<void>((r) => srv.close(() => r()));
  }
}
