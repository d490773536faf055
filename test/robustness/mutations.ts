import {
  Decimal,
  FrameType,
  Method,
  PROTOCOL_HEADER,
  ReplyCode,
  Writer,
} from '../../src/protocol/index.js';
import type { BasicProperties, FieldTable } from '../../src/protocol/index.js';
import { encodeFrame, encodeMethodFrame, encodePublish } from '../helpers/raw-client.js';

/** A small, fast, seedable PRNG (mulberry32), so a failing fuzz run can be replayed exactly. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

/** How a connection ended (or did not) after a mutation. */
export type Outcome =
  | { kind: 'connection-close'; code: number }
  | { kind: 'channel-close'; code: number }
  | { kind: 'socket-close' }
  | { kind: 'ok' };

/** What a mutation class may lead to. */
export interface Expectation {
  connection?: readonly number[];
  channel?: readonly number[];
  ok?: boolean;
  socketClose?: boolean;
}

/** Channel the fuzz opens after the handshake and sends its commands on. */
export const WORK_CHANNEL = 1;
/** Channel opened after the mutation: its open-ok proves the broker handled what came before. */
export const PROBE_CHANNEL = 2;

/** Everything a connection-level error may legitimately carry for damaged input. */
const HARD_CODES = [
  ReplyCode.FrameError,
  ReplyCode.SyntaxError,
  ReplyCode.CommandInvalid,
  ReplyCode.ChannelError,
  ReplyCode.UnexpectedFrame,
  ReplyCode.NotAllowed,
  ReplyCode.NotImplemented,
] as const;
/** Channel-level errors a syntactically valid but semantically wrong command may cause. */
const SOFT_CODES = [
  ReplyCode.AccessRefused,
  ReplyCode.NotFound,
  ReplyCode.ResourceLocked,
  ReplyCode.PreconditionFailed,
] as const;

/** Context a mutation is built in: what the handshake negotiated. */
export interface MutationContext {
  rng: Rng;
  frameMax: number;
  maxMessageSize: number;
  /** A queue this connection declared (exclusive), for commands that need one. */
  queue: string;
}

export interface Mutation {
  /** Bytes sent after the valid prefix, possibly in several writes. */
  writes: Buffer[];
  /** Half-close the socket after the writes (the connection then ends without AMQP). */
  endAfter?: boolean;
  /** The broker may legitimately wait for more bytes; pad with zeros if nothing happens. */
  mayStall?: boolean;
}

export interface MutationClass {
  name: string;
  expect: Expectation;
  /** Sent instead of the protocol header: the broker answers with its own header and hangs up. */
  replacesProtocolHeader?: boolean;
  build(ctx: MutationContext): Mutation;
}

// -------------------------------------------------------------------- valid commands

/** Field-table values of every type the codec writes, to put weight on table decoding. */
function richTable(rng: Rng): FieldTable {
  return {
    str: `v${rng.int(1000)}`,
    int: rng.range(-100000, 100000),
    big: 2 ** 40 + rng.int(1000),
    float: rng.next() * 100,
    bool: rng.int(2) === 1,
    nil: null,
    bytes: rng.bytes(rng.int(8)),
    when: new Date(1_700_000_000_000),
    dec: new Decimal(2, rng.int(10000)),
    list: [1, 'two', [3], { four: 4 }],
    nested: { inner: { deeper: 'x' }, n: rng.int(10) },
  };
}

function properties(rng: Rng): BasicProperties {
  const p: BasicProperties = { contentType: 'application/octet-stream' };
  if (rng.int(2) === 1) p.headers = richTable(rng);
  if (rng.int(2) === 1) p.deliveryMode = rng.pick([1, 2]);
  if (rng.int(2) === 1) p.correlationId = `c-${rng.int(1000)}`;
  if (rng.int(3) === 1) p.messageId = `m-${rng.int(1000)}`;
  if (rng.int(3) === 1) p.timestamp = 1_700_000_000;
  if (rng.int(4) === 1) p.priority = rng.int(10);
  return p;
}

