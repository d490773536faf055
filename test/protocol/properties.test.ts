import { describe, expect, it } from 'vitest';
import {
  decodeContentHeader,
  readContentHeader,
  writeBodyFrames,
  writeHeaderFrame,
  writeHeartbeatFrame,
} from '../../src/protocol/frames.js';
import { FrameType } from '../../src/protocol/generated/constants.js';
import {
  BasicPropertyFlag,
  BasicPropertyNames,
  decodeBasicProperties,
  encodeBasicProperties,
} from '../../src/protocol/generated/properties.js';
import type { BasicProperties } from '../../src/protocol/generated/properties.js';
import { Reader } from '../../src/protocol/reader.js';
import { Writer } from '../../src/protocol/writer.js';
import { basicPropertySpec, pascal, referenceValue } from './spec-model.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function encode(p: BasicProperties): Buffer {
  const w = new Writer(4);
  encodeBasicProperties(w, p);
  return w.toBuffer();
}

function decode(b: Buffer): BasicProperties {
  const r = new Reader(b);
  const p = decodeBasicProperties(r);
  expect(r.pos).toBe(b.length);
  return p;
}

const all: Required<BasicProperties> = {
  contentType: 'application/json',
  contentEncoding: 'gzip',
  headers: { 'x-retries': 3, trace: 'abc', nested: { ok: true } },
  deliveryMode: 2,
  priority: 9,
  correlationId: 'corr-é-1',
  replyTo: 'amq.rabbitmq.reply-to.g1h2',
  expiration: '60000',
  messageId: 'm'.repeat(255),
  timestamp: 2 ** 40 + 17,
  type: 'order.created',
  userId: 'guest',
  appId: 'warren-test',
  clusterId: 'c1',
};

describe('basic properties', () => {
  it('the generated names and flag bits follow the spec order, first property on bit 15', () => {
    expect(basicPropertySpec).toHaveLength(14);
    expect([...BasicPropertyNames]).toEqual(basicPropertySpec.map((p) => p.field));
    const flags = BasicPropertyFlag as Record<string, number>;
    basicPropertySpec.forEach((p, i) =>
      expect(flags[pascal(p.specName)], p.specName).toBe(1 << (15 - i)),
    );
  });

  it('all 14 properties round-trip, with every flag set and in spec order on the wire', () => {
    const bytes = encode(all);
    expect(bytes.readUInt16BE(0)).toBe(0xfffc);
    const values = all as unknown as Record<string, unknown>;
    const expected = Buffer.concat([
      hex('fffc'),
      ...basicPropertySpec.map((p) => referenceValue(p.type, values[p.field])),
    ]);
    expect(bytes.toString('hex')).toBe(expected.toString('hex'));
    expect(decode(bytes)).toEqual(all);
  });

  it.each(basicPropertySpec.map((p, i) => [p.field, i] as const))(
    '%s alone sets only its flag and encodes only its value',
    (field, i) => {
      const value = (all as unknown as Record<string, unknown>)[field];
      const p = { [field]: value } as BasicProperties;
      const bytes = encode(p);
      expect(bytes.readUInt16BE(0)).toBe(1 << (15 - i));
      expect(bytes.subarray(2)).toEqual(referenceValue(basicPropertySpec[i]!.type, value));
      const back = decode(bytes);
      expect(Object.keys(back)).toEqual([field]);
      expect(back).toEqual(p);
    },
  );

  it('absent and undefined properties are not encoded and decode as absent', () => {
    expect(encode({})).toEqual(hex('0000'));
    expect(encode({ contentType: undefined, headers: undefined, priority: undefined })).toEqual(
      hex('0000'),
    );
    expect(Object.keys(decode(hex('0000')))).toEqual([]);
    const some = encode({ deliveryMode: 1, type: undefined, appId: 'a' });
    expect(some).toEqual(hex('1008 01 0161'));
    expect(decode(some)).toEqual({ deliveryMode: 1, appId: 'a' });
  });

  it('falsy values are still present: empty strings, zero, an empty table', () => {
    const p: BasicProperties = { contentType: '', headers: {}, priority: 0, timestamp: 0 };
    const bytes = encode(p);
    expect(bytes).toEqual(hex('a840 00 00000000 00 0000000000000000'));
    expect(decode(bytes)).toEqual(p);
  });

  it('skips a continuation flags word (bit 0) that a peer may send', () => {
    // content-type set, continuation bit set; the second word has no flags.
    expect(decode(hex('8001 0000 04 74657874'))).toEqual({ contentType: 'text' });
  });
});

