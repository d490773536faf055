import { afterEach, expect, it } from 'vitest';
import type { Connection } from '../../src/client/index.js';
import { TransferEndpoint, TransferError } from '../../src/transfer/index.js';
import type { IncomingTransfer, TransferEndpointOptions } from '../../src/transfer/index.js';
import { countBecomes, describeBrokers } from '../client/brokers.js';
import type { BrokerTarget } from '../client/brokers.js';
import { generatedSha256, generatedSource, generatedStream } from './payloads.js';
import { closeTapped, tapped } from './tap.js';

const C = 64 * 1024;
const endpoints: TransferEndpoint[] = [];

afterEach(async () => {
  await Promise.all(endpoints.splice(0).map((e) => e.close()));
  await closeTapped();
});

async function endpoint(
  conn: Connection,
  options: TransferEndpointOptions = {},
): Promise<TransferEndpoint> {
  const e = await TransferEndpoint.open(conn, { queueExpires: 60_000, ...options });
  endpoints.push(e);
  return e;
}

/** Consume a transfer's stream, hashing it; calls `at(bytes)` after each chunk. */
async function consume(
  t: IncomingTransfer,
  at: (bytes: number) => void = () => undefined,
): Promise<string> {
  const h = (await import('node:crypto')).createHash('sha256');
  let bytes = 0;
  for await (const c of t.stream()) {
    h.update(c as Buffer);
    bytes += (c as Buffer).length;
    at(bytes);
  }
  return h.digest('hex');
}

async function failure(p: Promise<unknown>): Promise<TransferError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TransferError);
  return err as TransferError;
}

/** Delete an endpoint's queue left behind by a process that "crashed" (RabbitMQ keeps it until x-expires). */
async function deleteQueue(t: BrokerTarget, queue: string): Promise<void> {
  const c = await t.connect({ reconnect: false });
  const ch = await c.channel();
  await ch.queueDelete(queue).catch(() => 0);
  await c.close();
}

