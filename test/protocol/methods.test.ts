import { describe, expect, it } from 'vitest';
import { AmqpError } from '../../src/protocol/amqp-error.js';
import { writeMethodFrame } from '../../src/protocol/frames.js';
import { ReplyCode } from '../../src/protocol/generated/constants.js';
import {
  Method,
  decodeMethod,
  encodeMethod,
  methodDefaults,
  methodInfo,
  methodName,
} from '../../src/protocol/generated/methods.js';
import type { AnyMethod } from '../../src/protocol/generated/methods.js';
import { Reader } from '../../src/protocol/reader.js';
import { Writer } from '../../src/protocol/writer.js';
import { nonDefaultArgs, referenceMethod, specMethod, specMethods } from './spec-model.js';
import type { SpecMethod } from './spec-model.js';

const methodIds = Method as Record<string, number>;

function idOf(m: SpecMethod): number {
  return (m.classId << 16) | m.methodId;
}

function encode(id: number, args: Record<string, unknown>): Buffer {
  const w = new Writer(16);
  encodeMethod(w, { id, ...args } as unknown as AnyMethod);
  return w.toBuffer();
}

function decodeAll(payload: Buffer): AnyMethod {
  const r = new Reader(payload);
  const m = decodeMethod(r);
  expect(r.pos, 'decoder consumed the whole payload').toBe(payload.length);
  return m;
}

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const ascii = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('generated method table', () => {
  it('has exactly the methods of the spec, with id (class-id << 16) | method-id', () => {
    expect(specMethods.length).toBeGreaterThan(60);
    for (const m of specMethods) expect(methodIds[m.key], m.fullName).toBe(idOf(m));
    expect(Object.keys(Method).sort()).toEqual(specMethods.map((m) => m.key).sort());
  });

  it('methodInfo and methodName describe every method as the spec does', () => {
    for (const m of specMethods) {
      expect(methodInfo(idOf(m)), m.fullName).toEqual({
        name: m.fullName,
        classId: m.classId,
        methodId: m.methodId,
        synchronous: m.synchronous,
        hasContent: m.hasContent,
      });
      expect(methodName(idOf(m))).toBe(m.fullName);
    }
    expect(methodInfo((60 << 16) | 999)).toBeUndefined();
    expect(methodName((60 << 16) | 999)).toBe('unknown(60,999)');
    expect(specMethod('basic.publish').hasContent).toBe(true);
    expect(specMethod('queue.declare').synchronous).toBe(true);
  });

  it('methodDefaults hold the default of every argument that has one, and nothing else', () => {
    const defaults = methodDefaults as unknown as Record<string, Record<string, unknown>>;
    const seen = new Set<string>();
    for (const m of specMethods) {
      const expected: Record<string, unknown> = {};
      for (const a of m.args) {
        if (a.default === undefined || a.default === null) continue;
        if (a.type === 'longstr') expected[a.field] = Buffer.from(a.default as string);
        else if (a.type === 'table') expected[a.field] = {};
        else expected[a.field] = a.default;
      }
      if (Object.keys(expected).length === 0) {
        expect(defaults[m.key], m.fullName).toBeUndefined();
        continue;
      }
      seen.add(m.key);
      expect(defaults[m.key], m.fullName).toEqual(expected);
    }
    expect(Object.keys(defaults).sort()).toEqual([...seen].sort());
  });
});

describe.each(['extreme', 'varied'] as const)(
  'every method, %s non-default arguments',
  (flavour) => {
    it.each(specMethods.map((m) => [m.fullName, m] as const))('%s', (_name, m) => {
      const args = nonDefaultArgs(m, flavour);
      for (const a of m.args) {
        if (a.default === undefined || a.default === null) continue;
        const def = a.type === 'longstr' ? Buffer.from(a.default as string) : a.default;
        expect(args[a.field], `${m.fullName} ${a.field} is not its default`).not.toEqual(def);
      }

      const bytes = encode(idOf(m), args);
      expect(bytes.toString('hex')).toBe(referenceMethod(m, args).toString('hex'));
      expect(decodeAll(bytes)).toEqual({ id: idOf(m), ...args });

      // Decoding must honour the reader's window, not assume the payload starts at offset 0.
      const framed = Buffer.concat([Buffer.from([0xde, 0xad, 0xbe]), bytes, Buffer.from([0xef])]);
      const r = new Reader(framed, 3, 3 + bytes.length);
      expect(decodeMethod(r)).toEqual({ id: idOf(m), ...args });
      expect(r.pos).toBe(3 + bytes.length);
    });
  },
);

