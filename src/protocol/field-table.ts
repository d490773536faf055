import { AmqpError } from './amqp-error.js';
import { ReplyCode } from './generated/constants.js';
import type { Reader } from './reader.js';
import type { Writer } from './writer.js';

/**
 * Field-table type tags as RabbitMQ and its clients use them (RabbitMQ's errata of 0-9-1:
 * 's' is a signed 16-bit integer, not a short string; 'u', 'i', 'L' are the unsigned forms).
 */
export const FieldType = {
  Boolean: 't',
  Int8: 'b',
  UInt8: 'B',
  Int16: 's',
  UInt16: 'u',
  Int32: 'I',
  UInt32: 'i',
  Int64: 'l',
  UInt64: 'L',
  Float: 'f',
  Double: 'd',
  Decimal: 'D',
  LongString: 'S',
  ByteArray: 'x',
  Array: 'A',
  Timestamp: 'T',
  Table: 'F',
  Void: 'V',
} as const;
export type FieldType = (typeof FieldType)[keyof typeof FieldType];

/** An AMQP decimal: `value / 10^scale`. */
export class Decimal {
  constructor(
    readonly scale: number,
    readonly value: number,
  ) {}

  toNumber(): number {
    return this.value / 10 ** this.scale;
  }
}

/**
 * A value with an explicit wire type, for when inference would pick the wrong one (a float that
 * happens to be whole, an 8-bit integer a peer insists on, ...). Decoding keeps plain JS values
 * unless asked to preserve types.
 */
export class TypedValue {
  constructor(
    readonly type: FieldType,
    readonly value: FieldValue,
  ) {}
}

export type FieldValue =
  | boolean
  | number
  | bigint
  | string
  | Buffer
  | Uint8Array
  | Date
  | Decimal
  | TypedValue
  | null
  | undefined
  | readonly FieldValue[]
  | FieldTable;

export interface FieldTable {
  [key: string]: FieldValue;
}

/** When true, decoded values keep their wire type as `TypedValue`s (used by round-trip tests). */
let preserveTypes = false;

export function decodeFieldTablePreservingTypes(r: Reader): FieldTable {
  preserveTypes = true;
  try {
    return decodeFieldTable(r);
  } finally {
    preserveTypes = false;
  }
}

/** Run a decoder with every field-table value keeping its wire type (nested tables included). */
export function withPreservedTypes<T>(decode: () => T): T {
  const saved = preserveTypes;
  preserveTypes = true;
  try {
    return decode();
  } finally {
    preserveTypes = saved;
  }
}