describeBrokers('transfer faults', (target) => {
  it('re-requests a corrupted chunk and a lost one, and never accepts bad data', async () => {
    const t = target();
    const tap = await tapped(t);
    const sender = await endpoint(tap.conn);
    const receiver = await endpoint(await t.connect(), { retryInterval: 200 });
    const size = 12 * C + 333;
    const out = await sender.offer(generatedSource(size, 11));
    let n = 0;
    // Chunk publishes go to the receiver's queue: corrupt the 3rd, lose the 6th.
    tap.onPublish((rk) => {
      if (rk !== receiver.queue) return 'pass';
      n++;
      return n === 3 ? 'corrupt' : n === 6 ? 'lose' : 'pass';
    });
    const inc = receiver.receive(out.offer, { window: 4 });
    const sha = await consume(inc);
    expect(sha).toBe(generatedSha256(size, 11));
    const r = await inc.done;
    expect(r.corrupt).toBe(1);
    // One re-request for the corrupt chunk, at least one for the lost one.
    expect(r.retries).toBeGreaterThanOrEqual(2);
    expect((await out.done).retries).toBeGreaterThanOrEqual(2);
  });

  it('fails with a checksum error when a chunk keeps arriving corrupted', async () => {
    const t = target();
    const tap = await tapped(t);
    const sender = await endpoint(tap.conn);
    const receiver = await endpoint(await t.connect(), { maxRetries: 2 });
    const out = await sender.offer(generatedSource(4 * C, 12));
    tap.onPublish((rk) => (rk === receiver.queue ? 'corrupt' : 'pass'));
    const inc = receiver.receive(out.offer);
    const err = await failure(inc.buffer());
    expect(err.code).toBe('WARREN_ERR_TRANSFER_CHECKSUM');
    expect(err.message).toContain('failed its CRC-32 3 times');
    // The sender is told and frees the transfer.
    expect((await failure(out.done)).code).toBe('WARREN_ERR_TRANSFER_CHECKSUM');
    expect(sender.outgoingCount).toBe(0);
  });

  it("resumes from the last verified offset when the receiver's connection drops", async () => {
    const t = target();
    const tap = await tapped(t);
    const sender = await endpoint(await t.connect());
    const receiver = await endpoint(tap.conn);
    const size = 300 * C + 7;
    const out = await sender.offer(generatedSource(size, 13));
    const inc = receiver.receive(out.offer, { window: 8 });
    const resumedAt: number[] = [];
    inc.on('resume', (offset) => resumedAt.push(offset));
    let cutAt = -1;
    const sha = await consume(inc, (bytes) => {
      if (cutAt === -1 && bytes >= 100 * C) {
        cutAt = bytes;
        tap.cut();
      }
    });
    expect(sha).toBe(generatedSha256(size, 13));
    expect(tap.opened).toBeGreaterThanOrEqual(2);
    const r = await inc.done;
    expect(r.resumes).toBeGreaterThanOrEqual(1);
    // Not from the start: from what it had verified when the connection dropped.
    expect(resumedAt[0]).toBeGreaterThanOrEqual(cutAt);
    // The sender sent again only what was in flight (the window), not the 100 chunks before.
    const sent = await out.done;
    expect(sent.retries).toBeLessThanOrEqual(2 * 8);
    expect(sent.chunks).toBeLessThanOrEqual(301 + 2 * 8);
  });

  it("resumes a stream source from its look-behind when the sender's connection drops", async () => {
    const t = target();
    const tap = await tapped(t);
    const sender = await endpoint(tap.conn);
    const receiver = await endpoint(await t.connect(), { retryInterval: 2000 });
    const size = 300 * C + 99;
    const stream = generatedStream(size, 14, 50_000);
    const out = await sender.offer(stream, { window: 16 });
    const inc = receiver.receive(out.offer, { window: 8 });
    let cut = false;
    let maxBuffered = 0;
    const sha = await consume(inc, (bytes) => {
      maxBuffered = Math.max(maxBuffered, out.buffered);
      if (!cut && bytes >= 120 * C) {
        cut = true;
        tap.cut();
      }
    });
    expect(sha).toBe(stream.sha256());
    expect(tap.opened).toBeGreaterThanOrEqual(2);
    expect((await out.done).bytes).toBe(size);
    // The stream's look-behind stayed within the sender's window (plus the piece being split).
    expect(maxBuffered).toBeLessThanOrEqual(17 * C + 50_000);
  });

  it('cleans up the sender when the receiver disappears mid-transfer', async () => {
    const t = target();
    const sender = await endpoint(await t.connect(), { timeout: 1500 });
    const tap = await tapped(t, { reconnect: false });
    // The receiver's endpoint is not closed: its process "crashed".
    const receiver = await TransferEndpoint.open(tap.conn, { queueExpires: 60_000 });
    const stream = generatedStream(400 * C, 15);
    const out = await sender.offer(stream);
    const inc = receiver.receive(out.offer, { window: 4 });
    const reading = failure(
      consume(inc, (bytes) => {
        if (bytes >= 20 * C) tap.cut();
      }),
    );
    const err = await failure(out.done);
    expect(err.code).toBe('WARREN_ERR_TRANSFER_TIMEOUT');
    expect(err.message).toContain('was silent for 1500 ms');
    expect(sender.outgoingCount).toBe(0);
    // The source was released: the stream was destroyed, not left half-read.
    expect(stream.destroyed).toBe(true);
    expect(out.buffered).toBe(0);
    expect((await reading).code).toBe('WARREN_ERR_TRANSFER_CLOSED');
    await deleteQueue(t, receiver.queue);
  });

  it('fails the receiver when the sender disappears, or at once when it closes', async () => {
    const t = target();
    const tap = await tapped(t, { reconnect: false });
    const crashed = await TransferEndpoint.open(tap.conn, { queueExpires: 60_000 });
    const receiver = await endpoint(await t.connect(), { timeout: 1000, retryInterval: 300 });
    const out = await crashed.offer(generatedSource(400 * C, 16));
    const inc = receiver.receive(out.offer, { window: 4 });
    const err = await failure(
      consume(inc, (bytes) => {
        if (bytes >= 10 * C) tap.cut();
      }),
    );
    expect(err.code).toBe('WARREN_ERR_TRANSFER_TIMEOUT');
    expect(receiver.incomingCount).toBe(0);
    await deleteQueue(t, crashed.queue);

    const sender = await endpoint(await t.connect());
    const out2 = await sender.offer(generatedSource(400 * C, 17));
    const inc2 = receiver.receive(out2.offer, { window: 4 });
    const closing = consume(inc2, (bytes) => {
      if (bytes >= 10 * C) void sender.close();
    });
    const err2 = await failure(closing);
    expect(err2.code).toBe('WARREN_ERR_TRANSFER_CLOSED');
    expect(err2.message).toContain('the sender aborted');
  });

  it("fails everything at once when an endpoint's queue is deleted under it", async () => {
    const t = target();
    const a = await endpoint(await t.connect());
    const b = await endpoint(await t.connect());
    const out = await a.offer(generatedSource(400 * C, 21));
    const inc = b.receive(out.offer, { window: 4 });
    const reading = failure(
      consume(inc, (bytes) => {
        if (bytes === 4 * C) void deleteQueue(t, b.queue);
      }),
    );
    const err = await reading;
    expect(err.code).toBe('WARREN_ERR_TRANSFER_CLOSED');
    expect(err.message).toContain('stopped consuming its queue');
    expect(b.isOpen).toBe(false);
    // The sender was told (the abort went out before the endpoint closed).
    expect((await failure(out.done)).code).toBe('WARREN_ERR_TRANSFER_CLOSED');
  });

  it('fails both sides with a source error when the source fails mid-way', async () => {
    const t = target();
    const a = await endpoint(await t.connect());
    const b = await endpoint(await t.connect());
    const out = await a.offer({
      size: 20 * C,
      read: (offset, length) => {
        if (offset >= 10 * C) throw new Error('disk on fire');
        return Buffer.alloc(length, 1);
      },
    });
    const inc = b.receive(out.offer, { window: 4 });
    const err = await failure(inc.buffer());
    expect(err.code).toBe('WARREN_ERR_TRANSFER_SOURCE');
    expect(err.message).toContain('disk on fire');
    expect((await failure(out.done)).code).toBe('WARREN_ERR_TRANSFER_SOURCE');
    expect(a.outgoingCount + b.incomingCount).toBe(0);
  });

  it('aborts from either side, and an offer nobody takes times out', async () => {
    const t = target();
    const a = await endpoint(await t.connect());
    const b = await endpoint(await t.connect());
    // The receiver declines.
    const out = await a.offer(generatedSource(50 * C, 18));
    const inc = b.receive(out.offer);
    inc.abort('not interested');
    const e1 = await failure(out.done);
    expect(e1.code).toBe('WARREN_ERR_TRANSFER_ABORTED');
    expect(e1.message).toContain('not interested');
    expect(a.outgoingCount).toBe(0);

    // The sender stops mid-way.
    const out2 = await a.offer(generatedSource(200 * C, 19));
    const inc2 = b.receive(out2.offer, { window: 4 });
    const e2 = await failure(
      consume(inc2, (bytes) => {
        if (bytes >= 5 * C) out2.abort('changed my mind');
      }),
    );
    expect(e2.code).toBe('WARREN_ERR_TRANSFER_ABORTED');
    expect(e2.message).toContain('changed my mind');
    expect(b.incomingCount).toBe(0);

    // Offered to a queue nobody consumes: the sender gives up and frees it, and the offer
    // expires from the queue.
    const q = t.name('nobody');
    const out3 = await a.send(q, generatedSource(10 * C, 20), { acceptTimeout: 300 });
    const e3 = await failure(out3.done);
    expect(e3.code).toBe('WARREN_ERR_TRANSFER_TIMEOUT');
    expect(e3.message).toContain('no receiver started');
    expect(a.outgoingCount).toBe(0);
    const ch = await (await t.connect()).channel();
    expect(await countBecomes(ch, q, 0)).toBe(0);
    // A receiver that pulls a stale offer anyway is told at once by the sender's endpoint.
    const late = b.receive(out3.offer);
    const e4 = await failure(late.buffer());
    expect(e4.code).toBe('WARREN_ERR_TRANSFER_ABORTED');
    expect(e4.message).toContain('has no transfer');
    expect(b.incomingCount).toBe(0);
  });
});