describe('bit packing', () => {
  const withBits = specMethods.filter((m) => m.args.some((a) => a.type === 'bit'));

  it('the spec has methods with several consecutive bits', () => {
    const maxBits = Math.max(...withBits.map((m) => m.args.filter((a) => a.type === 'bit').length));
    expect(maxBits).toBeGreaterThanOrEqual(5);
  });

  it.each(withBits.map((m) => [m.fullName, m] as const))(
    '%s: every combination of bits packs from the low bit and round-trips',
    (_name, m) => {
      const bitFields = m.args.filter((a) => a.type === 'bit').map((a) => a.field);
      const base = nonDefaultArgs(m, 'varied');
      for (let mask = 0; mask < 1 << bitFields.length; mask++) {
        const args = { ...base };
        bitFields.forEach((f, i) => (args[f] = (mask & (1 << i)) !== 0));
        const bytes = encode(idOf(m), args);
        expect(bytes.toString('hex'), `${m.fullName} mask ${mask}`).toBe(
          referenceMethod(m, args).toString('hex'),
        );
        expect(decodeAll(bytes)).toEqual({ id: idOf(m), ...args });
      }
    },
  );

  it('bits are only set by exact flag positions: a stray high bit in the octet is ignored', () => {
    // queue.declare's five bits occupy the low five bits of one octet; the other three are
    // reserved. A decoder reading the wrong bit would flip one of the five flags here.
    const payload = Buffer.concat([
      hex('0032 000a 0000'),
      hex('01'),
      ascii('q'),
      hex('e0 00000000'),
    ]);
    expect(decodeAll(payload)).toMatchObject({
      passive: false,
      durable: false,
      exclusive: false,
      autoDelete: false,
      nowait: false,
    });
  });
});

describe('exact wire bytes, computed by hand from the spec', () => {
  it('basic.publish', () => {
    const base = { ticket: 0, exchange: 'amq.direct', routingKey: 'rk' };
    expect(encode(Method.BasicPublish, { ...base, mandatory: true, immediate: false })).toEqual(
      Buffer.concat([
        hex('003c 0028 0000 0a'),
        ascii('amq.direct'),
        hex('02'),
        ascii('rk'),
        hex('01'),
      ]),
    );
    expect(encode(Method.BasicPublish, { ...base, mandatory: false, immediate: true })).toEqual(
      Buffer.concat([
        hex('003c 0028 0000 0a'),
        ascii('amq.direct'),
        hex('02'),
        ascii('rk'),
        hex('02'),
      ]),
    );
  });

  it('basic.deliver with a delivery tag above 2^32', () => {
    const args = {
      consumerTag: 'ctag',
      deliveryTag: 2 ** 32 + 5,
      redelivered: true,
      exchange: '',
      routingKey: 'k',
    };
    const expected = Buffer.concat([
      hex('003c 003c 04'),
      ascii('ctag'),
      hex('00000001 00000005'),
      hex('01'),
      hex('00'),
      hex('01'),
      ascii('k'),
    ]);
    expect(encode(Method.BasicDeliver, args)).toEqual(expected);
    expect(decodeAll(expected)).toEqual({ id: Method.BasicDeliver, ...args });
  });

  it('queue.declare: five bits in one octet, then the table', () => {
    const base = { ticket: 0, queue: 'q', exclusive: false, nowait: false };
    expect(
      encode(Method.QueueDeclare, {
        ...base,
        passive: false,
        durable: true,
        autoDelete: true,
        arguments: {},
      }),
    ).toEqual(Buffer.concat([hex('0032 000a 0000 01'), ascii('q'), hex('0a'), hex('00000000')]));

    const all = {
      ticket: 7,
      queue: 'q',
      passive: true,
      durable: true,
      exclusive: true,
      autoDelete: true,
      nowait: true,
      arguments: { 'x-max-length': 10 },
    };
    const expected = Buffer.concat([
      hex('0032 000a 0007 01'),
      ascii('q'),
      hex('1f'),
      hex('00000012 0c'),
      ascii('x-max-length'),
      ascii('I'),
      hex('0000000a'),
    ]);
    expect(encode(Method.QueueDeclare, all)).toEqual(expected);
    expect(decodeAll(expected)).toEqual({ id: Method.QueueDeclare, ...all });
  });

  it('connection.tune, alone and as a whole frame on channel 0', () => {
    const args = { channelMax: 2047, frameMax: 131072, heartbeat: 60 };
    const payload = hex('000a 001e 07ff 00020000 003c');
    expect(encode(Method.ConnectionTune, args)).toEqual(payload);

    const w = new Writer(4);
    writeMethodFrame(w, 0, { id: Method.ConnectionTune, ...args });
    expect(w.toBuffer()).toEqual(Buffer.concat([hex('01 0000 0000000c'), payload, hex('ce')]));
  });

  it('connection.close and channel.close carry the failing class and method', () => {
    const args = { replyCode: 404, replyText: 'NOT_FOUND', classId: 50, methodId: 10 };
    const expected = Buffer.concat([
      hex('0014 0028 0194 09'),
      ascii('NOT_FOUND'),
      hex('0032 000a'),
    ]);
    expect(encode(Method.ChannelClose, args)).toEqual(expected);
  });
});

describe('decodeMethod errors', () => {
  it('an unknown class or method raises NOT_IMPLEMENTED naming it', () => {
    for (const [cls, mth] of [
      [60, 999],
      [61, 10],
      [0, 0],
      [0xffff, 0xffff],
    ] as const) {
      const payload = Buffer.alloc(4);
      payload.writeUInt16BE(cls, 0);
      payload.writeUInt16BE(mth, 2);
      let caught: unknown;
      try {
        decodeMethod(new Reader(payload));
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(AmqpError);
      const err = caught as AmqpError;
      expect(err.replyCode).toBe(ReplyCode.NotImplemented);
      expect(err.classId).toBe(cls);
      expect(err.methodId).toBe(mth);
      expect(err.closesConnection).toBe(true);
    }
  });
});
