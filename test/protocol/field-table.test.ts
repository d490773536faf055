import { describe, expect, it } from 'vitest';
import { AmqpError } from '../../src/protocol/amqp-error.js';
import {
  Decimal,
  FieldType,
  TypedValue,
  decodeFieldTable,
  decodeFieldTablePreservingTypes,
  encodeFieldTable,
} from '../../src/protocol/field-table.js';
import type { FieldTable, FieldValue } from '../../src/protocol/field-table.js';
import { ReplyCode } from '../../src/protocol/generated/constants.js';
import { Reader } from '../../src/protocol/reader.js';
import { Writer } from '../../src/protocol/writer.js';
import { seededRandom } from './spec-model.js';

function encode(t: FieldTable | undefined): Buffer {
  const w = new Writer(8);
  encodeFieldTable(w, t);
  return w.toBuffer();
}

function decode(b: Buffer): FieldTable {
  const r = new Reader(b);
  const t = decodeFieldTable(r);
  expect(r.pos).toBe(b.length);
  return t;
}

function decodeTyped(b: Buffer): FieldTable {
  const r = new Reader(b);
  const t = decodeFieldTablePreservingTypes(r);
  expect(r.pos).toBe(b.length);
  return t;
}

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** A table as a foreign peer would send it: entries of key, type tag and value bytes. */
function tableBytes(...entries: Buffer[]): Buffer {
  const body = Buffer.concat(entries);
  return Buffer.concat([u32(body.length), body]);
}

function entry(key: string, tag: string, value: Buffer | string): Buffer {
  const k = Buffer.from(key, 'utf8');
  return Buffer.concat([
    Buffer.from([k.length]),
    k,
    Buffer.from(tag, 'latin1'),
    typeof value === 'string' ? hex(value) : value,
  ]);
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an exception');
}

interface Case {
  name: string;
  value: FieldValue;
  tag: string;
  bytes: string;
  decoded: FieldValue;
}