/**
 * A valid command (one or more frames) on the work channel. The fuzz sends a random run of these
 * before the mutation, so the broker is in varied states (publishing, consuming, in confirm mode)
 * when the damage arrives, and bit flips start from frames the broker would accept.
 */
export function validCommand(ctx: MutationContext): Buffer[] {
  const { rng, queue } = ctx;
  const ch = WORK_CHANNEL;
  switch (rng.int(10)) {
    case 0:
      return [
        encodeMethodFrame(ch, {
          id: Method.QueueDeclare,
          ticket: 0,
          queue,
          passive: false,
          durable: false,
          exclusive: true,
          autoDelete: false,
          nowait: false,
          arguments: richTable(rng),
        }),
      ];
    case 1:
      return [
        encodeMethodFrame(ch, {
          id: Method.QueueBind,
          ticket: 0,
          queue,
          exchange: 'amq.direct',
          routingKey: `rk-${rng.int(5)}`,
          nowait: false,
          arguments: richTable(rng),
        }),
      ];
    case 2:
      return [
        encodeMethodFrame(ch, {
          id: Method.BasicQos,
          prefetchSize: 0,
          prefetchCount: rng.int(100),
          global: rng.int(2) === 1,
        }),
      ];
    case 3:
      return [encodeMethodFrame(ch, { id: Method.ConfirmSelect, nowait: false })];
    case 4:
    case 5:
    case 6: {
      const size = rng.int(3) === 0 ? 0 : rng.int(Math.floor(ctx.frameMax * 2.5));
      const exchange = rng.pick(['', 'amq.direct', 'amq.fanout']);
      const frames = splitFrames(
        encodePublish(
          ch,
          exchange,
          exchange === '' ? queue : `rk-${rng.int(5)}`,
          rng.bytes(size),
          properties(rng),
          ctx.frameMax,
        ),
      );
      return frames;
    }
    case 7:
      return [
        encodeMethodFrame(ch, {
          id: Method.BasicConsume,
          ticket: 0,
          queue,
          consumerTag: '',
          noLocal: false,
          noAck: rng.int(2) === 1,
          exclusive: false,
          nowait: false,
          arguments: {},
        }),
      ];
    case 8:
      return [encodeMethodFrame(ch, { id: Method.BasicGet, ticket: 0, queue, noAck: true })];
    default:
      return [encodeMethodFrame(ch, { id: Method.BasicRecover, requeue: true })];
  }
}

/** Split concatenated well-formed frames back into single frames. */
export function splitFrames(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const size = buf.readUInt32BE(pos + 3);
    out.push(buf.subarray(pos, pos + size + 8));
    pos += size + 8;
  }
  return out;
}

function publishMethod(queue: string): Buffer {
  return encodeMethodFrame(WORK_CHANNEL, {
    id: Method.BasicPublish,
    ticket: 0,
    exchange: '',
    routingKey: queue,
    mandatory: false,
    immediate: false,
  });
}

/** A content header frame of class 60 (or another class), announcing bodySize octets. */
export function contentHeader(channel: number, bodySize: number, classId = 60): Buffer {
  const w = new Writer(64);
  w.u16(classId);
  w.u16(0);
  w.u64(bodySize);
  w.u16(0); // no properties
  return encodeFrame(FrameType.Header, channel, w.toBuffer());
}

/** A method frame's payload with a raw argument list (no encoder checks). */
function rawMethodFrame(channel: number, methodId: number, args: Uint8Array): Buffer {
  const payload = Buffer.allocUnsafe(4 + args.length);
  payload.writeUInt32BE(methodId >>> 0, 0);
  payload.set(args, 4);
  return encodeFrame(FrameType.Method, channel, payload);
}

const KNOWN_TAGS = new Set('tbBsuIilLfdDSxATFV'.split('').map((c) => c.charCodeAt(0)));

/** A field-table value tag that the codec does not know. */
function unknownTag(rng: Rng): number {
  for (;;) {
    const t = rng.int(256);
    if (!KNOWN_TAGS.has(t)) return t;
  }
}

