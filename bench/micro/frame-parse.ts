import {
  FrameParser,
  FrameType,
  Method,
  Reader,
  Writer,
  decodeMethod,
} from '../../src/protocol/index.js';
import { writeBodyFrames, writeHeaderFrame, writeMethodFrame } from '../../src/protocol/index.js';
import { consume } from './harness.js';
import type { MicroCase } from './harness.js';

const MESSAGES = 1000;

/** What a publisher sends: basic.publish + content header + body, `count` times. */
function publishStream(bodySize: number): Buffer {
  const w = new Writer(1 << 20);
  const body = Buffer.alloc(bodySize, 0x61);
  for (let i = 0; i < MESSAGES; i++) {
    writeMethodFrame(w, 1, {
      id: Method.BasicPublish,
      ticket: 0,
      exchange: '',
      routingKey: 'warren-bench-queue',
      mandatory: false,
      immediate: false,
    });
    writeHeaderFrame(w, 1, bodySize, { deliveryMode: 2 });
    writeBodyFrames(w, 1, body, 131072);
  }
  return w.toBuffer();
}

/** The stream cut as a socket would deliver it: 64 KiB reads, frames split across them. */
function chunks(stream: Buffer, size = 65536): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < stream.length; i += size) out.push(stream.subarray(i, i + size));
  return out;
}

export function frameParseCases(): MicroCase[] {
  const cases: MicroCase[] = [];
  for (const size of [16, 1024]) {
    const pieces = chunks(publishStream(size));
    let frames = 0;
    const counter = new FrameParser(
      {
        onFrame: (_type, _channel, payload) => {
          frames += payload.length & 1;
        },
      },
      131072,
    );
    cases.push({
      name: `frame parse, publish ${size} B (frames only)`,
      ops: MESSAGES,
      run: () => {
        for (const c of pieces) counter.push(c);
        consume(frames);
      },
    });
    const reader = new Reader(Buffer.alloc(0));
    const decoding = new FrameParser(
      {
        onFrame: (type, _channel, payload) => {
          if (type === FrameType.Method) {
            const m = decodeMethod(reader.reset(payload));
            consume(m.id);
          }
        },
      },
      131072,
    );
    cases.push({
      name: `frame parse + method decode, publish ${size} B`,
      ops: MESSAGES,
      run: () => {
        for (const c of pieces) decoding.push(c);
      },
    });
  }
  return cases;
}