/** One case per wire type and boundary: explicit type, exact value bytes, plain decoded value. */
const typedCases: Case[] = [
  { name: 'boolean true', value: new TypedValue('t', true), tag: 't', bytes: '01', decoded: true },
  {
    name: 'boolean false',
    value: new TypedValue('t', false),
    tag: 't',
    bytes: '00',
    decoded: false,
  },
  { name: 'int8 min', value: new TypedValue('b', -128), tag: 'b', bytes: '80', decoded: -128 },
  { name: 'int8 max', value: new TypedValue('b', 127), tag: 'b', bytes: '7f', decoded: 127 },
  { name: 'uint8 max', value: new TypedValue('B', 255), tag: 'B', bytes: 'ff', decoded: 255 },
  { name: 'uint8 min', value: new TypedValue('B', 0), tag: 'B', bytes: '00', decoded: 0 },
  {
    name: 'int16 min',
    value: new TypedValue('s', -32768),
    tag: 's',
    bytes: '8000',
    decoded: -32768,
  },
  { name: 'int16 max', value: new TypedValue('s', 32767), tag: 's', bytes: '7fff', decoded: 32767 },
  {
    name: 'uint16 max',
    value: new TypedValue('u', 65535),
    tag: 'u',
    bytes: 'ffff',
    decoded: 65535,
  },
  {
    name: 'int32 min',
    value: new TypedValue('I', -(2 ** 31)),
    tag: 'I',
    bytes: '80000000',
    decoded: -(2 ** 31),
  },
  {
    name: 'int32 max',
    value: new TypedValue('I', 2 ** 31 - 1),
    tag: 'I',
    bytes: '7fffffff',
    decoded: 2 ** 31 - 1,
  },
  {
    name: 'uint32 max',
    value: new TypedValue('i', 2 ** 32 - 1),
    tag: 'i',
    bytes: 'ffffffff',
    decoded: 2 ** 32 - 1,
  },
  {
    name: 'int64 min',
    value: new TypedValue('l', -(2n ** 63n)),
    tag: 'l',
    bytes: '8000000000000000',
    decoded: -(2n ** 63n),
  },
  {
    name: 'int64 max',
    value: new TypedValue('l', 2n ** 63n - 1n),
    tag: 'l',
    bytes: '7fffffffffffffff',
    decoded: 2n ** 63n - 1n,
  },
  {
    name: 'int64 largest safe integer stays a number',
    value: new TypedValue('l', Number.MAX_SAFE_INTEGER),
    tag: 'l',
    bytes: '001fffffffffffff',
    decoded: Number.MAX_SAFE_INTEGER,
  },
  {
    name: 'int64 smallest safe integer stays a number',
    value: new TypedValue('l', Number.MIN_SAFE_INTEGER),
    tag: 'l',
    bytes: 'ffe0000000000001',
    decoded: Number.MIN_SAFE_INTEGER,
  },
  {
    name: 'int64 2^53 becomes a bigint',
    value: new TypedValue('l', 2n ** 53n),
    tag: 'l',
    bytes: '0020000000000000',
    decoded: 2n ** 53n,
  },
  {
    name: 'int64 -2^53-1 becomes a bigint',
    value: new TypedValue('l', -(2n ** 53n) - 1n),
    tag: 'l',
    bytes: 'ffdfffffffffffff',
    decoded: -(2n ** 53n) - 1n,
  },
  {
    name: 'uint64 max',
    value: new TypedValue('L', 2n ** 64n - 1n),
    tag: 'L',
    bytes: 'ffffffffffffffff',
    decoded: 2n ** 64n - 1n,
  },
  {
    name: 'uint64 2^53 becomes a bigint',
    value: new TypedValue('L', 2n ** 53n),
    tag: 'L',
    bytes: '0020000000000000',
    decoded: 2n ** 53n,
  },
  {
    name: 'uint64 small stays a number',
    value: new TypedValue('L', 5),
    tag: 'L',
    bytes: '0000000000000005',
    decoded: 5,
  },
  { name: 'float', value: new TypedValue('f', 1.5), tag: 'f', bytes: '3fc00000', decoded: 1.5 },
  {
    name: 'float rounds to single precision',
    value: new TypedValue('f', 0.1),
    tag: 'f',
    bytes: '3dcccccd',
    decoded: Math.fround(0.1),
  },
  {
    name: 'float -infinity',
    value: new TypedValue('f', -Infinity),
    tag: 'f',
    bytes: 'ff800000',
    decoded: -Infinity,
  },
  {
    name: 'double pi',
    value: new TypedValue('d', Math.PI),
    tag: 'd',
    bytes: '400921fb54442d18',
    decoded: Math.PI,
  },
  {
    name: 'double max',
    value: new TypedValue('d', Number.MAX_VALUE),
    tag: 'd',
    bytes: '7fefffffffffffff',
    decoded: Number.MAX_VALUE,
  },
  {
    name: 'double whole number kept as double',
    value: new TypedValue('d', 2),
    tag: 'd',
    bytes: '4000000000000000',
    decoded: 2,
  },
  {
    name: 'decimal',
    value: new Decimal(2, 12345),
    tag: 'D',
    bytes: '0200003039',
    decoded: new Decimal(2, 12345),
  },
  {
    name: 'decimal extremes',
    value: new TypedValue('D', new Decimal(255, 2 ** 32 - 1)),
    tag: 'D',
    bytes: 'ffffffffff',
    decoded: new Decimal(255, 2 ** 32 - 1),
  },
  {
    name: 'long string (UTF-8)',
    value: 'héllo',
    tag: 'S',
    bytes: '00000006 68c3a96c6c6f',
    decoded: 'héllo',
  },
  { name: 'empty long string', value: '', tag: 'S', bytes: '00000000', decoded: '' },
  {
    name: 'byte array',
    value: Buffer.from([0, 0xce, 0xff]),
    tag: 'x',
    bytes: '00000003 00ceff',
    decoded: Buffer.from([0, 0xce, 0xff]),
  },
  {
    name: 'byte array from a Uint8Array',
    value: new Uint8Array([1, 2]),
    tag: 'x',
    bytes: '00000002 0102',
    decoded: Buffer.from([1, 2]),
  },
  {
    name: 'long string given as bytes',
    value: new TypedValue('S', Buffer.from('ok')),
    tag: 'S',
    bytes: '00000002 6f6b',
    decoded: 'ok',
  },
  {
    name: 'timestamp (whole seconds)',
    value: new Date(1_700_000_000_000),
    tag: 'T',
    bytes: '000000006553f100',
    decoded: new Date(1_700_000_000_000),
  },
  {
    name: 'timestamp drops milliseconds',
    value: new Date(1_700_000_000_999),
    tag: 'T',
    bytes: '000000006553f100',
    decoded: new Date(1_700_000_000_000),
  },
  { name: 'void', value: null, tag: 'V', bytes: '', decoded: null },
  {
    name: 'array',
    value: [1, 'a', [true]],
    tag: 'A',
    bytes: '00000012 49 00000001 53 00000001 61 41 00000002 74 01',
    decoded: [1, 'a', [true]],
  },
  { name: 'empty array', value: [], tag: 'A', bytes: '00000000', decoded: [] },
  {
    name: 'nested table',
    value: { a: { b: 'c' } },
    tag: 'F',
    bytes: '0000000f 0161 46 00000008 0162 53 00000001 63',
    decoded: { a: { b: 'c' } },
  },
];

