import { describe, expect, it } from 'vitest';
import { AmqpError } from '../../src/protocol/amqp-error.js';
import { FrameType, ReplyCode } from '../../src/protocol/generated/constants.js';
import { Reader } from '../../src/protocol/reader.js';
import { Writer } from '../../src/protocol/writer.js';
import { longestShortstr, seededRandom } from './spec-model.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function written(write: (w: Writer) => void, initialSize = 16): Buffer {
  const w = new Writer(initialSize);
  write(w);
  return w.toBuffer();
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an exception');
}

describe('Writer encodings', () => {
  it('writes integers big-endian, 64-bit ones across both halves', () => {
    expect(written((w) => w.u8(0xab))).toEqual(hex('ab'));
    expect(written((w) => w.i8(-2))).toEqual(hex('fe'));
    expect(written((w) => w.u16(0xbeef))).toEqual(hex('beef'));
    expect(written((w) => w.i16(-2))).toEqual(hex('fffe'));
    expect(written((w) => w.u32(0xdeadbeef))).toEqual(hex('deadbeef'));
    expect(written((w) => w.i32(-2))).toEqual(hex('fffffffe'));
    expect(written((w) => w.u64(2 ** 32))).toEqual(hex('00000001 00000000'));
    expect(written((w) => w.u64(2 ** 32 - 1))).toEqual(hex('00000000 ffffffff'));
    expect(written((w) => w.u64(Number.MAX_SAFE_INTEGER))).toEqual(hex('001fffff ffffffff'));
    expect(written((w) => w.u64(0x1234_5678_9abc))).toEqual(hex('00001234 56789abc'));
    expect(written((w) => w.i64(-2))).toEqual(hex('ffffffff fffffffe'));
    expect(written((w) => w.i64(-(2n ** 63n)))).toEqual(hex('80000000 00000000'));
    expect(written((w) => w.u64Exact(2n ** 64n - 1n))).toEqual(hex('ffffffff ffffffff'));
    expect(written((w) => w.f32(-2.5))).toEqual(hex('c0200000'));
    expect(written((w) => w.f64(1))).toEqual(hex('3ff0000000000000'));
  });

  it('writes strings with their octet length, not their character count', () => {
    expect(written((w) => w.shortstr(''))).toEqual(hex('00'));
    expect(written((w) => w.shortstr('é€'))).toEqual(hex('05 c3a9 e282ac'));
    expect(written((w) => w.longstr('é'))).toEqual(hex('00000002 c3a9'));
    expect(written((w) => w.longstr(Buffer.from([0xce])))).toEqual(hex('00000001 ce'));
    expect(written((w) => w.longstr(new Uint8Array([1, 2])))).toEqual(hex('00000002 0102'));
    expect(written((w) => w.longstr(''))).toEqual(hex('00000000'));
  });

  it('accepts a short string of exactly 255 octets and refuses 256, leaving the writer intact', () => {
    const ok: string[] = [
      longestShortstr,
      'x'.repeat(255),
      'é'.repeat(127) + 'a',
      '€'.repeat(85),
      '😀'.repeat(63) + 'abc',
    ];
    for (const s of ok) {
      expect(Buffer.byteLength(s)).toBe(255);
      const b = written((w) => w.shortstr(s), 1);
      expect(b[0]).toBe(255);
      expect(new Reader(b).shortstr()).toBe(s);
    }
    for (const s of [
      'x'.repeat(256),
      'é'.repeat(128),
      '€'.repeat(86),
      '😀'.repeat(64),
      'x'.repeat(70_000),
    ]) {
      const w = new Writer(8);
      w.u8(7);
      const err = catchError(() => w.shortstr(s));
      expect(err).toBeInstanceOf(AmqpError);
      expect((err as AmqpError).replyCode).toBe(ReplyCode.SyntaxError);
      expect((err as AmqpError).message).toMatch(/longer than 255/);
      // Nothing of the failed string was committed.
      expect(w.length).toBe(1);
      w.shortstr('ok');
      expect(w.toBuffer()).toEqual(hex('07 02 6f6b'));
    }
  });
});

