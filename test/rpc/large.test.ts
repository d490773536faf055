import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { describeBrokers } from '../client/brokers.js';
import { defineService, s } from '../../src/rpc/index.js';
import type { BodyCarrier } from '../../src/rpc/index.js';
import { transferCarrier } from '../../src/transfer/index.js';
import { H } from '../../src/rpc/wire.js';
import { world } from './helpers.js';

const Blobs = defineService({
  name: 'blobs',
  version: '1.0.0',
  methods: {
    /** Checks a blob and says whether it came out of band. */
    check: {
      args: s.object({ data: s.bytes(), note: s.string() }),
      result: s.object({ length: s.int(), outOfBand: s.boolean(), first: s.int(), last: s.int() }),
    },
    /** Makes a blob of `n` bytes: a large result. */
    make: { args: s.object({ n: s.int(), seed: s.int() }), result: s.bytes() },
  },
});

/** Counts what a carrier sent and received, to prove which bodies went out of band. */
function counting(inner: BodyCarrier): BodyCarrier & { sent: number; received: number } {
  const c = {
    threshold: inner.threshold,
    sent: 0,
    received: 0,
    send(body: Buffer) {
      c.sent++;
      return inner.send(body);
    },
    receive(ref: Parameters<BodyCarrier['receive']>[0], signal?: AbortSignal) {
      c.received++;
      return inner.receive(ref, signal);
    },
  };
  return c;
}

/**
 * Arguments and results above a size threshold travel as pull-based chunked transfers
 * (warren/transfer) instead of one message; smaller ones as usual. On every broker.
 */
describeBrokers('rpc: large bodies through warren/transfer', (target) => {
  it('sends large arguments and results as transfers, small ones inline', async () => {
    const t = target();
    const w = world(t);
    const threshold = 64 * 1024;
    const serverConn = await t.connect();
    const serverCarrier = counting(transferCarrier(serverConn, { threshold }));
    const { rpcEndpoint } = await import('../../src/rpc/index.js');
    const server = await rpcEndpoint(serverConn, { namespace: w.ns, largeBodies: serverCarrier });
    await server.serve(Blobs, {
      check: ({ data }, ctx) => ({
        length: data.length,
        outOfBand: ctx.headers[H.transfer] !== undefined,
        first: data[0] ?? -1,
        last: data.at(-1) ?? -1,
      }),
      make: ({ n, seed }) => Buffer.alloc(n, seed),
    });
    const clientConn = await t.connect();
    const clientCarrier = counting(transferCarrier(clientConn, { threshold }));
    const client = await rpcEndpoint(clientConn, { namespace: w.ns, largeBodies: clientCarrier });
    const blobs = await client.bind(Blobs);

    const big = randomBytes(3 * 1024 * 1024 + 17);
    expect(await blobs.check({ data: big, note: 'big' })).toEqual({
      length: big.length,
      outOfBand: true,
      first: big[0],
      last: big.at(-1),
    });
    expect(clientCarrier.sent).toBe(1);
    expect(serverCarrier.received).toBe(1);

    expect(await blobs.check({ data: Buffer.from([1, 2, 3]), note: 'small' })).toMatchObject({
      length: 3,
      outOfBand: false,
    });
    expect(clientCarrier.sent).toBe(1);

    const made = await blobs.make({ n: 2 * 1024 * 1024, seed: 7 });
    // (Buffer.equals: a deep equality over 2 MiB element by element would take seconds.)
    expect(Buffer.isBuffer(made) && made.equals(Buffer.alloc(2 * 1024 * 1024, 7))).toBe(true);
    expect(serverCarrier.sent).toBe(1);
    expect(clientCarrier.received).toBe(1);

    // The `{ threshold }` shorthand makes the same carrier.
    const other = await w.endpoint({ largeBodies: { threshold } });
    const again = await other.bind(Blobs);
    expect((await again.make({ n: 100_000, seed: 1 })).length).toBe(100_000);
    expect(serverCarrier.sent).toBe(2);
  });
});
