import { AmqpError } from './amqp-error.js';
import { FRAME_END, ReplyCode } from './generated/constants.js';
import { encodeFieldTable, encodeFieldArray, encodeFieldValue } from './field-table.js';
import type { FieldTable, FieldValue } from './field-table.js';

/**
 * An append-only byte buffer that grows by doubling. Frames are written in place: `startFrame`
 * reserves the 7-byte header, `endFrame` patches the size and appends the frame-end octet, so a
 * method is encoded straight into the bytes that go to the socket.
 */
export class Writer {
  buf: Buffer;
  pos = 0;
  private readonly initialSize: number;

  constructor(initialSize = 4096) {
    this.initialSize = initialSize;
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  get length(): number {
    return this.pos;
  }

  ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    // At least 64: doubling a zero-length buffer (new Writer(0)) would never grow.
    let size = Math.max(this.buf.length * 2, 64);
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /**
   * Hand over what was written and start a fresh buffer. The returned bytes belong to the caller
   * (a socket may still hold them), so the old buffer is never reused.
   */
  take(): Buffer {
    const out = this.buf.subarray(0, this.pos);
    const size = this.buf.length > this.initialSize * 16 ? this.initialSize : this.buf.length;
    this.buf = Buffer.allocUnsafe(size);
    this.pos = 0;
    return out;
  }

  /** A copy of what was written; the writer keeps its buffer. */
  toBuffer(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }

  reset(): void {
    this.pos = 0;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  i8(v: number): void {
    this.ensure(1);
    this.buf.writeInt8(v, this.pos++);
  }

  u16(v: number): void {
    this.ensure(2);
    this.buf[this.pos] = v >>> 8;
    this.buf[this.pos + 1] = v & 0xff;
    this.pos += 2;
  }

  i16(v: number): void {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
  }

  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
  }

  i32(v: number): void {
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
  }

  /** Unsigned 64-bit from a non-negative safe integer. */
  u64(v: number): void {
    this.ensure(8);
    const hi = Math.floor(v / 0x1_0000_0000);
    this.buf.writeUInt32BE(hi >>> 0, this.pos);
    this.buf.writeUInt32BE(v >>> 0, this.pos + 4);
    this.pos += 8;
  }

  i64(v: number | bigint): void {
    this.ensure(8);
    this.buf.writeBigInt64BE(BigInt(v), this.pos);
    this.pos += 8;
  }

  u64Exact(v: number | bigint): void {
    this.ensure(8);
    this.buf.writeBigUInt64BE(BigInt(v), this.pos);
    this.pos += 8;
  }

  f32(v: number): void {
    this.ensure(4);
    this.buf.writeFloatBE(v, this.pos);
    this.pos += 4;
  }

  f64(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleBE(v, this.pos);
    this.pos += 8;
  }

  shortstr(s: string): void {
    this.ensure(1 + s.length * 3);
    const len = s.length === 0 ? 0 : this.buf.write(s, this.pos + 1, 'utf8');
    if (len > 255) {
      throw new AmqpError(
        ReplyCode.SyntaxError,
        `short string of ${len} bytes is longer than 255: '${s.slice(0, 40)}...'`,
      );
    }
    this.buf[this.pos] = len;
    this.pos += 1 + len;
  }

  longstr(s: Buffer | Uint8Array | string): void {
    if (typeof s === 'string') {
      this.ensure(4 + s.length * 3);
      const len = this.buf.write(s, this.pos + 4, 'utf8');
      this.buf.writeUInt32BE(len, this.pos);
      this.pos += 4 + len;
      return;
    }
    this.ensure(4 + s.length);
    this.buf.writeUInt32BE(s.length, this.pos);
    this.buf.set(s, this.pos + 4);
    this.pos += 4 + s.length;
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  table(t: FieldTable | undefined): void {
    encodeFieldTable(this, t);
  }

  array(a: readonly FieldValue[]): void {
    encodeFieldArray(this, a);
  }

  fieldValue(v: FieldValue): void {
    encodeFieldValue(this, v);
  }

  /** Reserve a frame header; returns the offset to pass to `endFrame`. */
  startFrame(type: number, channel: number): number {
    this.ensure(7);
    const start = this.pos;
    this.buf[start] = type;
    this.buf[start + 1] = channel >>> 8;
    this.buf[start + 2] = channel & 0xff;
    this.pos += 7;
    return start;
  }

  endFrame(start: number): void {
    this.ensure(1);
    this.buf.writeUInt32BE(this.pos - start - 7, start + 3);
    this.buf[this.pos++] = FRAME_END;
  }
}