describe('field table encoding of every type', () => {
  it.each(typedCases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const bytes = encode({ key: c.value });
    expect(bytes.toString('hex')).toBe(tableBytes(entry('key', c.tag, c.bytes)).toString('hex'));
    const plain = decode(bytes);
    expect(plain).toEqual({ key: c.decoded });
    // Preserving decode reports the wire type (arrays and tables are structural) and re-encodes
    // to the same bytes.
    const typed = decodeTyped(bytes);
    if (c.tag !== 'A' && c.tag !== 'F') {
      expect(typed.key).toBeInstanceOf(TypedValue);
      expect((typed.key as TypedValue).type).toBe(c.tag);
    }
    expect(encode(typed)).toEqual(bytes);
  });

  it('NaN and -0 as doubles', () => {
    const bytes = encode({ nan: new TypedValue('d', NaN), negZero: new TypedValue('d', -0) });
    const t = decode(bytes);
    expect(t.nan).toBeNaN();
    expect(Object.is(t.negZero, -0)).toBe(true);
  });

  it('an empty or missing table is four zero octets', () => {
    expect(encode(undefined)).toEqual(hex('00000000'));
    expect(encode({})).toEqual(hex('00000000'));
    expect(decode(hex('00000000'))).toEqual({});
  });

  it('undefined entries are left out of a table, but are void inside an array', () => {
    expect(encode({ gone: undefined, kept: 1 })).toEqual(
      tableBytes(entry('kept', 'I', '00000001')),
    );
    expect(decode(encode({ list: [undefined, 2] }))).toEqual({ list: [null, 2] });
  });

  it('FieldType lists the tags RabbitMQ uses', () => {
    expect(Object.values(FieldType).sort().join('')).toBe(
      ['t', 'b', 'B', 's', 'u', 'I', 'i', 'l', 'L', 'f', 'd', 'D', 'S', 'x', 'A', 'T', 'F', 'V']
        .sort()
        .join(''),
    );
  });
});