/** The bytes of a field table whose entries are valid except one with an unknown type tag. */
function tableWithBadTag(rng: Rng): Buffer {
  const w = new Writer(128);
  const entries: Buffer[] = [];
  const good = (key: string): void => {
    w.reset();
    w.shortstr(key);
    w.fieldValue(rng.pick<string | number | boolean>(['s', 7, true, 'long string value']));
    entries.push(w.toBuffer());
  };
  good('a');
  w.reset();
  w.shortstr('bad');
  w.u8(unknownTag(rng));
  w.bytes(rng.bytes(rng.int(6)));
  let bad = w.toBuffer();
  // Sometimes hide the bad value inside a nested table or array.
  if (rng.int(3) === 0) {
    w.reset();
    w.shortstr('nest');
    w.u8(0x46); // F
    w.u32(bad.length);
    w.bytes(bad);
    bad = w.toBuffer();
  } else if (rng.int(2) === 0) {
    w.reset();
    w.shortstr('arr');
    w.u8(0x41); // A
    const inner = bad.subarray(1 + bad[0]!); // drop the key: arrays hold bare values
    w.u32(inner.length);
    w.bytes(inner);
    bad = w.toBuffer();
  }
  entries.push(bad);
  if (rng.int(2) === 0) good('z');
  const body = Buffer.concat(entries);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/** A method with a field-table argument, with that table replaced by `table`. */
function methodWithTable(rng: Rng, queue: string, table: Buffer): Buffer {
  const w = new Writer(256);
  switch (rng.int(4)) {
    case 0: // queue.declare: ticket, queue, bits, arguments
      w.u16(0);
      w.shortstr(queue);
      w.u8(0b00100);
      w.bytes(table);
      return rawMethodFrame(WORK_CHANNEL, Method.QueueDeclare, w.toBuffer());
    case 1: // exchange.declare: ticket, exchange, type, bits, arguments
      w.u16(0);
      w.shortstr(`fz-x-${rng.int(100)}`);
      w.shortstr('fanout');
      w.u8(0b00100);
      w.bytes(table);
      return rawMethodFrame(WORK_CHANNEL, Method.ExchangeDeclare, w.toBuffer());
    case 2: // queue.bind: ticket, queue, exchange, routing key, nowait, arguments
      w.u16(0);
      w.shortstr(queue);
      w.shortstr('amq.direct');
      w.shortstr('rk');
      w.u8(0);
      w.bytes(table);
      return rawMethodFrame(WORK_CHANNEL, Method.QueueBind, w.toBuffer());
    default: // basic.consume: ticket, queue, tag, bits, arguments
      w.u16(0);
      w.shortstr(queue);
      w.shortstr('');
      w.u8(0);
      w.bytes(table);
      return rawMethodFrame(WORK_CHANNEL, Method.BasicConsume, w.toBuffer());
  }
}

const KNOWN_METHODS = new Set<number>(Object.values(Method));

/** Filler that is never a frame-end octet, so a frame completed with it fails its end check. */
function filler(rng: Rng, n: number): Buffer {
  const b = rng.bytes(n);
  for (let i = 0; i < n; i++) if (b[i] === 0xce) b[i] = 0;
  return b;
}

// -------------------------------------------------------------------- the mutation classes

export const MUTATION_CLASSES: readonly MutationClass[] = [
  {
    // The one place where AMQP wants no close method: the peer may not speak AMQP 0-9-1 at all.
    name: 'bad-protocol-header',
    expect: { socketClose: true },
    replacesProtocolHeader: true,
    build({ rng }) {
      const header = Buffer.from(PROTOCOL_HEADER);
      if (rng.int(2) === 0) {
        const flips = rng.range(1, 3);
        for (let i = 0; i < flips; i++) header[rng.int(8)]! ^= 1 << rng.int(8);
        if (header.equals(PROTOCOL_HEADER)) header[7] = 0;
        return { writes: [header, rng.bytes(rng.int(40))] };
      }
      const junk = rng.bytes(rng.range(8, 100));
      if (junk.subarray(0, 8).equals(PROTOCOL_HEADER)) junk[0] = 0;
      return { writes: [junk] };
    },
  },
  {
    // The size field says less than the frame holds: the frame-end check lands in the payload.
    name: 'size-too-small',
    expect: { connection: [ReplyCode.FrameError] },
    build({ rng, queue }) {
      const f = Buffer.from(publishMethod(queue));
      const size = f.readUInt32BE(3);
      let newSize = rng.int(size);
      while (f[7 + newSize] === 0xce) newSize = (newSize + 1) % size;
      f.writeUInt32BE(newSize, 3);
      return { writes: [f] };
    },
  },
  {
    // The size field says more: the frame swallows what follows and its end octet is wrong.
    name: 'size-too-large',
    expect: { connection: [ReplyCode.FrameError] },
    build({ rng, queue, frameMax }) {
      const f = Buffer.from(publishMethod(queue));
      const size = f.readUInt32BE(3);
      const extra = rng.range(1, frameMax - size - 8);
      f.writeUInt32BE(size + extra, 3);
      return { writes: [f, filler(rng, extra)] };
    },
  },
  {
    name: 'oversized-frame',
    expect: { connection: [ReplyCode.FrameError] },
    build({ rng, frameMax }) {
      const size = rng.int(2) === 0 ? frameMax - 7 : rng.range(frameMax, 0xffff_fff0);
      const header = Buffer.alloc(7);
      header[0] = rng.pick([FrameType.Method, FrameType.Header, FrameType.Body]);
      header.writeUInt16BE(WORK_CHANNEL, 1);
      header.writeUInt32BE(size, 3);
      return { writes: [header, filler(rng, rng.int(64))] };
    },
  },
  {
    name: 'bad-frame-end',
    expect: { connection: [ReplyCode.FrameError] },
    build({ rng, queue }) {
      const f = Buffer.from(publishMethod(queue));
      f[f.length - 1] = filler(rng, 1)[0]!;
      return { writes: [f] };
    },
  },
  {
    name: 'unknown-frame-type',
    expect: { connection: [ReplyCode.FrameError] },
    build({ rng }) {
      let type = rng.int(256);
      while (type === 1 || type === 2 || type === 3 || type === 8) type = rng.int(256);
      return { writes: [encodeFrame(type, rng.int(3), rng.bytes(rng.int(32)))] };
    },
  },
  {
    name: 'unknown-class-or-method',
    expect: { connection: [ReplyCode.NotImplemented] },
    build({ rng }) {
      let id: number;
      do {
        id =
          rng.int(2) === 0
            ? ((rng.pick([10, 20, 40, 50, 60, 85, 90]) << 16) | rng.int(65536)) >>> 0
            : (rng.int(65536) * 65536 + rng.int(65536)) >>> 0;
      } while (KNOWN_METHODS.has(id));
      return { writes: [rawMethodFrame(WORK_CHANNEL, id, rng.bytes(rng.int(16)))] };
    },
  },
  {
    name: 'truncated-arguments',
    expect: { connection: [ReplyCode.FrameError] },
    build(ctx) {
      const f = validCommand(ctx)[0]!;
      const payload = f.subarray(7, f.length - 1);
      return {
        writes: [
          encodeFrame(f[0]!, WORK_CHANNEL, payload.subarray(0, ctx.rng.int(payload.length))),
        ],
      };
    },
  },
  {
    name: 'trailing-octets',
    expect: { connection: [ReplyCode.FrameError] },
    build(ctx) {
      const f = validCommand(ctx)[0]!;
      const payload = f.subarray(7, f.length - 1);
      const extra = ctx.rng.bytes(ctx.rng.range(1, 16));
      return { writes: [encodeFrame(f[0]!, WORK_CHANNEL, Buffer.concat([payload, extra]))] };
    },
  },
  {
    name: 'body-without-header',
    expect: { connection: [ReplyCode.UnexpectedFrame] },
    build({ rng, queue }) {
      const body = encodeFrame(FrameType.Body, WORK_CHANNEL, rng.bytes(rng.range(1, 100)));
      return { writes: rng.int(2) === 0 ? [body] : [publishMethod(queue), body] };
    },
  },
  {
    name: 'header-without-method',
    expect: { connection: [ReplyCode.UnexpectedFrame] },
    build({ rng }) {
      return { writes: [contentHeader(WORK_CHANNEL, rng.int(100))] };
    },
  },
  {
    name: 'method-instead-of-content',
    expect: { connection: [ReplyCode.UnexpectedFrame] },
    build(ctx) {
      const { rng, queue } = ctx;
      const writes = [publishMethod(queue)];
      if (rng.int(2) === 0) writes.push(contentHeader(WORK_CHANNEL, rng.range(1, 100)));
      writes.push(
        encodeMethodFrame(WORK_CHANNEL, {
          id: Method.BasicQos,
          prefetchSize: 0,
          prefetchCount: 1,
          global: false,
        }),
      );
      return { writes };
    },
  },
  {
    name: 'header-wrong-class',
    expect: { connection: [ReplyCode.UnexpectedFrame] },
    build({ rng, queue }) {
      let classId = rng.int(65536);
      if (classId === 60) classId = 50;
      return { writes: [publishMethod(queue), contentHeader(WORK_CHANNEL, rng.int(100), classId)] };
    },
  },
  {
    name: 'body-longer-than-announced',
    expect: { connection: [ReplyCode.FrameError, ReplyCode.UnexpectedFrame] },
    build({ rng, queue }) {
      const announced = rng.int(50);
      return {
        writes: [
          publishMethod(queue),
          contentHeader(WORK_CHANNEL, announced),
          encodeFrame(FrameType.Body, WORK_CHANNEL, rng.bytes(announced + rng.range(1, 50))),
        ],
      };
    },
  },
  {
    name: 'body-above-max-message-size',
    expect: { channel: [ReplyCode.PreconditionFailed] },
    build({ rng, queue, maxMessageSize }) {
      const size = rng.range(maxMessageSize + 1, 2 ** 52);
      return { writes: [publishMethod(queue), contentHeader(WORK_CHANNEL, size)] };
    },
  },
  {
    name: 'bad-field-table-type',
    expect: { connection: [ReplyCode.SyntaxError] },
    build({ rng, queue }) {
      return { writes: [methodWithTable(rng, queue, tableWithBadTag(rng))] };
    },
  },
  {
    name: 'field-table-length-overrun',
    expect: { connection: [ReplyCode.FrameError] },
    build({ rng, queue }) {
      const table = Buffer.from([0, 0, 0, 0, 1, 0x61, 0x74, 1]);
      table.writeUInt32BE(rng.range(5, 100000), 0);
      return { writes: [methodWithTable(rng, queue, table)] };
    },
  },
  {
    name: 'unopened-channel',
    expect: { connection: [ReplyCode.ChannelError] },
    build(ctx) {
      const ch = ctx.rng.range(3, 2047);
      const f = Buffer.from(validCommand(ctx)[0]!);
      f.writeUInt16BE(ch, 1);
      return { writes: [f] };
    },
  },
  {
    name: 'second-channel-open',
    expect: { connection: [ReplyCode.ChannelError] },
    build() {
      return {
        writes: [encodeMethodFrame(WORK_CHANNEL, { id: Method.ChannelOpen, outOfBand: '' })],
      };
    },
  },
  {
    name: 'content-on-channel-0',
    expect: { connection: [ReplyCode.UnexpectedFrame] },
    build({ rng }) {
      return {
        writes: [
          rng.int(2) === 0
            ? contentHeader(0, rng.int(100))
            : encodeFrame(FrameType.Body, 0, rng.bytes(rng.range(1, 50))),
        ],
      };
    },
  },
  {
    name: 'bad-heartbeat',
    expect: { connection: [ReplyCode.FrameError, ReplyCode.UnexpectedFrame] },
    build({ rng }) {
      return rng.int(2) === 0
        ? { writes: [encodeFrame(FrameType.Heartbeat, rng.range(1, 100), Buffer.alloc(0))] }
        : { writes: [encodeFrame(FrameType.Heartbeat, 0, rng.bytes(rng.range(1, 20)))] };
    },
  },
  {
    name: 'server-method-from-client',
    expect: { connection: [ReplyCode.CommandInvalid] },
    build({ rng }) {
      const replies = [
        Method.ChannelOpenOk,
        Method.BasicQosOk,
        Method.BasicConsumeOk,
        Method.QueueDeclareOk,
        Method.ExchangeDeclareOk,
        Method.BasicGetEmpty,
        Method.TxSelectOk,
      ];
      // Arguments do not matter much; give each a plausible shape: an empty shortstr suffices
      // for the ones that have one, and the decoder must not care about the others' absence.
      const id = rng.pick(replies);
      const args =
        id === Method.ChannelOpenOk
          ? Buffer.from([0, 0, 0, 0])
          : id === Method.BasicConsumeOk
            ? Buffer.from([1, 0x78])
            : id === Method.QueueDeclareOk
              ? Buffer.from([1, 0x71, 0, 0, 0, 0, 0, 0, 0, 0])
              : id === Method.BasicGetEmpty
                ? Buffer.from([0])
                : Buffer.alloc(0);
      return { writes: [rawMethodFrame(WORK_CHANNEL, id, args)] };
    },
  },
  {
    // Random octets where a frame should start: mostly unknown frame types, sometimes a frame
    // header that announces more than follows (the broker then waits; the fuzz pads).
    name: 'garbage',
    expect: { connection: [...HARD_CODES] },
    build({ rng, frameMax }) {
      const junk = rng.bytes(rng.range(1, 300));
      if (rng.int(2) === 0 && junk.length >= 7) {
        // A plausible frame header on a low channel, announcing a size that may exceed the junk.
        junk[0] = rng.pick([
          FrameType.Method,
          FrameType.Header,
          FrameType.Body,
          FrameType.Heartbeat,
        ]);
        junk.writeUInt16BE(rng.int(4), 1);
        const size = rng.int(2) === 0 ? rng.int(junk.length - 7) : rng.int(frameMax - 8);
        junk.writeUInt32BE(size, 3);
        if (size + 8 <= junk.length) junk[size + 7] = 0xce;
      }
      return { writes: [junk], mayStall: true };
    },
  },
  {
    // A valid command with one to three bits flipped anywhere but in the size field.
    name: 'bit-flip',
    expect: { connection: [...HARD_CODES], channel: [...SOFT_CODES], ok: true },
    build(ctx) {
      const { rng } = ctx;
      const frames = validCommand(ctx).map((f) => Buffer.from(f));
      const target = frames[rng.int(frames.length)]!;
      const flips = rng.range(1, 3);
      for (let i = 0; i < flips; i++) {
        let pos = rng.int(target.length - 4);
        if (pos >= 3) pos += 4; // skip octets 3..6, the size
        target[pos]! ^= 1 << rng.int(8);
      }
      return { writes: frames, mayStall: true };
    },
  },
  {
    // A frame cut short, then the client hangs up: nothing to answer, the broker just lets go.
    name: 'truncated-then-eof',
    expect: { socketClose: true },
    build(ctx) {
      const f = validCommand(ctx)[0]!;
      return { writes: [f.subarray(0, ctx.rng.range(1, f.length - 1))], endAfter: true };
    },
  },
];

export function outcomeAllowed(expect: Expectation, outcome: Outcome): boolean {
  switch (outcome.kind) {
    case 'connection-close':
      return expect.connection?.includes(outcome.code) ?? false;
    case 'channel-close':
      return expect.channel?.includes(outcome.code) ?? false;
    case 'socket-close':
      return expect.socketClose === true;
    case 'ok':
      return expect.ok === true;
  }
}

export function describeOutcome(o: Outcome): string {
  return o.kind === 'connection-close' || o.kind === 'channel-close'
    ? `${o.kind} ${o.code}`
    : o.kind;
}
