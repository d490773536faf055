import { AmqpError } from './amqp-error.js';
import { ReplyCode } from './generated/constants.js';
import { decodeFieldTable, decodeFieldArray, decodeFieldValue } from './field-table.js';
import type { FieldTable, FieldValue } from './field-table.js';

/**
 * A cursor over a buffer. Decoders advance `pos`; running past `end` raises FRAME_ERROR (501),
 * which is what RabbitMQ answers for a method whose fields cannot be decoded.
 */
export class Reader {
  buf: Buffer;
  pos: number;
  end: number;

  constructor(buf: Buffer, pos = 0, end = buf.length) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  reset(buf: Buffer, pos = 0, end = buf.length): this {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
    return this;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  need(n: number): void {
    if (this.pos + n > this.end) throw truncated(n, this.end - this.pos);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  i8(): number {
    this.need(1);
    return this.buf.readInt8(this.pos++);
  }

  u16(): number {
    this.need(2);
    const v = (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]!;
    this.pos += 2;
    return v;
  }

  i16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  i32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** Unsigned 64-bit as a number: exact up to 2^53, which delivery tags and sizes never pass. */
  u64(): number {
    this.need(8);
    const hi = this.buf.readUInt32BE(this.pos);
    const lo = this.buf.readUInt32BE(this.pos + 4);
    this.pos += 8;
    return hi * 0x1_0000_0000 + lo;
  }

  /** Signed 64-bit: a number when exact, a bigint otherwise. */
  i64(): number | bigint {
    this.need(8);
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v;
  }

  /** Unsigned 64-bit: a number when exact, a bigint otherwise. */
  u64Exact(): number | bigint {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v <= 9007199254740991n ? Number(v) : v;
  }

  f32(): number {
    this.need(4);
    const v = this.buf.readFloatBE(this.pos);
    this.pos += 4;
    return v;
  }

  f64(): number {
    this.need(8);
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }

  shortstr(): string {
    const len = this.u8();
    this.need(len);
    const start = this.pos;
    this.pos += len;
    return len === 0 ? '' : this.buf.toString('utf8', start, start + len);
  }

  /** A long string's bytes, copied so that the result does not pin the frame it came from. */
  longstr(): Buffer {
    const len = this.u32();
    this.need(len);
    const out = Buffer.from(this.buf.subarray(this.pos, this.pos + len));
    this.pos += len;
    return out;
  }

  longstrText(): string {
    const len = this.u32();
    this.need(len);
    const start = this.pos;
    this.pos += len;
    return this.buf.toString('utf8', start, start + len);
  }

  /** A view of the next n bytes (no copy). */
  bytes(n: number): Buffer {
    this.need(n);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }

  table(): FieldTable {
    return decodeFieldTable(this);
  }

  array(): FieldValue[] {
    return decodeFieldArray(this);
  }

  fieldValue(): FieldValue {
    return decodeFieldValue(this);
  }
}

function truncated(wanted: number, left: number): AmqpError {
  return new AmqpError(
    ReplyCode.FrameError,
    `cannot decode frame: needed ${wanted} more octets, ${left} left`,
  );
}
