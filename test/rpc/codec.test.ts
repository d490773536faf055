import { describe, expect, it } from 'vitest';
import { RpcError, Reason, decodeValue, encodeValue } from '../../src/rpc/index.js';

const text = (v: unknown): string => encodeValue(v).toString('utf8');

/** The body encoding of docs/rpc-wire-format.md, section 4, byte for byte. */
describe('rpc codec', () => {
  it('encodes plain JSON data exactly as JSON.stringify does', () => {
    const v = { a: 1, b: 'two', c: [true, null, { d: 1.5 }], e: {} };
    expect(text(v)).toBe(JSON.stringify(v));
  });

  it('tags the values JSON has no form for, as the document shows', () => {
    expect(text(new Uint8Array([0, 1, 2, 255]))).toBe('{"$bin":"AAEC/w=="}');
    expect(text(Buffer.from([0, 1, 2, 255]))).toBe('{"$buf":"AAEC/w=="}');
    expect(text(new Date(1732390000123))).toBe('{"$date":1732390000123}');
    expect(text(new Date(NaN))).toBe('{"$date":null}');
    expect(text(-123456789012345678901234567890n)).toBe(
      '{"$bigint":"-123456789012345678901234567890"}',
    );
    expect(text([NaN, Infinity, -Infinity, -0])).toBe(
      '[{"$num":"NaN"},{"$num":"Infinity"},{"$num":"-Infinity"},{"$num":"-0"}]',
    );
    expect(text([1, undefined])).toBe('[1,{"$undef":1}]');
    expect(text({ a: 1, gone: undefined })).toBe('{"a":1}');
    expect(text(new Map([['k', 1]]))).toBe('{"$map":[["k",1]]}');
    expect(text(new Set([1, 'x']))).toBe('{"$set":[1,"x"]}');
    expect(text({ $x: 1 })).toBe('{"$obj":{"$x":1}}');
    expect(text({ $x: 1, y: 2 })).toBe('{"$x":1,"y":2}');
    expect(encodeValue(undefined).length).toBe(0);
  });

  it('round-trips every supported type exactly', () => {
    const v = {
      u8: new Uint8Array([1, 2, 3]),
      sub: new Uint8Array(Buffer.from([9, 9, 1, 2, 9]).buffer).subarray(0, 0),
      buf: Buffer.from('hello'),
      dates: [new Date(0), new Date(-1), new Date(8.64e15)],
      big: [0n, -1n, 2n ** 64n],
      odd: [NaN, -0, Infinity],
      holes: [undefined, undefined],
      m: new Map<unknown, unknown>([[{ k: 1 }, new Set([new Date(5)])]]),
      escaped: { $obj: { $ref: 'x' } },
      nested: { a: { b: [{ $bin: 'literal' }] } },
      s: '\u2028 "\\ \ud83d\ude00',
    };
    expect(decodeValue(encodeValue(v))).toStrictEqual(v);
    expect(decodeValue(Buffer.alloc(0))).toBeUndefined();
  });

  it('copies nothing when there is nothing to convert', () => {
    const inner = { x: [1, 2, 3] };
    const v = { inner };
    // Same JSON text; and an object with a special value deep inside is rebuilt only on its path.
    expect(text(v)).toBe('{"inner":{"x":[1,2,3]}}');
    const w = { keep: inner, change: { d: new Date(1) } };
    expect(text(w)).toBe('{"keep":{"x":[1,2,3]},"change":{"d":{"$date":1}}}');
    expect(w.change.d).toBeInstanceOf(Date);
  });

  it('refuses values it cannot send, naming where they are', () => {
    const bad = (v: unknown): RpcError => {
      try {
        encodeValue(v);
      } catch (e) {
        return e as RpcError;
      }
      throw new Error('encoded');
    };
    expect(bad({ a: [1, () => 2] })).toMatchObject({
      reason: Reason.Unencodable,
      issues: [{ path: ['a', 1] }],
    });
    expect(bad({ s: Symbol('x') }).message).toContain('s: cannot send a symbol');
    expect(bad(new Int32Array(2)).message).toContain('Int32Array');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(bad(cyclic).message).toContain('cycle');
  });

  it('rejects malformed bodies with INTERNAL / MALFORMED', () => {
    for (const body of [
      '{',
      '{"$nope":1}',
      '{"$bigint":"12x"}',
      '{"$num":"zero"}',
      '{"$map":[1]}',
    ]) {
      expect(() => decodeValue(Buffer.from(body))).toThrow(RpcError);
      try {
        decodeValue(Buffer.from(body));
      } catch (e) {
        expect((e as RpcError).reason).toBe(Reason.Malformed);
      }
    }
  });
});
