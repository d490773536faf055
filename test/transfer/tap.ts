/**
 * A transport between a client and its broker that the test controls, for RabbitMQ, standalone
 * Warren and embedded Warren alike (it is given to connect() as `transport`): `cut()` breaks the
 * current connection like a network failure (the client reconnects through a fresh one), and a
 * hook sees every basic.publish the client sends and may lose it (rewrite its routing key so the
 * broker drops it as unroutable) or corrupt its body (flip a byte) on the way.
 */
import { connect as netConnect } from 'node:net';
import { Duplex } from 'node:stream';
import { connect, inProcessTransport } from '../../src/client/index.js';
import type { ConnectOptions, Connection } from '../../src/client/index.js';
import type { BrokerTarget } from '../client/brokers.js';

export type PublishFate = 'pass' | 'lose' | 'corrupt';
export type PublishHook = (routingKey: string) => PublishFate;

const FRAME_METHOD = 1;
const FRAME_BODY = 3;
const BASIC_PUBLISH = (60 << 16) | 40;

/** Rewrites outbound frames: parses the AMQP frame stream a client writes. */
class OutboundFrames {
  private pending = Buffer.alloc(0);
  private headerSeen = false;
  /** Channel whose next body frame is to be corrupted. */
  private corruptOn = -1;

  constructor(private readonly hook: () => PublishHook | null) {}

  /** Bytes in, the same bytes out (possibly altered), whole frames only. */
  push(data: Buffer): Buffer {
    let buf = this.pending.length > 0 ? Buffer.concat([this.pending, data]) : Buffer.from(data);
    let pos = 0;
    if (!this.headerSeen) {
      if (buf.length < 8) {
        this.pending = buf;
        return Buffer.alloc(0);
      }
      this.headerSeen = true;
      pos = 8;
    }
    // Each pass consumes one whole frame or stops.
    while (buf.length - pos >= 7) {
      const type = buf[pos]!;
      const channel = buf.readUInt16BE(pos + 1);
      const size = buf.readUInt32BE(pos + 3);
      if (buf.length - pos < size + 8) break;
      const payload = pos + 7;
      if (type === FRAME_METHOD && buf.readUInt32BE(payload) === BASIC_PUBLISH) {
        const exLen = buf[payload + 6]!;
        const rkAt = payload + 7 + exLen + 1;
        const rkLen = buf[rkAt - 1]!;
        const rk = buf.toString('latin1', rkAt, rkAt + rkLen);
        const fate = this.hook()?.(rk) ?? 'pass';
        if (fate === 'lose' && rkLen > 0) {
          // Same length, a name no queue has: the broker drops the message as unroutable.
          const last = rkAt + rkLen - 1;
          buf[last] = buf[last] === 0x7e ? 0x7d : 0x7e;
        } else if (fate === 'corrupt') {
          this.corruptOn = channel;
        }
      } else if (type === FRAME_BODY && channel === this.corruptOn && size > 0) {
        buf[payload + Math.floor(size / 2)]! ^= 0x55;
        this.corruptOn = -1;
      }
      pos += size + 8;
    }
    this.pending = buf.subarray(pos);
    buf = buf.subarray(0, pos);
    return buf;
  }
}

/** Passes bytes between the client and an inner transport, applying the outbound rewriting. */
class TapStream extends Duplex {
  private readonly frames: OutboundFrames;

  constructor(
    private readonly inner: Duplex,
    hook: () => PublishHook | null,
  ) {
    super();
    this.frames = new OutboundFrames(hook);
    inner.on('data', (d: Buffer) => {
      if (!this.push(d)) inner.pause();
    });
    inner.on('end', () => this.push(null));
    inner.on('close', () => this.destroy());
    inner.on('error', (err) => this.destroy(err));
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const out = this.frames.push(chunk);
    if (out.length === 0) cb();
    else this.inner.write(out, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.inner.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.inner.destroy();
    cb(err);
  }
}

export interface Tapped {
  conn: Connection;
  /** Break the current connection (the client reconnects unless told not to). */
  cut(): void;
  /** Decide the fate of each publish from now on (null: all pass). */
  onPublish(hook: PublishHook | null): void;
  /** Connections opened through the tap so far (1 + reconnects). */
  readonly opened: number;
}

const live: Connection[] = [];

/** Close every tapped connection (call after each test). */
export async function closeTapped(): Promise<void> {
  await Promise.all(live.splice(0).map((c) => c.close({ timeout: 2000 }).catch(() => undefined)));
}

/** A connection to `target` through a tap; close it with closeTapped(). */
export async function tapped(target: BrokerTarget, options: ConnectOptions = {}): Promise<Tapped> {
  let hook: PublishHook | null = null;
  let current: Duplex | null = null;
  let opened = 0;
  let open: () => Duplex;
  if (target.kind === 'embedded') {
    open = inProcessTransport(target.warren!);
  } else {
    const port = target.kind === 'rabbitmq' ? 5672 : target.warren!.port;
    open = () => {
      const s = netConnect(port, '127.0.0.1');
      s.setNoDelay(true);
      return s;
    };
  }
  // Not target.connect(): for the embedded broker it would put its own transport in place of ours.
  const conn = await connect({
    heartbeat: 0,
    reconnect: { initialDelay: 10, maxDelay: 200 },
    ...options,
    transport: () => {
      opened++;
      current = new TapStream(open(), () => hook);
      return current;
    },
  });
  live.push(conn);
  return {
    conn,
    cut: () => current?.destroy(),
    onPublish: (h) => {
      hook = h;
    },
    get opened() {
      return opened;
    },
  };
}