describe('Writer growth and hand-over', () => {
  it('keeps every byte across many writes that grow a tiny buffer', () => {
    for (const initial of [0, 1, 7, 64]) {
      const w = new Writer(initial);
      const rand = seededRandom(99);
      const ops: [number, number | string][] = [];
      for (let i = 0; i < 5000; i++) {
        const op = rand(5);
        const v = op === 4 ? 'ä'.repeat(rand(100)) : rand(2 ** 31);
        ops.push([op, v]);
        if (op === 0) w.u8((v as number) & 0xff);
        else if (op === 1) w.u16((v as number) & 0xffff);
        else if (op === 2) w.u32(v as number);
        else if (op === 3) w.u64((v as number) * 4099);
        else w.shortstr(v as string);
      }
      const out = w.toBuffer();
      expect(out.length).toBe(w.length);
      const r = new Reader(out);
      for (const [op, v] of ops) {
        if (op === 0) expect(r.u8()).toBe((v as number) & 0xff);
        else if (op === 1) expect(r.u16()).toBe((v as number) & 0xffff);
        else if (op === 2) expect(r.u32()).toBe(v);
        else if (op === 3) expect(r.u64()).toBe((v as number) * 4099);
        else expect(r.shortstr()).toBe(v);
      }
      expect(r.remaining).toBe(0);
    }
  });

  it('grows in one step for a write larger than twice the buffer', () => {
    const w = new Writer(4);
    const big = Buffer.alloc(100_000, 0x5a);
    w.u8(1);
    w.bytes(big);
    w.u8(2);
    const out = w.toBuffer();
    expect(out.length).toBe(100_002);
    expect(out[0]).toBe(1);
    expect(out.subarray(1, 100_001).equals(big)).toBe(true);
    expect(out[100_001]).toBe(2);
  });

  it('take() hands over the bytes and later writes never touch them', () => {
    const w = new Writer(8);
    w.u32(0x01020304);
    w.shortstr('first');
    const first = w.take();
    expect(first).toEqual(hex('01020304 05 6669727374'));
    expect(w.length).toBe(0);

    w.u32(0xaabbccdd);
    w.shortstr('second');
    expect(first).toEqual(hex('01020304 05 6669727374'));
    const second = w.take();
    expect(second).toEqual(hex('aabbccdd 06 7365636f6e64'));
    expect(w.take().length).toBe(0);
  });

  it('take() after a large message releases the large buffer', () => {
    const w = new Writer(64);
    w.bytes(Buffer.alloc(1 << 20));
    expect(w.take().length).toBe(1 << 20);
    expect(w.buf.length).toBe(64);
    w.u8(3);
    expect(w.toBuffer()).toEqual(hex('03'));
  });

  it('toBuffer() copies, reset() starts over in the same buffer', () => {
    const w = new Writer(8);
    w.u16(0x1122);
    const copy = w.toBuffer();
    w.reset();
    expect(w.length).toBe(0);
    w.u16(0x3344);
    expect(copy).toEqual(hex('1122'));
    expect(w.toBuffer()).toEqual(hex('3344'));
  });

  it('startFrame/endFrame patch the size even when the buffer grows inside the frame', () => {
    const w = new Writer(2);
    w.u8(0x99); // something before the frame, so the frame does not start at offset 0
    const start = w.startFrame(FrameType.Body, 0x0102);
    const payload = Buffer.from(Array.from({ length: 5000 }, (_, i) => i & 0xff));
    w.bytes(payload);
    w.endFrame(start);
    const out = w.toBuffer();
    expect(out.subarray(0, 8)).toEqual(hex('99 03 0102 00001388'));
    expect(out.subarray(8, 5008).equals(payload)).toBe(true);
    expect(out[5008]).toBe(0xce);
    expect(out.length).toBe(5009);
  });
});

describe('Reader', () => {
  it('reads every primitive', () => {
    const r = new Reader(
      hex(
        'ff 80 fffe 8001 fffffffe 80000000 00000001 00000002 ffffffff fffffffe ' +
          'ffffffffffffffff 3fc00000 bff8000000000000 03 616263 00000002 c3a9',
      ),
    );
    expect(r.u8()).toBe(255);
    expect(r.i8()).toBe(-128);
    expect(r.u16()).toBe(0xfffe);
    expect(r.i16()).toBe(-32767);
    expect(r.u32()).toBe(0xfffffffe);
    expect(r.i32()).toBe(-(2 ** 31));
    expect(r.u64()).toBe(2 ** 32 + 2);
    expect(r.i64()).toBe(-2);
    expect(r.u64Exact()).toBe(2n ** 64n - 1n);
    expect(r.f32()).toBe(1.5);
    expect(r.f64()).toBe(-1.5);
    expect(r.shortstr()).toBe('abc');
    expect(r.longstrText()).toBe('é');
    expect(r.remaining).toBe(0);
  });

  it('returns 64-bit integers as numbers while exact and as bigints beyond', () => {
    expect(new Reader(hex('001fffffffffffff')).i64()).toBe(Number.MAX_SAFE_INTEGER);
    expect(new Reader(hex('0020000000000000')).i64()).toBe(2n ** 53n);
    expect(new Reader(hex('ffe0000000000001')).i64()).toBe(Number.MIN_SAFE_INTEGER);
    expect(new Reader(hex('ffe0000000000000')).i64()).toBe(-(2n ** 53n));
    expect(new Reader(hex('001fffffffffffff')).u64Exact()).toBe(Number.MAX_SAFE_INTEGER);
    expect(new Reader(hex('0020000000000000')).u64Exact()).toBe(2n ** 53n);
  });

  it('longstr() copies, bytes() is a view', () => {
    const src = hex('00000003 010203 040506');
    const r = new Reader(src);
    const copied = r.longstr();
    const view = r.bytes(3);
    src.fill(0);
    expect(copied).toEqual(hex('010203'));
    expect(view).toEqual(hex('000000'));
  });

  it('stops at its end even when the buffer goes on, and reset() moves the window', () => {
    const buf = hex('0102030405060708');
    const r = new Reader(buf, 2, 5);
    expect(r.remaining).toBe(3);
    const err = catchError(() => r.u32());
    expect(err).toBeInstanceOf(AmqpError);
    expect((err as AmqpError).replyCode).toBe(ReplyCode.FrameError);
    expect(r.pos).toBe(2);
    expect(r.u16()).toBe(0x0304);
    r.skip(1);
    expect(r.remaining).toBe(0);
    r.reset(buf, 4);
    expect(r.u32()).toBe(0x05060708);
  });
});