export function decodeFieldTable(r: Reader): FieldTable {
  const len = r.u32();
  r.need(len);
  const end = r.pos + len;
  const table: FieldTable = {};
  const savedEnd = r.end;
  r.end = end;
  try {
    while (r.pos < end) {
      const key = r.shortstr();
      const value = decodeFieldValue(r);
      // A peer chooses the keys: assigning '__proto__' would swap the table's prototype instead.
      if (key === '__proto__') {
        Object.defineProperty(table, key, {
          value,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      } else {
        table[key] = value;
      }
    }
  } finally {
    r.end = savedEnd;
  }
  return table;
}

export function decodeFieldArray(r: Reader): FieldValue[] {
  const len = r.u32();
  r.need(len);
  const end = r.pos + len;
  const out: FieldValue[] = [];
  const savedEnd = r.end;
  r.end = end;
  try {
    while (r.pos < end) out.push(decodeFieldValue(r));
  } finally {
    r.end = savedEnd;
  }
  return out;
}

export function decodeFieldValue(r: Reader): FieldValue {
  const tag = r.u8();
  const v = decodeUntyped(r, tag);
  return preserveTypes && tag !== 0x46 && tag !== 0x41
    ? new TypedValue(String.fromCharCode(tag) as FieldType, v)
    : v;
}

function decodeUntyped(r: Reader, tag: number): FieldValue {
  switch (tag) {
    case 0x74: // t
      return r.u8() !== 0;
    case 0x62: // b
      return r.i8();
    case 0x42: // B
      return r.u8();
    case 0x73: // s
      return r.i16();
    case 0x75: // u
      return r.u16();
    case 0x49: // I
      return r.i32();
    case 0x69: // i
      return r.u32();
    case 0x6c: // l
      return r.i64();
    case 0x4c: // L
      return r.u64Exact();
    case 0x66: // f
      return r.f32();
    case 0x64: // d
      return r.f64();
    case 0x44: {
      // D: scale octet, then a 32-bit unsigned value
      const scale = r.u8();
      return new Decimal(scale, r.u32());
    }
    case 0x53: // S
      return r.longstrText();
    case 0x78: // x
      return r.longstr();
    case 0x41: // A
      return decodeFieldArray(r);
    case 0x54: {
      // T: seconds since the epoch
      const secs = r.u64();
      return new Date(secs * 1000);
    }
    case 0x46: // F
      return decodeFieldTable(r);
    case 0x56: // V
      return null;
    default:
      throw new AmqpError(
        ReplyCode.SyntaxError,
        `field table value has unknown type '${printable(tag)}' (0x${tag.toString(16)})`,
      );
  }
}

function printable(code: number): string {
  return code >= 0x20 && code < 0x7f ? String.fromCharCode(code) : '?';
}

export function encodeFieldTable(w: Writer, t: FieldTable | undefined): void {
  w.ensure(4);
  const start = w.pos;
  w.pos += 4;
  if (t !== undefined) {
    for (const key in t) {
      const v = t[key];
      if (v === undefined) continue;
      w.shortstr(key);
      encodeFieldValue(w, v);
    }
  }
  w.buf.writeUInt32BE(w.pos - start - 4, start);
}

export function encodeFieldArray(w: Writer, a: readonly FieldValue[]): void {
  w.ensure(4);
  const start = w.pos;
  w.pos += 4;
  for (const v of a) encodeFieldValue(w, v);
  w.buf.writeUInt32BE(w.pos - start - 4, start);
}

export function encodeFieldValue(w: Writer, v: FieldValue): void {
  if (v instanceof TypedValue) {
    encodeTyped(w, v.type, v.value);
    return;
  }
  switch (typeof v) {
    case 'string':
      w.u8(0x53);
      w.longstr(v);
      return;
    case 'boolean':
      w.u8(0x74);
      w.u8(v ? 1 : 0);
      return;
    case 'number':
      if (Number.isInteger(v)) {
        if (v >= -0x8000_0000 && v <= 0x7fff_ffff) {
          w.u8(0x49);
          w.i32(v);
        } else {
          w.u8(0x6c);
          w.i64(v);
        }
      } else {
        w.u8(0x64);
        w.f64(v);
      }
      return;
    case 'bigint':
      w.u8(0x6c);
      w.i64(v);
      return;
    case 'undefined':
      w.u8(0x56);
      return;
    case 'object':
      if (v === null) {
        w.u8(0x56);
      } else if (v instanceof Uint8Array) {
        w.u8(0x78);
        w.longstr(v);
      } else if (v instanceof Date) {
        w.u8(0x54);
        w.u64(Math.floor(v.getTime() / 1000));
      } else if (v instanceof Decimal) {
        w.u8(0x44);
        w.u8(v.scale);
        w.u32(v.value);
      } else if (Array.isArray(v)) {
        w.u8(0x41);
        encodeFieldArray(w, v as readonly FieldValue[]);
      } else {
        w.u8(0x46);
        encodeFieldTable(w, v as FieldTable);
      }
      return;
    default:
      throw new TypeError(`cannot encode a ${typeof v} in an AMQP field table`);
  }
}

function encodeTyped(w: Writer, type: FieldType, v: FieldValue): void {
  w.u8(type.charCodeAt(0));
  switch (type) {
    case 't':
      w.u8(v ? 1 : 0);
      return;
    case 'b':
      w.i8(Number(v));
      return;
    case 'B':
      w.u8(Number(v));
      return;
    case 's':
      w.i16(Number(v));
      return;
    case 'u':
      w.u16(Number(v));
      return;
    case 'I':
      w.i32(Number(v));
      return;
    case 'i':
      w.u32(Number(v));
      return;
    case 'l':
      w.i64(typeof v === 'bigint' ? v : Number(v));
      return;
    case 'L':
      w.u64Exact(typeof v === 'bigint' ? v : Number(v));
      return;
    case 'f':
      w.f32(Number(v));
      return;
    case 'd':
      w.f64(Number(v));
      return;
    case 'D': {
      const d = v instanceof Decimal ? v : new Decimal(0, Number(v));
      w.u8(d.scale);
      w.u32(d.value);
      return;
    }
    case 'S':
    case 'x':
      w.longstr(v instanceof Uint8Array ? v : typeof v === 'string' ? v : JSON.stringify(v));
      return;
    case 'A':
      encodeFieldArray(w, Array.isArray(v) ? (v as readonly FieldValue[]) : []);
      return;
    case 'T':
      w.u64(v instanceof Date ? Math.floor(v.getTime() / 1000) : Number(v));
      return;
    case 'F':
      encodeFieldTable(w, v as FieldTable);
      return;
    case 'V':
      return;
  }
}
