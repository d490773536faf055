import { AmqpError } from './amqp-error.js';
import { FRAME_END, FRAME_OVERHEAD, FrameType, ReplyCode } from './generated/constants.js';

export interface FrameHandler {
  /**
   * Called once per complete frame. `payload` is a view into the parser's input and is only
   * valid during the call: copy what must outlive it.
   */
  onFrame(type: number, channel: number, payload: Buffer): void;
}

/**
 * Splits a byte stream into AMQP frames without copying whole frames that arrive in one chunk.
 * A frame split across chunks is gathered into a buffer of exactly its size. Violations
 * (oversized frame, bad frame-end, unknown type) raise FRAME_ERROR (501), after which the
 * connection is closed and the parser must not be fed again.
 */
export class FrameParser {
  /** Largest frame accepted, including the 8 octets of header and frame-end (frame_max). */
  maxFrameSize: number;
  private readonly handler: FrameHandler;
  /** Bytes of an incomplete frame header (fewer than 7 seen). */
  private headerBuf: Buffer = Buffer.allocUnsafe(7);
  private headerLen = 0;
  /** An incomplete frame being gathered: the whole frame including header and frame-end. */
  private partial: Buffer | null = null;
  private partialLen = 0;

  constructor(handler: FrameHandler, maxFrameSize: number) {
    this.handler = handler;
    this.maxFrameSize = maxFrameSize;
  }

  /** Bytes buffered for a frame not yet complete. */
  get buffered(): number {
    return this.partial !== null ? this.partialLen : this.headerLen;
  }

  push(chunk: Buffer): void {
    let pos = 0;
    const len = chunk.length;

    if (this.headerLen > 0) {
      const take = Math.min(7 - this.headerLen, len);
      chunk.copy(this.headerBuf, this.headerLen, 0, take);
      this.headerLen += take;
      pos = take;
      if (this.headerLen < 7) return;
      this.headerLen = 0;
      const size = this.frameSize(this.headerBuf, 0);
      this.partial = Buffer.allocUnsafe(size + FRAME_OVERHEAD);
      this.headerBuf.copy(this.partial, 0, 0, 7);
      this.partialLen = 7;
    }

    if (this.partial !== null) {
      const frame = this.partial;
      const take = Math.min(frame.length - this.partialLen, len - pos);
      chunk.copy(frame, this.partialLen, pos, pos + take);
      this.partialLen += take;
      pos += take;
      if (this.partialLen < frame.length) return;
      this.partial = null;
      this.partialLen = 0;
      this.emit(frame, 0, frame.length - FRAME_OVERHEAD);
    }

    while (pos < len) {
      if (len - pos < 7) {
        chunk.copy(this.headerBuf, 0, pos, len);
        this.headerLen = len - pos;
        return;
      }
      const size = this.frameSize(chunk, pos);
      const total = size + FRAME_OVERHEAD;
      if (len - pos < total) {
        this.partial = Buffer.allocUnsafe(total);
        chunk.copy(this.partial, 0, pos, len);
        this.partialLen = len - pos;
        return;
      }
      this.emit(chunk, pos, size);
      pos += total;
    }
  }

  private frameSize(buf: Buffer, pos: number): number {
    const type = buf[pos]!;
    if (
      type !== FrameType.Method &&
      type !== FrameType.Header &&
      type !== FrameType.Body &&
      type !== FrameType.Heartbeat
    ) {
      throw new AmqpError(ReplyCode.FrameError, `unknown frame type ${type}`);
    }
    const size = buf.readUInt32BE(pos + 3);
    if (size + FRAME_OVERHEAD > this.maxFrameSize) {
      throw new AmqpError(
        ReplyCode.FrameError,
        `frame size ${size + FRAME_OVERHEAD} exceeds negotiated frame_max ${this.maxFrameSize}`,
      );
    }
    return size;
  }

  private emit(buf: Buffer, pos: number, size: number): void {
    const end = pos + 7 + size;
    if (buf[end] !== FRAME_END) {
      throw new AmqpError(
        ReplyCode.FrameError,
        `frame end octet was 0x${(buf[end] ?? 0).toString(16)}, expected 0xce`,
      );
    }
    const type = buf[pos]!;
    const channel = (buf[pos + 1]! << 8) | buf[pos + 2]!;
    this.handler.onFrame(type, channel, buf.subarray(pos + 7, end));
  }
}
