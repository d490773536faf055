import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/broker/index.js';
import {
  RecordCheck,
  SEGMENT_HEADER,
  checkRecord,
  readRecord,
  recordLength,
} from '../../src/store/record.js';
import { startTestBroker, waitFor } from '../helpers/broker.js';
import type { TestBroker } from '../helpers/broker.js';

/*
 * Damage a real broker's files between runs (torn segment tails, flipped bits, a clobbered length
 * field, a destroyed segment header, damaged and torn definition records) and check that the next
 * run starts, says what it found, keeps every intact message in order, and serves clients.
 */

const dataDir = mkdtempSync(join(tmpdir(), 'warren-corrupt-'));
let running: TestBroker | null = null;
const logLines: string[] = [];

afterAll(async () => {
  await running?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const logger: Logger = {
  debug: () => undefined,
  info: (m) => logLines.push(`info ${m}`),
  warn: (m) => logLines.push(`warn ${m}`),
  error: (m) => logLines.push(`error ${m}`),
};

async function boot(): Promise<TestBroker> {
  running = await startTestBroker({ dataDir, segmentSize: 64 * 1024, logger });
  return running;
}

async function shutdown(): Promise<void> {
  await running?.stop();
  running = null;
}

const COUNT = 200;
const QUEUES = ['q-torn', 'q-damaged', 'q-header', 'q-acked', 'q-intact'];
const ACKED = 100;

function body(i: number): Buffer {
  const b = Buffer.alloc(1000, 0x2e);
  b.write(`#${i}#`);
  return b;
}

function indexOf(content: Buffer): number {
  const m = /^#(\d+)#/.exec(content.toString('latin1', 0, 16));
  if (m === null) throw new Error(`not a test message: ${content.toString('latin1', 0, 16)}`);
  return Number(m[1]);
}

interface OnDisk {
  file: string;
  offset: number;
  length: number;
  index: number;
}

/** The queue's storage directory, found by the storage id in its definition. */
function queueDir(name: string): string {
  const log = readFileSync(join(dataDir, 'definitions.log'), 'utf8');
  for (const line of log.split('\n')) {
    const json = line.slice(9);
    if (json === '') continue;
    const op = JSON.parse(json) as { op: string; value?: { name?: string; storageId?: string } };
    if (op.op === 'put' && op.value?.name === name && op.value.storageId !== undefined) {
      return join(dataDir, 'queues', op.value.storageId);
    }
  }
  throw new Error(`no definition for queue ${name}`);
}

function segmentFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.dat'))
    .sort()
    .map((f) => join(dir, f));
}

/** Every record of a queue, in file order, located by parsing the segments. */
function records(dir: string): OnDisk[] {
  const out: OnDisk[] = [];
  for (const file of segmentFiles(dir)) {
    const buf = readFileSync(file);
    let pos = SEGMENT_HEADER.length;
    while (pos < buf.length) {
      expect(checkRecord(buf, pos, buf.length, true)).toBe(RecordCheck.Ok);
      const length = recordLength(buf, pos);
      out.push({ file, offset: pos, length, index: indexOf(readRecord(buf, pos).body) });
      pos += length;
    }
  }
  return out;
}

function patch(file: string, offset: number, bytes: Buffer): void {
  const buf = readFileSync(file);
  bytes.copy(buf, offset);
  writeFileSync(file, buf);
}

async function drain(url: string, queue: string): Promise<amqplib.GetMessage[]> {
  const conn = await amqplib.connect(url);
  const ch = await conn.createChannel();
  const out: amqplib.GetMessage[] = [];
  for (;;) {
    const m = await ch.get(queue, { noAck: true });
    if (m === false) break;
    out.push(m);
  }
  await conn.close();
  return out;
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from }, (_, k) => from + k);

