import { describe, expect, it } from 'vitest';
import { AmqpError } from '../../src/protocol/amqp-error.js';
import { FrameParser } from '../../src/protocol/frame-parser.js';
import {
  decodeContentHeader,
  writeBodyFrames,
  writeHeaderFrame,
  writeHeartbeatFrame,
  writeMethodFrame,
} from '../../src/protocol/frames.js';
import { FRAME_END, FrameType, ReplyCode } from '../../src/protocol/generated/constants.js';
import { Method, decodeMethod, methodDefaults } from '../../src/protocol/generated/methods.js';
import type {
  BasicDeliver,
  BasicPublish,
  ConnectionStart,
} from '../../src/protocol/generated/methods.js';
import { Reader } from '../../src/protocol/reader.js';
import { Writer } from '../../src/protocol/writer.js';
import { seededRandom } from './spec-model.js';

interface Frame {
  type: number;
  channel: number;
  payload: string;
}

/** A parser that records copies of its frames (payloads are views valid only during onFrame). */
function recorder(maxFrameSize = 131072): { parser: FrameParser; frames: Frame[] } {
  const frames: Frame[] = [];
  const parser = new FrameParser(
    {
      onFrame(type, channel, payload) {
        frames.push({ type, channel, payload: payload.toString('hex') });
      },
    },
    maxFrameSize,
  );
  return { parser, frames };
}

function parseChunks(chunks: Buffer[], maxFrameSize?: number): Frame[] {
  const { parser, frames } = recorder(maxFrameSize);
  for (const c of chunks) parser.push(c);
  expect(parser.buffered, 'nothing left over at the end of the stream').toBe(0);
  return frames;
}

const body1 = Buffer.from(Array.from({ length: 2500 }, (_, i) => (i * 31 + 7) & 0xff));
const publish1: BasicPublish = {
  id: Method.BasicPublish,
  ticket: 0,
  exchange: 'amq.topic',
  routingKey: 'a.b.c',
  mandatory: true,
  immediate: false,
};
const deliver: BasicDeliver = {
  id: Method.BasicDeliver,
  consumerTag: 'amq.ctag-1',
  deliveryTag: 2 ** 40 + 3,
  redelivered: true,
  exchange: 'ex',
  routingKey: 'rk',
};
const start: ConnectionStart = {
  id: Method.ConnectionStart,
  versionMajor: 0,
  versionMinor: 9,
  serverProperties: { product: 'Warren', capabilities: { publisher_confirms: true } },
  mechanisms: Buffer.from('PLAIN AMQPLAIN'),
  locales: Buffer.from('en_US'),
};

/**
 * A realistic stream: methods, content headers and bodies on several channels (0, 1, 2 and the
 * largest channel number), heartbeats, a body split over three frames and an empty body frame.
 */
function buildStream(): Buffer {
  const w = new Writer(32);
  writeMethodFrame(w, 0, start);
  writeHeartbeatFrame(w);
  writeMethodFrame(w, 1, { id: Method.ChannelOpen, outOfBand: '' });
  writeMethodFrame(w, 1, publish1);
  writeHeaderFrame(w, 1, body1.length, { contentType: 'application/octet-stream' });
  writeBodyFrames(w, 1, body1, 1000);
  writeMethodFrame(w, 2, { ...publish1, routingKey: 'other' });
  writeHeaderFrame(w, 2, 0, {});
  writeMethodFrame(w, 65535, deliver);
  writeHeaderFrame(w, 65535, 5, { deliveryMode: 2, headers: { 'x-n': 1 } });
  writeBodyFrames(w, 65535, Buffer.from('hello'), 4096);
  const empty = w.startFrame(FrameType.Body, 7);
  w.endFrame(empty);
  writeHeartbeatFrame(w);
  writeMethodFrame(w, 1, {
    id: Method.ChannelClose,
    ...methodDefaults.ChannelClose,
    replyCode: 200,
    classId: 0,
    methodId: 0,
  });
  return w.take();
}

const stream = buildStream();
const expected = parseChunks([stream]);

