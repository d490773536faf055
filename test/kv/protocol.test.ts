/**
 * The client protocol codec (src/kv/protocol.ts) against frames built by the independent test
 * codec (wire-client.ts), whole and split at every byte boundary.
 */
import { describe, expect, it } from 'vitest';
import {
  ErrorCode,
  FrameReader,
  MAX_KEY,
  MAX_PUT_PAYLOAD,
  MsgType,
  Result,
  decodeRequest,
  decodeServerMessage,
  encodeError,
  encodeGetResponse,
  encodeKeyResponse,
  typeName,
} from '../../src/kv/protocol.js';
import type { ClientRequest, FrameError } from '../../src/kv/protocol.js';
import { T, delFrame, frame, getFrame, parseReply, putFrame } from './wire-client.js';

function frames(
  bytes: Buffer,
  cut: number[],
): { type: number; length: number; payload: Buffer | null }[] {
  const r = new FrameReader();
  const out: { type: number; length: number; payload: Buffer | null }[] = [];
  let pos = 0;
  for (const c of [...cut, bytes.length]) {
    r.push(bytes.subarray(pos, c));
    pos = c;
    for (let f = r.next(); f !== null; f = r.next())
      out.push({ ...f, payload: f.payload && Buffer.from(f.payload) });
  }
  return out;
}

describe('message numbering follows the seed table', () => {
  it('numbers the seed types 1..19 in table order and adds delete as 20/21', () => {
    const seedOrder = [
      'MSG_PUT',
      'MSG_PUT_RESPONSE',
      'MSG_GET',
      'MSG_GET_RESPONSE',
      'MSG_STORE_REQUEST',
      'MSG_STORE_RESPONSE',
      'MSG_RETRIEVE_REQUEST',
      'MSG_RETRIEVE_RESPONSE',
      'MSG_WORKER_REGISTRY_START',
      'MSG_WORKER_ENTRY',
      'MSG_WORKER_REGISTRY_END',
      'MSG_DATA_EXPORT_START',
      'MSG_DATA_ENTRY',
      'MSG_DATA_EXPORT_END',
      'MSG_WORKER_READY',
      'MSG_WORKER_NOT_READY',
      'MSG_PEER_NOTIFY',
      'MSG_SHUTDOWN',
      'MSG_ERROR',
      'MSG_DELETE',
      'MSG_DELETE_RESPONSE',
    ];
    seedOrder.forEach((name, i) => expect(typeName(i + 1)).toBe(name));
    expect(MsgType.Shutdown).toBe(T.SHUTDOWN);
    expect(MsgType.Error).toBe(T.ERROR);
    expect(MsgType.Delete).toBe(T.DELETE);
    expect(Result).toEqual({ Ok: 0, NotFound: 1, Error: 2 });
  });
});