describe('type inference for plain JavaScript values', () => {
  const cases: [string, FieldValue, string][] = [
    ['string', 'text', 'S'],
    ['boolean', false, 't'],
    ['zero', 0, 'I'],
    ['int32 max', 2 ** 31 - 1, 'I'],
    ['int32 min', -(2 ** 31), 'I'],
    ['just above int32', 2 ** 31, 'l'],
    ['just below int32', -(2 ** 31) - 1, 'l'],
    ['safe integer max', Number.MAX_SAFE_INTEGER, 'l'],
    ['fraction', 0.25, 'd'],
    ['NaN', NaN, 'd'],
    ['infinity', Infinity, 'd'],
    ['bigint', 12n, 'l'],
    ['null', null, 'V'],
    ['Buffer', Buffer.from('b'), 'x'],
    ['Uint8Array', new Uint8Array([9]), 'x'],
    ['Date', new Date(0), 'T'],
    ['Decimal', new Decimal(1, 5), 'D'],
    ['array', ['x'], 'A'],
    ['object', { k: 1 }, 'F'],
  ];
  it.each(cases)('%s', (_name, value, tag) => {
    const bytes = encode({ v: value });
    // length (4) + key length (1) + key (1), then the tag
    expect(String.fromCharCode(bytes[6]!)).toBe(tag);
    const back = decode(bytes).v;
    if (typeof value === 'bigint') expect(back).toBe(Number(value));
    else if (value instanceof Uint8Array) expect(back).toEqual(Buffer.from(value));
    else if (typeof value === 'number' && Number.isNaN(value)) expect(back).toBeNaN();
    else expect(back).toEqual(value);
  });

  it('integers past 2^53 given as numbers are written exactly as int64', () => {
    expect(decode(encode({ v: 2 ** 60 })).v).toBe(2n ** 60n);
    expect(decode(encode({ v: -(2 ** 60) })).v).toBe(-(2n ** 60n));
  });
});

describe('nesting', () => {
  it('round-trips deeply nested tables and arrays', () => {
    let value: FieldValue = 'leaf';
    for (let i = 0; i < 60; i++) value = i % 2 === 0 ? { [`level${i}`]: value, i } : [i, value];
    const bytes = encode({ root: value });
    expect(decode(bytes)).toEqual({ root: value });
    expect(encode(decodeTyped(bytes))).toEqual(bytes);
  });

  it('round-trips a table of a thousand entries', () => {
    const t: FieldTable = {};
    for (let i = 0; i < 1000; i++) t[`key-${i}`] = i % 3 === 0 ? `v${i}` : i % 3 === 1 ? i : [i];
    const bytes = encode(t);
    const back = decode(bytes);
    expect(back).toEqual(t);
    expect(Object.keys(back)).toEqual(Object.keys(t));
  });

  it('a table whose key is __proto__ keeps it as an entry and does not change the prototype', () => {
    const bytes = tableBytes(
      entry('__proto__', 'F', tableBytes(entry('x-match', 'S', '00000003 616e79'))),
      entry('a', 'I', '00000001'),
    );
    const t = decode(bytes);
    expect(Object.getPrototypeOf(t)).toBe(Object.prototype);
    expect(Object.keys(t)).toEqual(['__proto__', 'a']);
    // An inherited x-match would change how a headers exchange matches.
    expect(t['x-match']).toBeUndefined();
    expect(encode(t)).toEqual(bytes);
    expect(encode(decodeTyped(bytes))).toEqual(bytes);
  });
});

