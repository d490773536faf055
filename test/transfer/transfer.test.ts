import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import type { Connection, FieldTable } from '../../src/client/index.js';
import {
  TransferEndpoint,
  offerFromJson,
  offerFromTable,
  offerToTable,
  receiveTransfer,
  sendTransfer,
  transferCarrier,
  transferEndpoint,
} from '../../src/transfer/index.js';
import type { IncomingTransfer, TransferProgress } from '../../src/transfer/index.js';
import { describeBrokers } from '../client/brokers.js';
import { waitFor as until } from '../helpers/broker.js';
import { generate, generatedSha256, generatedSource, generatedStream, sha256 } from './payloads.js';

const C = 64 * 1024;
const work = mkdtempSync(join(tmpdir(), 'warren-transfer-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function drain(t: IncomingTransfer): Promise<{ bytes: number; sha: string }> {
  const s = t.stream();
  const h = createHash('sha256');
  let bytes = 0;
  for await (const c of s) {
    h.update(c as Buffer);
    bytes += (c as Buffer).length;
  }
  return { bytes, sha: h.digest('hex') };
}

const endpoints: TransferEndpoint[] = [];
afterEach(async () => {
  await Promise.all(endpoints.splice(0).map((e) => e.close()));
});

async function endpoint(conn: Connection): Promise<TransferEndpoint> {
  const e = await TransferEndpoint.open(conn, { queueExpires: 60_000 });
  endpoints.push(e);
  return e;
}

/** The shared endpoint sendTransfer/receiveTransfer use, closed after the test. */
async function shared(conn: Connection): Promise<void> {
  endpoints.push(await transferEndpoint(conn, { queueExpires: 60_000 }));
}

describeBrokers('large transfers', (target) => {
  it('moves payloads of 0, 1, chunk-1, chunk, chunk+1 and several chunks byte for byte', async () => {
    const t = target();
    const conn = await t.connect();
    await shared(conn);
    const q = t.name('sizes');
    const sizes = [0, 1, C - 1, C, C + 1, 5 * C + 17];
    for (const [i, size] of sizes.entries()) {
      const payload = generate(i, 0, size);
      const sent = sendTransfer(conn, q, payload, { name: `p${size}`, meta: { size } });
      const inc = await receiveTransfer(conn, q);
      expect(inc.size).toBe(size);
      expect(inc.name).toBe(`p${size}`);
      expect(inc.meta).toEqual({ size });
      const got = await inc.buffer();
      expect(got.length).toBe(size);
      expect(got.equals(payload)).toBe(true);
      const [s, r] = await Promise.all([sent, inc.done]);
      expect(s.sha256).toBe(sha256(payload));
      expect(r.sha256).toBe(sha256(payload));
      expect(r.chunks).toBe(Math.max(1, Math.ceil(size / C)));
    }
  });

  it('sends from a file and a stream of unknown length, receives to a file and a stream', async () => {
    const t = target();
    const a = await t.connect();
    const b = await t.connect();
    await shared(a);
    await shared(b);
    const q = t.name('files');
    const size = 3 * C + 1000;
    const file = join(work, `src-${t.kind}.bin`);
    writeFileSync(file, generate(7, 0, size));
    const sending = sendTransfer(a, q, { path: file });
    const inc = await receiveTransfer(b, q);
    expect(inc.name).toBe(`src-${t.kind}.bin`);
    const out = join(work, `out-${t.kind}.bin`);
    const summary = await inc.toFile(out);
    expect(readFileSync(out).equals(generate(7, 0, size))).toBe(true);
    expect(summary.sha256).toBe(sha256(generate(7, 0, size)));
    await sending;

    // A stream: the size is unknown to the receiver until the last chunk.
    const stream = generatedStream(10 * C + 5, 8, 10_000);
    const s2 = sendTransfer(a, q, stream);
    const inc2 = await receiveTransfer(b, q);
    expect(inc2.size).toBe(-1);
    const got = await drain(inc2);
    expect(inc2.size).toBe(10 * C + 5);
    expect(got.bytes).toBe(10 * C + 5);
    expect(got.sha).toBe(stream.sha256());
    const s2done = await s2;
    expect(s2done.sha256).toBe(got.sha);
    // The receiver asked past the end (it did not know the size): 32 chunks at first, then more
    // 8 at a time until the last chunk came. Each request answered with the last chunk once, not
    // once per chunk asked for.
    expect(s2done.chunks).toBeGreaterThanOrEqual(11);
    expect(s2done.chunks).toBeLessThanOrEqual(11 + 32 / 8);
  });

  it('embeds an offer in another message (the RPC path) and reports progress', async () => {
    const t = target();
    const a = await endpoint(await t.connect());
    const b = await endpoint(await t.connect());
    const size = 40 * C;
    const out = await a.offer(generatedSource(size, 3), {
      contentType: 'application/octet-stream',
    });
    // Through JSON and through a field table, as another layer would carry it.
    const viaJson = offerFromJson(JSON.parse(JSON.stringify(out.offer)));
    expect(offerFromTable(offerToTable(out.offer))).toEqual(viaJson);
    const progress: TransferProgress[] = [];
    const inc = b.receive(viaJson, { window: 4 });
    inc.on('progress', (p) => progress.push(p));
    // A slow reader: the receiver never holds or awaits more than its window of chunks.
    let maxInFlight = 0;
    const h = createHash('sha256');
    for await (const c of inc) {
      maxInFlight = Math.max(maxInFlight, inc.inFlight);
      h.update(c);
      await new Promise((r) => setImmediate(r));
    }
    expect(maxInFlight).toBeLessThanOrEqual(4);
    expect(h.digest('hex')).toBe(generatedSha256(size, 3));
    const summary = await out.done;
    expect(summary.bytes).toBe(size);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)!.bytes).toBe(size);
    expect(progress.at(-1)!.total).toBe(size);
    expect(a.outgoingCount).toBe(0);
    expect(b.incomingCount).toBe(0);
  });

  it('carries large bodies for a request/reply layer as a header reference', async () => {
    const t = target();
    const a = await t.connect();
    const b = await t.connect();
    await shared(a);
    await shared(b);
    const q = t.name('carrier');
    const carrier = transferCarrier(a, { threshold: 1000 });
    expect(carrier.threshold).toBe(1000);
    const body = generate(300, 0, 3 * C + 3);
    // The reference rides in the header of an ordinary message, as RPC would send it.
    const ch = await a.channel();
    await ch.queueDeclare(q);
    await ch.sendToQueue(q, Buffer.alloc(0), { headers: { 'x-ref': await carrier.send(body) } });
    const chB = await b.channel();
    const m = await until(() => chB.get(q, { noAck: true }), 'the message');
    const ref = m.properties.headers!['x-ref'] as FieldTable;
    const got = await transferCarrier(b).receive(ref);
    expect(got.equals(body)).toBe(true);
    // An aborted receive tells the sender too.
    const ref2 = await carrier.send(body);
    const ac = new AbortController();
    ac.abort();
    await expect(transferCarrier(b).receive(ref2, ac.signal)).rejects.toMatchObject({
      code: 'WARREN_ERR_TRANSFER_ABORTED',
    });
    const ep = await transferEndpoint(a);
    await until(() => ep.outgoingCount === 0, 'the sender to drop both transfers');
  });

  it('runs many transfers in parallel between the same two endpoints, both ways', async () => {
    const t = target();
    const a = await endpoint(await t.connect());
    const b = await endpoint(await t.connect());
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < 12; i++) {
      const [from, to] = i % 3 === 2 ? [b, a] : [a, b];
      const size = (i * 7919) % (20 * C);
      const source =
        i % 3 === 0
          ? generate(100 + i, 0, size)
          : i % 3 === 1
            ? generatedStream(size, 100 + i, 9000)
            : generatedSource(size, 100 + i);
      jobs.push(
        (async () => {
          const out = await from.offer(source, { meta: { i } });
          const inc = to.receive(out.offer, { window: 3 });
          const got = await drain(inc);
          expect(got.bytes).toBe(size);
          expect(got.sha).toBe(generatedSha256(size, 100 + i));
          expect((await out.done).sha256).toBe(got.sha);
        })(),
      );
    }
    await Promise.all(jobs);
    expect(a.outgoingCount + a.incomingCount + b.outgoingCount + b.incomingCount).toBe(0);
  });

  it('takes offers from many senders on one queue', async () => {
    const t = target();
    const q = t.name('many');
    const receiver = await endpoint(await t.connect());
    const senders = await Promise.all([1, 2, 3, 4, 5].map(async () => endpoint(await t.connect())));
    const sent = await Promise.all(
      senders.map((s, i) => s.send(q, generatedSource(3 * C + i, 200 + i), { name: `from-${i}` })),
    );
    const listener = await receiver.accept(q, { prefetch: 3 });
    const receiving: Promise<string>[] = [];
    for await (const inc of listener) {
      const i = Number(inc.name!.slice(5));
      receiving.push(
        drain(inc).then((r) => (r.sha === generatedSha256(3 * C + i, 200 + i) ? inc.name! : 'bad')),
      );
      if (receiving.length === senders.length) break;
    }
    expect((await Promise.all(receiving)).sort()).toEqual([
      'from-0',
      'from-1',
      'from-2',
      'from-3',
      'from-4',
    ]);
    await Promise.all(sent.map((o) => o.done));
  });
});