describe('FrameReader and decodeRequest', () => {
  const stream = Buffer.concat([
    putFrame('k1', 'hello'),
    getFrame('k1'),
    delFrame(Buffer.from([0, 255, 7])),
    putFrame('empty', ''),
    frame(42, Buffer.from('junk')),
    frame(T.PUT_RESPONSE, Buffer.from([0, 0, 1, 65])),
    frame(T.GET, Buffer.from([0, 9, 1])),
    frame(T.GET, Buffer.from([0, 0])),
    frame(T.SHUTDOWN, Buffer.alloc(0)),
  ]);

  const expected = (rs: (ClientRequest | FrameError)[]): void => {
    expect(rs).toHaveLength(9);
    expect(rs[0]).toMatchObject({ op: MsgType.Put });
    const put = rs[0] as Extract<ClientRequest, { op: 1 }>;
    expect(put.key.toString()).toBe('k1');
    expect(put.value.toString()).toBe('hello');
    expect(rs[1]).toMatchObject({ op: MsgType.Get });
    expect((rs[2] as ClientRequest).key).toEqual(Buffer.from([0, 255, 7]));
    expect((rs[3] as Extract<ClientRequest, { op: 1 }>).value.length).toBe(0);
    expect(rs[4]).toMatchObject({ op: 0, code: ErrorCode.UnknownType });
    expect(rs[5]).toMatchObject({ op: 0, code: ErrorCode.UnexpectedType });
    expect(rs[6]).toMatchObject({ op: 0, code: ErrorCode.Malformed });
    expect(rs[7]).toMatchObject({ op: 0, code: ErrorCode.InvalidKey });
    expect(rs[8]).toMatchObject({ op: 0, code: ErrorCode.UnexpectedType });
  };

  it('decodes a stream of frames whole', () => {
    expected(frames(stream, []).map((f) => decodeRequest(f.type, f.payload!)));
  });

  it('decodes the same stream split at every byte boundary, and byte by byte', () => {
    for (let cut = 1; cut < stream.length; cut++) {
      expected(frames(stream, [cut]).map((f) => decodeRequest(f.type, f.payload!)));
    }
    const everyByte = Array.from({ length: stream.length - 1 }, (_, i) => i + 1);
    expected(frames(stream, everyByte).map((f) => decodeRequest(f.type, f.payload!)));
  });

  it('rejects lengths that disagree with the payload, in both directions', () => {
    const p = putFrame('key', 'value').subarray(3);
    expect(decodeRequest(T.PUT, Buffer.concat([p, Buffer.from([1])]))).toMatchObject({
      code: ErrorCode.Malformed,
    });
    expect(decodeRequest(T.PUT, p.subarray(0, p.length - 1))).toMatchObject({
      code: ErrorCode.Malformed,
    });
    expect(decodeRequest(T.PUT, Buffer.from([0, 3, 1, 2]))).toMatchObject({
      code: ErrorCode.Malformed,
    });
    expect(decodeRequest(T.PUT, Buffer.alloc(2))).toMatchObject({ code: ErrorCode.Malformed });
  });

  it('refuses a PUT whose GET_RESPONSE would not fit, and accepts the largest that does', () => {
    const key = Buffer.from('k');
    const fits = putFrame(key, Buffer.alloc(MAX_PUT_PAYLOAD - 5)).subarray(3);
    expect(fits.length).toBe(MAX_PUT_PAYLOAD);
    expect(decodeRequest(T.PUT, fits)).toMatchObject({ op: MsgType.Put });
    const tooBig = putFrame(key, Buffer.alloc(MAX_PUT_PAYLOAD - 4)).subarray(3);
    expect(decodeRequest(T.PUT, tooBig)).toMatchObject({ code: ErrorCode.TooLarge });
    // The largest GET_RESPONSE, for the largest PUT, still fits its 2-byte length.
    const resp = encodeGetResponse(Result.Ok, key, Buffer.alloc(MAX_PUT_PAYLOAD - 5));
    expect(resp.readUInt16BE(1)).toBe(0xffff);
  });

  it('refuses GET and DELETE keys whose response would not fit, whatever the frame allows', () => {
    expect(MAX_KEY).toBe(65530);
    const payload = (f: Buffer): Buffer => f.subarray(3);
    // The longest key: its NOT_FOUND GET_RESPONSE (5 bytes besides the key) just fits.
    const longest = Buffer.alloc(MAX_KEY, 7);
    expect(decodeRequest(T.GET, payload(getFrame(longest)))).toMatchObject({ op: MsgType.Get });
    expect(decodeRequest(T.DELETE, payload(delFrame(longest)))).toMatchObject({
      op: MsgType.Delete,
    });
    expect(encodeGetResponse(Result.NotFound, longest, null).readUInt16BE(1)).toBe(0xffff);
    for (const n of [MAX_KEY + 1, 65532, 65533]) {
      const key = Buffer.alloc(n, 7);
      for (const [type, f] of [
        [T.GET, getFrame(key)],
        [T.DELETE, delFrame(key)],
      ] as const) {
        const r = decodeRequest(type, payload(f));
        expect(r).toMatchObject({ op: 0, code: ErrorCode.TooLarge });
        expect((r as FrameError).message).toMatch(/at most|may have/);
      }
    }
    // Encoding a response that cannot fit throws a RangeError rather than writing a bad frame.
    expect(() => encodeGetResponse(Result.NotFound, Buffer.alloc(MAX_KEY + 1), null)).toThrow(
      RangeError,
    );
  });

  it('skips an oversized payload without buffering it, and goes on with the next frame', () => {
    const r = new FrameReader(100);
    const big = frame(T.PUT, Buffer.alloc(5000, 1));
    const after = getFrame('next');
    const all = Buffer.concat([big, after]);
    for (let i = 0; i < all.length; i += 512) r.push(all.subarray(i, i + 512));
    const first = r.next();
    expect(first).toMatchObject({ type: T.PUT, length: 5000, payload: null });
    expect(r.pending).toBeLessThan(600);
    const second = r.next();
    expect(second?.type).toBe(T.GET);
    expect(decodeRequest(second!.type, second!.payload!)).toMatchObject({ op: MsgType.Get });
    expect(r.next()).toBeNull();
  });
});

describe('responses decode with the independent codec', () => {
  it('PUT/DELETE/GET responses and MSG_ERROR', () => {
    const key = Buffer.from('the-key');
    const cases = [
      encodeKeyResponse(MsgType.PutResponse, Result.Ok, key),
      encodeKeyResponse(MsgType.DeleteResponse, Result.NotFound, key),
      encodeGetResponse(Result.Ok, key, Buffer.from('v')),
      encodeGetResponse(Result.NotFound, key, null),
      encodeError(ErrorCode.Malformed, 'bad frame'),
    ];
    const parsed = cases.map((b) => parseReply({ type: b[0]!, payload: b.subarray(3) }));
    expect(parsed.map((p) => p.type)).toEqual([2, 21, 4, 4, 19]);
    expect(parsed[0]).toMatchObject({ result: 0 });
    expect(parsed[1]).toMatchObject({ result: 1 });
    expect(parsed[2]!.value.toString()).toBe('v');
    expect(parsed[3]!.value.length).toBe(0);
    expect(parsed[4]).toMatchObject({ code: 3, message: 'bad frame' });
    for (const b of cases) {
      expect(b.readUInt16BE(1)).toBe(b.length - 3);
      expect(() => decodeServerMessage(b[0]!, b.subarray(3))).not.toThrow();
    }
  });
});