describe('decodeFieldTablePreservingTypes', () => {
  /** Every type, as another client library would encode it, nested inside an array and a table. */
  const everyType = [
    entry('bool', 't', '01'),
    entry('i8', 'b', 'fe'),
    entry('u8', 'B', 'fe'),
    entry('i16', 's', 'fffe'),
    entry('u16', 'u', 'fffe'),
    entry('i32', 'I', 'fffffffe'),
    entry('u32', 'i', 'fffffffe'),
    entry('i64', 'l', 'fffffffffffffffe'),
    entry('u64', 'L', 'fffffffffffffffe'),
    entry('f32', 'f', '40490fdb'),
    entry('f64', 'd', 'c00921fb54442d18'),
    entry('dec', 'D', '03000004d2'),
    entry('str', 'S', '00000003 e282ac'),
    entry('bytes', 'x', '00000004 000102ce'),
    entry('ts', 'T', '0000000000000001'),
    entry('void', 'V', ''),
  ];
  const all = tableBytes(
    ...everyType,
    entry('arr', 'A', tableBytes(...everyType.map((e) => e.subarray(e[0]! + 1)))),
    entry('tbl', 'F', tableBytes(...everyType)),
  );

  it('re-encodes a foreign table of every type to identical bytes', () => {
    expect(encode(decodeTyped(all)).toString('hex')).toBe(all.toString('hex'));
  });

  it('reports the wire type of every value, nested ones included', () => {
    const t = decodeTyped(all);
    const types = (table: FieldTable): Record<string, string> =>
      Object.fromEntries(Object.entries(table).map(([k, v]) => [k, (v as TypedValue).type]));
    const expectedTypes = {
      bool: 't',
      i8: 'b',
      u8: 'B',
      i16: 's',
      u16: 'u',
      i32: 'I',
      u32: 'i',
      i64: 'l',
      u64: 'L',
      f32: 'f',
      f64: 'd',
      dec: 'D',
      str: 'S',
      bytes: 'x',
      ts: 'T',
      void: 'V',
    };
    const { arr, tbl, ...top } = t;
    expect(types(top)).toEqual(expectedTypes);
    expect(types(tbl as FieldTable)).toEqual(expectedTypes);
    expect((arr as TypedValue[]).map((v) => v.type)).toEqual(Object.values(expectedTypes));
  });

  it('the plain decoder gives the values those bytes mean', () => {
    const t = decode(all);
    expect(t).toMatchObject({
      bool: true,
      i8: -2,
      u8: 254,
      i16: -2,
      u16: 65534,
      i32: -2,
      u32: 2 ** 32 - 2,
      i64: -2,
      u64: 2n ** 64n - 2n,
      f32: Math.fround(Math.PI),
      f64: -Math.PI,
      dec: new Decimal(3, 1234),
      str: '€',
      bytes: Buffer.from([0, 1, 2, 0xce]),
      ts: new Date(1000),
      void: null,
    });
    expect((t.dec as Decimal).toNumber()).toBeCloseTo(1.234, 10);
    expect(t.arr).toHaveLength(16);
    expect(t.tbl).toEqual(decode(tableBytes(...everyType)));
  });

  it('leaves plain decoding unaffected afterwards, even when it failed', () => {
    expect(catchError(() => decodeTyped(all.subarray(0, all.length - 3)))).toBeInstanceOf(
      AmqpError,
    );
    expect(decode(all).bool).toBe(true);
  });

  it('re-encodes random tables of explicitly typed values to identical bytes', () => {
    const rand = seededRandom(7);
    const randomValue = (depth: number): FieldValue => {
      const pick = rand(depth > 2 ? 16 : 18);
      const big = (bits: bigint, signed: boolean): bigint => {
        let v = 0n;
        for (let i = 0n; i < bits; i += 16n) v = (v << 16n) | BigInt(rand(65536));
        v &= (1n << bits) - 1n;
        return signed && v >= 1n << (bits - 1n) ? v - (1n << bits) : v;
      };
      switch (pick) {
        case 0:
          return new TypedValue('t', rand(2) === 1);
        case 1:
          return new TypedValue('b', rand(256) - 128);
        case 2:
          return new TypedValue('B', rand(256));
        case 3:
          return new TypedValue('s', rand(65536) - 32768);
        case 4:
          return new TypedValue('u', rand(65536));
        case 5:
          return new TypedValue('I', Number(big(32n, true)));
        case 6:
          return new TypedValue('i', Number(big(32n, false)));
        case 7: {
          const v = big(64n, true);
          return new TypedValue('l', v >= -(2n ** 53n) + 1n && v < 2n ** 53n ? Number(v) : v);
        }
        case 8: {
          const v = big(64n, false);
          return new TypedValue('L', v < 2n ** 53n ? Number(v) : v);
        }
        case 9:
          return new TypedValue('f', Math.fround((rand(2000000) - 1000000) / 64));
        case 10:
          return new TypedValue('d', (rand(2 ** 30) - 2 ** 29) / 3);
        case 11:
          return new TypedValue('D', new Decimal(rand(256), Number(big(32n, false))));
        case 12:
          return new TypedValue('S', 'ü€'.repeat(rand(5)) + String(rand(1000)));
        case 13:
          return new TypedValue(
            'x',
            Buffer.from(Array.from({ length: rand(20) }, () => rand(256))),
          );
        case 14:
          return new TypedValue('T', new Date(rand(2 ** 31) * 1000));
        case 15:
          return new TypedValue('V', null);
        case 16:
          return Array.from({ length: rand(4) }, () => randomValue(depth + 1));
        default:
          return randomTable(depth + 1);
      }
    };
    const randomTable = (depth: number): FieldTable => {
      const t: FieldTable = {};
      const n = rand(6);
      for (let i = 0; i < n; i++) t[`k${i}-${rand(100)}`] = randomValue(depth);
      return t;
    };
    for (let run = 0; run < 300; run++) {
      const original = randomTable(0);
      const bytes = encode(original);
      const typed = decodeTyped(bytes);
      expect(typed, `run ${run}`).toEqual(original);
      expect(encode(typed).equals(bytes), `run ${run}`).toBe(true);
    }
  });
});

