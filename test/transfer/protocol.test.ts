import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Reader, Writer } from '../../src/protocol/index.js';
import type { FieldTable } from '../../src/protocol/index.js';
import { crc32, crc32Hex, tableCrc32 } from '../../src/transfer/crc32.js';
import { TransferError } from '../../src/transfer/errors.js';
import {
  Header,
  offerFromJson,
  offerFromTable,
  offerToTable,
} from '../../src/transfer/protocol.js';
import type { TransferOffer } from '../../src/transfer/protocol.js';
import { openSource } from '../../src/transfer/sources.js';
import { sha256 } from './payloads.js';

const work = mkdtempSync(join(tmpdir(), 'warren-transfer-unit-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A table through the AMQP field-table codec, as it crosses the wire. */
function wire(t: FieldTable): FieldTable {
  const w = new Writer(256);
  w.table(t);
  return new Reader(w.toBuffer()).table();
}

function expectProtocolError(fn: () => unknown, text: string): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(TransferError);
  expect((err as TransferError).code).toBe('WARREN_ERR_TRANSFER_PROTOCOL');
  expect((err as TransferError).message).toContain(text);
}

const OFFER: TransferOffer = {
  version: 1,
  id: 'abc',
  sender: 'warren.transfer.x',
  size: 5 * 2 ** 32 + 3,
  chunkSize: 65536,
  window: 128,
  timeout: 60000,
  sha256: 'a'.repeat(64),
  contentType: 'application/x-test',
  name: 'big.bin',
  meta: { n: 1, s: 'x', b: true },
};

describe('transfer offer encoding', () => {
  it('round-trips through the AMQP field-table codec, sizes past 4 GiB included', () => {
    expect(offerFromTable(wire(offerToTable(OFFER)))).toEqual(OFFER);
    const minimal = {
      ...OFFER,
      size: -1,
      sha256: undefined,
      contentType: undefined,
      name: undefined,
      meta: undefined,
    };
    expect(offerFromTable(wire(offerToTable(minimal)))).toEqual(minimal);
    expect(offerFromJson(JSON.parse(JSON.stringify(OFFER)))).toEqual(OFFER);
  });

  it('refuses offers it cannot honour, saying what is wrong', () => {
    const t = offerToTable(OFFER);
    expectProtocolError(() => offerFromTable({ ...t, [Header.Version]: 2 }), 'version 2');
    expectProtocolError(() => offerFromTable({ ...t, [Header.Id]: '' }), `no ${Header.Id}`);
    expectProtocolError(() => offerFromTable({ ...t, [Header.Sender]: undefined }), Header.Sender);
    expectProtocolError(
      () => offerFromTable({ ...t, [Header.ChunkSize]: 0 }),
      `${Header.ChunkSize} must be an integer from 1`,
    );
    expectProtocolError(() => offerFromTable({ ...t, [Header.Size]: -2 }), Header.Size);
    expectProtocolError(() => offerFromTable({ ...t, [Header.Size]: 'big' }), "got 'big'");
    expectProtocolError(() => offerFromTable({ ...t, [Header.Sha256]: 'XYZ' }), '64 lowercase hex');
    expectProtocolError(() => offerFromTable(undefined), 'no headers');
    expectProtocolError(() => offerFromJson('nope'), 'must be an object');
  });
});

describe('CRC-32', () => {
  it('is the IEEE CRC-32 (check value of "123456789"), native and table versions alike', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(tableCrc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32Hex(Buffer.alloc(0))).toBe('00000000');
    for (let i = 0; i < 20; i++) {
      const b = randomBytes(i * 997);
      expect(tableCrc32(b)).toBe(crc32(b));
    }
  });
});

describe('transfer sources', () => {
  const C = 1000;

  it('reads a Buffer in chunks; past the end is the last chunk; hashes the whole', async () => {
    const data = randomBytes(3 * C + 1);
    const r = await openSource(data, C, 't');
    expect(r.size).toBe(3 * C + 1);
    expect((await r.readChunk(1)).data.equals(data.subarray(C, 2 * C))).toBe(true);
    const last = await r.readChunk(7);
    expect(last.index).toBe(3);
    expect(last.eof).toBe(true);
    expect(last.data.length).toBe(1);
    // Chunks 0 and 2 were never read: the digest reads them.
    expect(await r.sha256()).toBe(sha256(data));
    const empty = await openSource(Buffer.alloc(0), C, 't');
    expect(await empty.readChunk(0)).toEqual({ index: 0, data: Buffer.alloc(0), eof: true });
  });

  it('cuts a stream of any piece sizes into chunks, learns where it ends, and cannot rewind', async () => {
    for (const pieces of [[1, 1, 998, 2500, 0, 501], [4000], [C, C], []]) {
      const all = randomBytes(pieces.reduce((a, b) => a + b, 0));
      let off = 0;
      const parts = pieces.map((n) => all.subarray(off, (off += n)));
      const r = await openSource(Readable.from(parts), C, 't');
      expect(r.size).toBe(-1);
      const n = Math.max(1, Math.ceil(all.length / C));
      const got: Buffer[] = [];
      for (let i = 0; i < n; i++) {
        const c = await r.readChunk(i);
        expect(c.eof).toBe(i === n - 1);
        got.push(c.data);
        r.release(i);
      }
      expect(Buffer.concat(got).equals(all)).toBe(true);
      expect(r.size).toBe(all.length);
      expect(await r.sha256()).toBe(sha256(all));
      // Asking past the end gives the last chunk, which is kept for that.
      expect((await r.readChunk(n + 5)).index).toBe(n - 1);
      if (n > 1) {
        await expect(r.readChunk(0)).rejects.toMatchObject({
          code: 'WARREN_ERR_TRANSFER_CANNOT_REWIND',
        });
      }
      await r.close();
    }
  });

  it('holds only what was read and not released', async () => {
    const r = await openSource(Readable.from([randomBytes(10 * C)]), C, 't');
    await r.readChunk(3);
    // Chunks 0-3, plus the rest of the one piece, which arrived as a whole.
    expect(r.buffered).toBe(10 * C);
    r.release(3);
    expect(r.buffered).toBe(7 * C);
    await r.close();
    expect(r.buffered).toBe(0);
  });

  it('notices a file that shrinks or changes while it is sent', async () => {
    const path = join(work, 'changing.bin');
    writeFileSync(path, randomBytes(4 * C));
    const r = await openSource({ path }, C, 't');
    expect(r.name).toBe('changing.bin');
    await r.readChunk(0);
    truncateSync(path, 2 * C);
    await expect(r.readChunk(3)).rejects.toMatchObject({ code: 'WARREN_ERR_TRANSFER_SOURCE' });
    await r.close();

    writeFileSync(path, randomBytes(2 * C));
    const r2 = await openSource({ path }, C, 't');
    await r2.readChunk(0);
    await r2.readChunk(1);
    writeFileSync(path, randomBytes(3 * C));
    await expect(r2.sha256()).rejects.toThrow(/changed while it was being sent/);
    await r2.close();
    await expect(openSource({ path: join(work, 'missing') }, C, 't')).rejects.toThrow(
      /cannot open/,
    );
  });
});