describe('content frames', () => {
  it('a header frame has class 60, weight 0, the body size and the properties', () => {
    const w = new Writer(8);
    writeHeaderFrame(w, 3, 2 ** 33 + 1, { contentType: 'text/plain', deliveryMode: 2 });
    const frame = w.toBuffer();
    const payload = hex('003c 0000 0000000200000001 9000 0a');
    const expected = Buffer.concat([
      hex('02 0003'),
      hex('0000001a'),
      payload,
      Buffer.from('text/plain'),
      hex('02 ce'),
    ]);
    expect(frame.toString('hex')).toBe(expected.toString('hex'));

    const body = frame.subarray(7, frame.length - 1);
    expect(decodeContentHeader(body)).toEqual({
      classId: 60,
      bodySize: 2 ** 33 + 1,
      propertiesOffset: 12,
      properties: { contentType: 'text/plain', deliveryMode: 2 },
    });
    // Routing reads only the fixed part; the properties start right after it.
    const r = new Reader(body);
    expect(readContentHeader(r)).toEqual({
      classId: 60,
      bodySize: 2 ** 33 + 1,
      propertiesOffset: 12,
    });
    expect(r.pos).toBe(12);
    expect(decodeBasicProperties(r)).toEqual({ contentType: 'text/plain', deliveryMode: 2 });
  });

  it('a header frame round-trips all properties', () => {
    const w = new Writer(8);
    writeHeaderFrame(w, 1, 12345, all);
    const frame = w.toBuffer();
    expect(frame.readUInt32BE(3)).toBe(frame.length - 8);
    expect(decodeContentHeader(frame.subarray(7, frame.length - 1))).toMatchObject({
      bodySize: 12345,
      properties: all,
    });
  });

  it('body frames are cut at frameMax - 8 and an empty body writes no frame', () => {
    const body = Buffer.from(Array.from({ length: 10_000 }, (_, i) => i & 0xff));
    for (const frameMax of [4096, 4104, 10_008, 10_007, 131_072, 0]) {
      const w = new Writer(16);
      writeBodyFrames(w, 9, body, frameMax);
      const out = w.toBuffer();
      const chunks: Buffer[] = [];
      for (let pos = 0; pos < out.length;) {
        expect(out[pos]).toBe(FrameType.Body);
        expect(out.readUInt16BE(pos + 1)).toBe(9);
        const size = out.readUInt32BE(pos + 3);
        if (frameMax !== 0) expect(size + 8).toBeLessThanOrEqual(frameMax);
        expect(out[pos + 7 + size]).toBe(0xce);
        chunks.push(out.subarray(pos + 7, pos + 7 + size));
        pos += size + 8;
      }
      const expectedFrames = frameMax === 0 ? 1 : Math.ceil(body.length / (frameMax - 8));
      expect(chunks, `frameMax ${frameMax}`).toHaveLength(expectedFrames);
      expect(Buffer.concat(chunks)).toEqual(body);
    }
    const w = new Writer(16);
    writeBodyFrames(w, 1, Buffer.alloc(0), 4096);
    expect(w.length).toBe(0);
  });

  it('a heartbeat is an empty frame of type 8 on channel 0', () => {
    const w = new Writer(1);
    writeHeartbeatFrame(w);
    expect(w.toBuffer()).toEqual(hex('08 0000 00000000 ce'));
  });
});