describe('malformed tables', () => {
  it('an unknown field type tag raises an AmqpError naming it', () => {
    for (const tag of ['Z', 'N', 'U', 'X', '\u0000']) {
      const err = catchError(() => decode(tableBytes(entry('k', tag, '00'))));
      expect(err, `tag ${JSON.stringify(tag)}`).toBeInstanceOf(AmqpError);
      expect((err as AmqpError).replyCode).toBe(ReplyCode.SyntaxError);
      expect((err as AmqpError).closesConnection).toBe(true);
      expect((err as AmqpError).message).toContain('unknown type');
    }
  });

  it('a value that runs past the end of its table raises FRAME_ERROR', () => {
    // The table says 6 octets: key "k", tag 'I' and only 3 of its 4 value octets; the bytes that
    // follow the table must not be read as the rest of the value.
    const bytes = Buffer.concat([u32(6), hex('016b 49 000000'), hex('01 02 03 04')]);
    const err = catchError(() => decodeFieldTable(new Reader(bytes)));
    expect(err).toBeInstanceOf(AmqpError);
    expect((err as AmqpError).replyCode).toBe(ReplyCode.FrameError);
  });

  it('a nested array longer than its enclosing table raises FRAME_ERROR', () => {
    const bytes = Buffer.concat([u32(8), hex('0161 41 00000010'), hex('49 00000001 49 00000002')]);
    const err = catchError(() => decodeFieldTable(new Reader(bytes)));
    expect(err).toBeInstanceOf(AmqpError);
    expect((err as AmqpError).replyCode).toBe(ReplyCode.FrameError);
  });

  it('a table longer than the bytes left raises FRAME_ERROR', () => {
    const err = catchError(() => decodeFieldTable(new Reader(hex('ffffffff 0161 56'))));
    expect(err).toBeInstanceOf(AmqpError);
    expect((err as AmqpError).replyCode).toBe(ReplyCode.FrameError);
  });

  it('a key longer than 255 octets cannot be written', () => {
    const err = catchError(() => encode({ ['k'.repeat(256)]: 1 }));
    expect(err).toBeInstanceOf(AmqpError);
    expect(encode({ ['k'.repeat(255)]: 1 })).toHaveLength(4 + 1 + 255 + 1 + 4);
  });
});