describe('damaged data directory', () => {
  it('starts, reports the damage, keeps every intact message and serves clients', async () => {
    let b = await boot();
    let conn = await amqplib.connect(b.url);
    let ch = await conn.createConfirmChannel();
    await ch.assertExchange('orders', 'topic', { durable: true });
    await ch.assertExchange('victim', 'fanout', { durable: true });
    for (const q of QUEUES) {
      await ch.assertQueue(q, { durable: true });
      await ch.bindQueue(q, 'orders', `${q}.#`);
    }
    for (const q of QUEUES) {
      for (let i = 0; i < COUNT; i++) {
        ch.publish('orders', `${q}.x`, body(i), { persistent: true, messageId: `${q}/${i}` });
      }
    }
    await ch.waitForConfirms();
    // q-acked: the first 100 are consumed and acked, one by one.
    await ch.prefetch(ACKED);
    const firsts: amqplib.ConsumeMessage[] = [];
    const { consumerTag } = await ch.consume('q-acked', (m) => {
      if (m !== null) firsts.push(m);
    });
    await waitFor(() => firsts.length === ACKED, 'the first deliveries');
    await ch.cancel(consumerTag);
    expect(firsts.map((m) => indexOf(m.content))).toEqual(range(0, ACKED));
    for (const m of firsts) ch.ack(m);
    await ch.checkQueue('q-acked');
    // The last definition written: its record will be torn.
    await ch.assertQueue('q-last', { durable: true });
    await conn.close();
    await shutdown();

    // -- the damage --------------------------------------------------------------------------
    // q-torn: the last record of the last segment loses its end (a crash in the middle of a write).
    const torn = records(queueDir('q-torn'));
    const lastRec = torn[torn.length - 1]!;
    expect(lastRec.index).toBe(COUNT - 1);
    truncateSync(lastRec.file, statSync(lastRec.file).size - 100);

    // q-damaged: records 10 (a flipped bit in its body), one in the second segment (length field
    // overwritten with a huge value) and two in the third (garbage across their boundary) break.
    const dmg = records(queueDir('q-damaged'));
    const files = segmentFiles(queueDir('q-damaged'));
    expect(files.length).toBeGreaterThanOrEqual(4);
    const r10 = dmg.find((r) => r.index === 10)!;
    const buf10 = readFileSync(r10.file);
    patch(
      r10.file,
      r10.offset + r10.length - 50,
      Buffer.from([buf10[r10.offset + r10.length - 50]! ^ 1]),
    );
    const inSecond = dmg.filter((r) => r.file === files[1]);
    const rLen = inSecond[3]!;
    patch(rLen.file, rLen.offset + 4, Buffer.from([0x7f, 0xff, 0xff, 0xf0]));
    const inThird = dmg.filter((r) => r.file === files[2]);
    const [rA, rB] = [inThird[5]!, inThird[6]!];
    patch(rA.file, rB.offset - 20, Buffer.alloc(60, 0xee));
    const lostDamaged = [r10.index, rLen.index, rA.index, rB.index];

    // q-header: the second segment's file header is overwritten.
    const hdrFiles = segmentFiles(queueDir('q-header'));
    patch(hdrFiles[1]!, 0, Buffer.from('XXXXXXXX'));

    // q-acked: the ack file of its oldest remaining segment gets a torn last record and one
    // flipped bit in an earlier record (that message comes back, flagged redelivered).
    const acked = records(queueDir('q-acked'));
    const ackFile = acked[0]!.file.replace(/\.dat$/, '.ack');
    const acks = readFileSync(ackFile);
    expect(acks.length).toBeGreaterThanOrEqual(80);
    const unacked = acked.find(
      (r) => r.file === acked[0]!.file && r.offset === acks.readUInt32BE(72),
    )!;
    expect(unacked.index).toBeLessThan(ACKED);
    patch(ackFile, 72 + 3, Buffer.from([acks[72 + 3]! ^ 0x10]));
    writeFileSync(ackFile, Buffer.concat([readFileSync(ackFile), Buffer.from([1, 2, 3])]));

    // definitions.log: the 'victim' exchange's record is damaged; the last record is torn.
    const defs = join(dataDir, 'definitions.log');
    const lines = readFileSync(defs, 'utf8').split('\n');
    const victim = lines.findIndex((l) => l.includes('"name":"victim"'));
    expect(victim).toBeGreaterThan(0);
    lines[victim] = lines[victim]!.replace('"fanout"', '"fanouT"');
    let text = lines.join('\n');
    expect(text.endsWith('\n')).toBe(true);
    const lastLine = lines[lines.length - 2]!;
    expect(lastLine).toContain('q-last');
    text = text.slice(0, text.length - 1 - Math.floor(lastLine.length / 2));
    writeFileSync(defs, text);

    // -- the next run -------------------------------------------------------------------------
    logLines.length = 0;
    b = await boot();
    const warnings = logLines.filter((l) => l.startsWith('warn '));
    const log = warnings.join('\n');
    expect(log).toMatch(/incomplete record .*truncating/);
    expect(log).toMatch(/damaged data at offset/);
    expect(log).toMatch(/definitions\.log:\d+: damaged definition record skipped/);
    expect(log).toMatch(/\.ack: 1 damaged ack records ignored/);
    expect(log).toMatch(/\.ack: incomplete ack record/);
    expect(logLines.some((l) => l.startsWith('error '))).toBe(false);
    console.log(`recovery reported:\n  ${warnings.join('\n  ')}`);

    const back = await drain(b.url, 'q-acked');
    expect(back.map((m) => indexOf(m.content))).toEqual([unacked.index, ...range(ACKED, COUNT)]);
    expect(back.map((m) => m.fields.redelivered)).toEqual([
      true,
      ...range(ACKED, COUNT).map(() => false),
    ]);
    expect((await drain(b.url, 'q-intact')).map((m) => indexOf(m.content))).toEqual(
      range(0, COUNT),
    );
    expect((await drain(b.url, 'q-torn')).map((m) => indexOf(m.content))).toEqual(
      range(0, COUNT - 1),
    );
    const damaged = (await drain(b.url, 'q-damaged')).map((m) => indexOf(m.content));
    expect(damaged).toEqual(range(0, COUNT).filter((i) => !lostDamaged.includes(i)));
    const header = await drain(b.url, 'q-header');
    expect(header.map((m) => indexOf(m.content))).toEqual(range(0, COUNT));
    expect(header[0]!.properties.messageId).toBe('q-header/0');

    // The damaged definitions are gone, the rest is intact, and clients are served as usual.
    conn = await amqplib.connect(b.url);
    ch = await conn.createConfirmChannel();
    ch.on('error', () => undefined);
    await expect(ch.checkExchange('victim')).rejects.toThrow(/NOT_FOUND/);
    ch = await conn.createConfirmChannel();
    ch.on('error', () => undefined);
    await expect(ch.checkQueue('q-last')).rejects.toThrow(/NOT_FOUND/);
    ch = await conn.createConfirmChannel();
    for (const q of QUEUES) {
      ch.publish('orders', `${q}.y`, body(1000), { persistent: true });
    }
    await ch.waitForConfirms();
    for (const q of QUEUES) expect((await ch.checkQueue(q)).messageCount).toBe(1);
    await conn.close();
    await shutdown();

    // A clean restart after the repair: the new messages are there, nothing else reappears,
    // and the definitions log was rewritten without the damage.
    logLines.length = 0;
    b = await boot();
    for (const q of QUEUES) {
      expect((await drain(b.url, q)).map((m) => indexOf(m.content))).toEqual([1000]);
    }
    expect(logLines.filter((l) => /definitions\.log/.test(l))).toEqual([]);
    await shutdown();
  });

  it('keeps the messages of a queue whose definition record is damaged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warren-orphan-'));
    try {
      let b = await startTestBroker({ dataDir: dir, logger });
      const conn = await amqplib.connect(b.url);
      const ch = await conn.createConfirmChannel();
      await ch.assertQueue('precious', { durable: true });
      for (let i = 0; i < 50; i++) ch.sendToQueue('precious', body(i), { persistent: true });
      await ch.waitForConfirms();
      await conn.close();
      await b.stop();
      const queueDirs = readdirSync(join(dir, 'queues'));
      expect(queueDirs).toHaveLength(1);
      const storageId = queueDirs[0]!;

      const defs = join(dir, 'definitions.log');
      const text = readFileSync(defs, 'utf8');
      writeFileSync(defs, text.replace('"name":"precious"', '"name":"precioUs"'));

      logLines.length = 0;
      b = await startTestBroker({ dataDir: dir, logger });
      const log = logLines.join('\n');
      expect(log).toMatch(/damaged definition record skipped/);
      // The queue cannot be named any more, but its confirmed messages are not destroyed: they
      // are set aside, and the log says where.
      expect(log).toContain(storageId);
      const kept = join(dir, 'orphaned', storageId);
      expect(existsSync(kept)).toBe(true);
      expect(readdirSync(kept).some((f) => f.endsWith('.dat'))).toBe(true);
      await b.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
