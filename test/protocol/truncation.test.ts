import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { AmqpError } from '../../src/protocol/amqp-error.js';
import {
  Decimal,
  TypedValue,
  decodeFieldTablePreservingTypes,
} from '../../src/protocol/field-table.js';
import {
  decodeContentHeader,
  readContentHeader,
  writeHeaderFrame,
} from '../../src/protocol/frames.js';
import { ReplyCode } from '../../src/protocol/generated/constants.js';
import { decodeMethod, encodeMethod } from '../../src/protocol/generated/methods.js';
import type { AnyMethod } from '../../src/protocol/generated/methods.js';
import { decodeBasicProperties } from '../../src/protocol/generated/properties.js';
import { Reader } from '../../src/protocol/reader.js';
import { Writer } from '../../src/protocol/writer.js';
import { nonDefaultArgs, specMethods } from './spec-model.js';

/**
 * Runs `decode` on every proper prefix of `payload` and requires FRAME_ERROR each time: a
 * decoder that returns on short input hands the broker garbage, and one that throws anything
 * else (RangeError from Buffer) escapes the error model and kills the connection uncleanly.
 */
function expectEveryPrefixRejected(
  what: string,
  payload: Buffer,
  decode: (r: Reader) => unknown,
): void {
  // The full payload decodes: otherwise the prefixes prove nothing.
  decode(new Reader(payload));
  for (let len = 0; len < payload.length; len++) {
    // The prefix sits inside a larger buffer, as a frame payload sits inside a socket chunk:
    // the decoder must stop at the reader's end, not at the end of the underlying bytes.
    const backing = Buffer.concat([payload.subarray(0, len), Buffer.alloc(64, 0x41)]);
    let result: unknown;
    let caught: unknown;
    try {
      result = decode(new Reader(backing, 0, len));
    } catch (e) {
      caught = e;
    }
    if (!(caught instanceof AmqpError)) {
      expect.fail(
        `${what}, prefix of ${len}/${payload.length} octets: expected AmqpError, ` +
          (caught === undefined ? `got result ${inspect(result)}` : `got ${inspect(caught)}`),
      );
    }
    expect(caught.replyCode, `${what} prefix ${len}`).toBe(ReplyCode.FrameError);
    expect(caught.closesConnection).toBe(true);
  }
}

function bytesOf(write: (w: Writer) => void): Buffer {
  const w = new Writer(16);
  write(w);
  return w.toBuffer();
}

describe('every decoder rejects every truncation of a valid payload with FRAME_ERROR', () => {
  it('decodeMethod, for every method of the spec', () => {
    for (const m of specMethods) {
      for (const flavour of ['extreme', 'varied'] as const) {
        const id = (m.classId << 16) | m.methodId;
        const payload = bytesOf((w) =>
          encodeMethod(w, { id, ...nonDefaultArgs(m, flavour) } as unknown as AnyMethod),
        );
        expectEveryPrefixRejected(m.fullName, payload, (r) => decodeMethod(r));
      }
    }
  });

  const table = {
    str: 'ünïcode',
    int: -5,
    big: 2n ** 62n,
    dbl: 0.5,
    bool: true,
    none: null,
    bytes: Buffer.from([0xce, 0]),
    when: new Date(1_600_000_000_000),
    dec: new Decimal(3, 1),
    typed: [
      new TypedValue('b', -1),
      new TypedValue('B', 1),
      new TypedValue('s', -1),
      new TypedValue('u', 1),
      new TypedValue('i', 1),
      new TypedValue('L', 1),
      new TypedValue('f', 1),
      new TypedValue('V', null),
    ],
    nested: { deeper: { list: [1, 'two', { three: 3 }] } },
  };
  const tablePayload = bytesOf((w) => w.table(table));

  it('field tables, arrays and single values', () => {
    expectEveryPrefixRejected('table', tablePayload, (r) => r.table());
    expectEveryPrefixRejected('typed table', tablePayload, (r) =>
      decodeFieldTablePreservingTypes(r),
    );
    expectEveryPrefixRejected(
      'array',
      bytesOf((w) => w.array(table.typed)),
      (r) => r.array(),
    );
    for (const v of [...Object.values(table), ...table.typed]) {
      expectEveryPrefixRejected(
        `value ${inspect(v)}`,
        bytesOf((w) => w.fieldValue(v)),
        (r) => r.fieldValue(),
      );
    }
  });

  it('basic properties and content headers', () => {
    const props = {
      contentType: 'a/b',
      contentEncoding: 'x',
      headers: table,
      deliveryMode: 2,
      priority: 1,
      correlationId: 'c',
      replyTo: 'r',
      expiration: '1',
      messageId: 'm',
      timestamp: 5,
      type: 't',
      userId: 'u',
      appId: 'a',
      clusterId: 'k',
    };
    const frame = bytesOf((w) => writeHeaderFrame(w, 1, 99, props));
    const payload = frame.subarray(7, frame.length - 1);
    expectEveryPrefixRejected('content header', payload, (r) =>
      decodeContentHeader(r.buf.subarray(r.pos, r.end)),
    );
    expectEveryPrefixRejected('readContentHeader', payload.subarray(0, 12), (r) =>
      readContentHeader(r),
    );
    expectEveryPrefixRejected('properties', payload.subarray(12), (r) => decodeBasicProperties(r));
  });

  it('Reader primitives', () => {
    const cases: [string, Buffer, (r: Reader) => unknown][] = [
      ['u8', Buffer.from([1]), (r) => r.u8()],
      ['i8', Buffer.from([1]), (r) => r.i8()],
      ['u16', Buffer.alloc(2), (r) => r.u16()],
      ['i16', Buffer.alloc(2), (r) => r.i16()],
      ['u32', Buffer.alloc(4), (r) => r.u32()],
      ['i32', Buffer.alloc(4), (r) => r.i32()],
      ['u64', Buffer.alloc(8), (r) => r.u64()],
      ['i64', Buffer.alloc(8), (r) => r.i64()],
      ['u64Exact', Buffer.alloc(8), (r) => r.u64Exact()],
      ['f32', Buffer.alloc(4), (r) => r.f32()],
      ['f64', Buffer.alloc(8), (r) => r.f64()],
      ['shortstr', bytesOf((w) => w.shortstr('hello')), (r) => r.shortstr()],
      ['longstr', bytesOf((w) => w.longstr('hello')), (r) => r.longstr()],
      ['longstrText', bytesOf((w) => w.longstr('héllo')), (r) => r.longstrText()],
      ['bytes', Buffer.alloc(5), (r) => r.bytes(5)],
      ['skip', Buffer.alloc(5), (r) => r.skip(5)],
    ];
    for (const [name, payload, decode] of cases) expectEveryPrefixRejected(name, payload, decode);
  });
});