describe('FrameParser on a stream of many frames', () => {
  it('parses the whole stream in one chunk into the frames that were written', () => {
    expect(expected.map((f) => [f.type, f.channel])).toEqual([
      [FrameType.Method, 0],
      [FrameType.Heartbeat, 0],
      [FrameType.Method, 1],
      [FrameType.Method, 1],
      [FrameType.Header, 1],
      [FrameType.Body, 1],
      [FrameType.Body, 1],
      [FrameType.Body, 1],
      [FrameType.Method, 2],
      [FrameType.Header, 2],
      [FrameType.Method, 65535],
      [FrameType.Header, 65535],
      [FrameType.Body, 65535],
      [FrameType.Body, 7],
      [FrameType.Heartbeat, 0],
      [FrameType.Method, 1],
    ]);
    const payload = (i: number): Buffer => Buffer.from(expected[i]!.payload, 'hex');
    expect(decodeMethod(new Reader(payload(0)))).toEqual(start);
    expect(payload(1).length).toBe(0);
    expect(decodeMethod(new Reader(payload(3)))).toEqual(publish1);
    expect(decodeContentHeader(payload(4))).toMatchObject({
      classId: 60,
      bodySize: body1.length,
      properties: { contentType: 'application/octet-stream' },
    });
    expect([payload(5).length, payload(6).length, payload(7).length]).toEqual([992, 992, 516]);
    expect(Buffer.concat([payload(5), payload(6), payload(7)])).toEqual(body1);
    expect(decodeMethod(new Reader(payload(10)))).toEqual(deliver);
    expect(payload(12).toString()).toBe('hello');
    expect(payload(13).length).toBe(0);
    // Every byte of the stream belongs to exactly one frame.
    const total = expected.reduce((n, f) => n + f.payload.length / 2 + 8, 0);
    expect(total).toBe(stream.length);
  });

  it('yields the same frames when the stream is split in two at every byte boundary', () => {
    for (let i = 0; i <= stream.length; i++) {
      expect(parseChunks([stream.subarray(0, i), stream.subarray(i)]), `split at ${i}`).toEqual(
        expected,
      );
    }
  });

  it('yields the same frames when fed one byte at a time', () => {
    const chunks = Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1));
    expect(parseChunks(chunks)).toEqual(expected);
  });

  it('yields the same frames in random chunkings, even when the caller reuses its buffer', () => {
    const rand = seededRandom(20240601);
    const scratch = Buffer.alloc(stream.length);
    for (let run = 0; run < 300; run++) {
      const { parser, frames } = recorder();
      const maxChunk = 1 + rand(run % 3 === 0 ? 16 : 3000);
      let pos = 0;
      while (pos < stream.length) {
        const n = Math.min(1 + rand(maxChunk), stream.length - pos);
        // The socket's buffer is overwritten after each push: the parser must have copied
        // whatever it still needs.
        stream.copy(scratch, 0, pos, pos + n);
        parser.push(scratch.subarray(0, n));
        scratch.fill(0xaa, 0, n);
        pos += n;
      }
      expect(frames, `run ${run}`).toEqual(expected);
      expect(parser.buffered).toBe(0);
    }
  });

  it('reports how many bytes of an incomplete frame it holds', () => {
    const { parser, frames } = recorder();
    const firstFrameLength = expected[0]!.payload.length / 2 + 8;
    parser.push(stream.subarray(0, 3));
    expect(parser.buffered).toBe(3);
    parser.push(stream.subarray(3, 20));
    expect(parser.buffered).toBe(20);
    parser.push(stream.subarray(20, firstFrameLength + 2));
    expect(frames).toHaveLength(1);
    expect(parser.buffered).toBe(2);
  });
});

function frameBytes(type: number, channel: number, payload: Buffer, end = FRAME_END): Buffer {
  const header = Buffer.alloc(7);
  header[0] = type;
  header.writeUInt16BE(channel, 1);
  header.writeUInt32BE(payload.length, 3);
  return Buffer.concat([header, payload, Buffer.from([end])]);
}

