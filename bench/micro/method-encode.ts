import {
  FrameType,
  Method,
  Writer,
  encodeBasicProperties,
  writeMethodFrame,
} from '../../src/protocol/index.js';
import { writeDeliverFrame } from '../../src/broker/connection.js';
import { consume } from './harness.js';
import type { MicroCase } from './harness.js';

const N = 1000;

export function methodEncodeCases(): MicroCase[] {
  const w = new Writer(1 << 20);
  const body = Buffer.alloc(16, 0x61);
  const header = Buffer.alloc(14 + 3);
  const tag = 'amq.ctag-0123456789abcdefghijkl';
  return [
    {
      name: 'encode basic.ack (generic method encoder)',
      ops: N,
      run: () => {
        w.reset();
        for (let i = 0; i < N; i++) {
          writeMethodFrame(w, 1, { id: Method.BasicAck, deliveryTag: i + 1, multiple: true });
        }
        consume(w.length);
      },
    },
    {
      name: 'encode basic.deliver + header + 16 B body (broker path)',
      ops: N,
      run: () => {
        w.reset();
        for (let i = 0; i < N; i++) {
          writeDeliverFrame(w, 1, tag, i + 1, false, '', 'warren-bench-queue');
          let s = w.startFrame(FrameType.Header, 1);
          w.bytes(header);
          w.endFrame(s);
          s = w.startFrame(FrameType.Body, 1);
          w.bytes(body);
          w.endFrame(s);
        }
        consume(w.length);
      },
    },
    {
      name: 'encode basic properties (5 fields + headers)',
      ops: N,
      run: () => {
        w.reset();
        const props = {
          contentType: 'application/json',
          deliveryMode: 2,
          correlationId: 'abc-123',
          replyTo: 'amq.rabbitmq.reply-to',
          messageId: 'm-1',
          headers: { 'x-trace': 'on', attempt: 3 },
        };
        for (let i = 0; i < N; i++) encodeBasicProperties(w, props);
        consume(w.length);
      },
    },
  ];
}
