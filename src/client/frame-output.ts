import type { Duplex } from 'node:stream';
import {
  FRAME_END,
  FrameType,
  Method,
  Writer,
  encodeBasicProperties,
  writeHeartbeatFrame,
  writeMethodFrame,
} from '../protocol/index.js';
import type { AnyMethod, BasicProperties } from '../protocol/index.js';
import { Deferred } from './call-options.js';

/** Output beyond this is written at once instead of at the end of the tick. */
const FLUSH_BYTES = 128 * 1024;
/** Bodies this large are handed to the socket as they are instead of being copied. */
const LARGE_BODY = 64 * 1024;
/** Output up to this size is copied out so that the writer keeps its buffer. */
const SMALL_FLUSH = 16 * 1024;

const RESOLVED = Promise.resolve();

/** Something that owes an ack written at the next flush (a channel coalescing in-order acks). */
export interface AckSource {
  writePendingAck(): void;
}

/**
 * The outgoing side of a session: frames are encoded straight into one buffer and written to the
 * transport once per tick (or as soon as a lot has gathered), with large bodies passed through
 * uncopied. `writable` turns false when the transport is backed up and back on 'drain'.
 */
export class FrameOutput {
  /** Negotiated frame_max (0: unlimited) for splitting bodies. */
  frameMax = 0;
  writable = true;
  /** Something was written since the heartbeat last looked. */
  sentSinceBeat = false;
  private transport: Duplex | null = null;
  private readonly out = new Writer(64 * 1024);
  private chunks: Buffer[] = [];
  private flushScheduled = false;
  private ackSources: AckSource[] = [];
  private drainWaiter: Deferred<void> | null = null;

  /** Start writing to a new transport; what was buffered for the old one is dropped. */
  attach(t: Duplex | null): void {
    this.transport = t;
    this.out.reset();
    this.chunks = [];
    this.ackSources = [];
    this.onDrain();
  }

  sendMethod(channel: number, m: AnyMethod): void {
    writeMethodFrame(this.out, channel, m);
    this.scheduleFlush();
  }

  sendHeartbeat(): void {
    writeHeartbeatFrame(this.out);
    this.flush();
  }

  /** basic.publish, header and body frames, encoded in place. */
  writePublish(
    channel: number,
    exchange: string,
    routingKey: string,
    mandatory: boolean,
    properties: BasicProperties,
    body: Buffer | string,
  ): void {
    const w = this.out;
    let s = w.startFrame(FrameType.Method, channel);
    w.u32(Method.BasicPublish);
    w.u16(0);
    w.shortstr(exchange);
    w.shortstr(routingKey);
    w.u8(mandatory ? 1 : 0);
    w.endFrame(s);
    const size = typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.length;
    s = w.startFrame(FrameType.Header, channel);
    w.u16(60);
    w.u16(0);
    w.u64(size);
    encodeBasicProperties(w, properties);
    w.endFrame(s);
    if (size > 0) this.writeBody(channel, body, size);
    if (w.length >= FLUSH_BYTES) this.flush();
    else this.scheduleFlush();
  }

  private writeBody(channel: number, body: Buffer | string, size: number): void {
    const w = this.out;
    const maxPayload = this.frameMax === 0 ? size : this.frameMax - 8;
    if (size <= maxPayload && size < LARGE_BODY) {
      const s = w.startFrame(FrameType.Body, channel);
      if (typeof body === 'string') {
        w.ensure(size);
        w.buf.write(body, w.pos, 'utf8');
        w.pos += size;
      } else {
        w.bytes(body);
      }
      w.endFrame(s);
      return;
    }
    const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    for (let off = 0; off < size; off += maxPayload) {
      const end = Math.min(off + maxPayload, size);
      const s = w.startFrame(FrameType.Body, channel);
      if (end - off < LARGE_BODY) {
        w.bytes(buf.subarray(off, end));
        w.endFrame(s);
      } else {
        // Large pieces go to the transport as they are: no copy into the output buffer.
        w.buf.writeUInt32BE(end - off, s + 3);
        this.chunks.push(w.take(), buf.subarray(off, end));
        w.u8(FRAME_END);
      }
    }
  }

  /** Have `src` write its coalesced ack at the next flush. */
  scheduleAck(src: AckSource): void {
    this.ackSources.push(src);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    process.nextTick(flushOutput, this);
  }

  /** Write everything buffered, as one buffer when there are no pass-through bodies. */
  flush(): void {
    this.flushScheduled = false;
    if (this.ackSources.length > 0) {
      const srcs = this.ackSources;
      this.ackSources = [];
      for (const s of srcs) s.writePendingAck();
    }
    const w = this.out;
    const t = this.transport;
    if (t === null) {
      w.reset();
      this.chunks = [];
      return;
    }
    if (w.length === 0 && this.chunks.length === 0) return;
    this.sentSinceBeat = true;
    let ok: boolean;
    if (this.chunks.length === 0) {
      let data: Buffer;
      if (w.length <= SMALL_FLUSH) {
        data = Buffer.from(w.buf.subarray(0, w.pos));
        w.reset();
      } else {
        data = w.take();
      }
      ok = t.write(data);
    } else {
      if (w.length > 0) this.chunks.push(w.take());
      const chunks = this.chunks;
      this.chunks = [];
      t.cork();
      ok = true;
      for (const c of chunks) ok = t.write(c) && ok;
      t.uncork();
    }
    if (!ok) this.writable = false;
  }

  /** Resolves when the transport has drained (at once if it is not backed up). */
  drained(): Promise<void> {
    if (this.writable) return RESOLVED;
    this.drainWaiter ??= new Deferred<void>();
    return this.drainWaiter.promise;
  }

  /** The transport drained (or went away: nobody should wait for it then). */
  onDrain(): void {
    this.writable = true;
    const d = this.drainWaiter;
    this.drainWaiter = null;
    d?.resolve();
  }
}

function flushOutput(o: FrameOutput): void {
  o.flush();
}