function expectFrameError(fn: () => void, pattern: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(AmqpError);
  const err = caught as AmqpError;
  expect(err.replyCode).toBe(ReplyCode.FrameError);
  expect(err.code).toBe('AMQP_FRAME_ERROR');
  expect(err.closesConnection).toBe(true);
  expect(err.replyText).toMatch(/^FRAME_ERROR - /);
  expect(err.message).toMatch(pattern);
}

describe('FrameParser errors', () => {
  it('accepts a frame of exactly maxFrameSize and rejects one octet more from its header alone', () => {
    const max = 4096;
    const fits = frameBytes(FrameType.Body, 1, Buffer.alloc(max - 8, 1));
    expect(parseChunks([fits], max)).toHaveLength(1);

    const tooBig = frameBytes(FrameType.Body, 1, Buffer.alloc(max - 7, 1));
    // Only the 7-octet header is sent: the parser must refuse before buffering the payload.
    expectFrameError(
      () => recorder(max).parser.push(tooBig.subarray(0, 7)),
      /4097 exceeds .* 4096/,
    );
    // The same with the header itself split, and with the frame behind a good one.
    const { parser } = recorder(max);
    parser.push(tooBig.subarray(0, 4));
    expectFrameError(() => parser.push(tooBig.subarray(4, 7)), /exceeds/);
    const { parser: p2, frames } = recorder(max);
    expectFrameError(() => p2.push(Buffer.concat([fits, tooBig])), /exceeds/);
    expect(frames).toHaveLength(1);
  });

  it('rejects a size field near 2^32 without allocating it', () => {
    const header = Buffer.from([FrameType.Method, 0, 0, 0xff, 0xff, 0xff, 0xf8]);
    expectFrameError(() => recorder().parser.push(header), /exceeds/);
  });

  it('honours a maxFrameSize lowered after construction (as after connection.tune-ok)', () => {
    const { parser, frames } = recorder(131072);
    parser.push(frameBytes(FrameType.Body, 1, Buffer.alloc(5000)));
    parser.maxFrameSize = 4096;
    expectFrameError(
      () => parser.push(frameBytes(FrameType.Body, 1, Buffer.alloc(5000))),
      /exceeds/,
    );
    expect(frames).toHaveLength(1);
  });

  it('rejects a frame whose end octet is not 0xce, wherever the stream is split', () => {
    const good = stream.subarray(0, expected[0]!.payload.length / 2 + 8);
    const bad = frameBytes(FrameType.Method, 1, Buffer.from('000a0033', 'hex'), 0x00);
    const all = Buffer.concat([good, bad]);
    for (let i = 0; i <= all.length; i++) {
      const { parser, frames } = recorder();
      expectFrameError(() => {
        parser.push(all.subarray(0, i));
        parser.push(all.subarray(i));
      }, /frame end octet was 0x0, expected 0xce/);
      expect(frames, `split at ${i}`).toEqual(expected.slice(0, 1));
    }
  });

  it('rejects a frame-end of 0xce one octet late (size field too small)', () => {
    const f = frameBytes(FrameType.Body, 1, Buffer.from('abcd', 'hex'));
    f.writeUInt32BE(1, 3);
    expectFrameError(() => recorder().parser.push(f), /frame end octet was 0xcd/);
  });

  it('rejects unknown frame types, including a second protocol header', () => {
    for (const type of [0, 4, 5, 7, 9, 0xce, 0xff]) {
      expectFrameError(
        () => recorder().parser.push(frameBytes(type, 0, Buffer.alloc(0))),
        new RegExp(`unknown frame type ${type}\\b`),
      );
    }
    expectFrameError(
      () => recorder().parser.push(Buffer.from('AMQP\x00\x00\x09\x01', 'latin1')),
      /unknown frame type 65/,
    );
    // Split so that the type octet arrives in a chunk of its own.
    const { parser } = recorder();
    parser.push(Buffer.from([9]));
    expectFrameError(
      () => parser.push(Buffer.from([0, 0, 0, 0, 0, 0, FRAME_END])),
      /unknown frame type 9/,
    );
  });
});
