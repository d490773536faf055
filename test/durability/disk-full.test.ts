import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statfsSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BrokerOptions, Logger } from '../../src/broker/index.js';
import {
  RecordCheck,
  RecordFlag,
  SEGMENT_HEADER,
  checkRecord,
  readRecord,
  recordLength,
} from '../../src/store/record.js';
import { CommitScheduler } from '../../src/store/commit-scheduler.js';
import { QueueStore } from '../../src/store/queue-store.js';
import type { StoredRef } from '../../src/store/queue-store.js';
import { startTestBroker, waitFor } from '../helpers/broker.js';
import { spawnBroker } from './child-broker.js';
import type { ChildBroker } from './child-broker.js';
import type { TestBroker } from '../helpers/broker.js';

/*
 * A full disk, for real: the data directory is a small tmpfs that the test fills with a file.
 * Publishing persistent messages must then be blocked (connection.blocked, like RabbitMQ's disk
 * alarm), never confirmed while it cannot be written, never lost, and nothing may crash; once
 * space returns, publishing resumes and every confirmed message can be consumed, also after a
 * restart. Where mounting a tmpfs is not allowed, the alarm path is driven by a free-disk limit
 * larger than the disk instead (said so in the output).
 */

const mountPoint = mkdtempSync(join(tmpdir(), 'warren-diskfull-'));
let mounted = false;
let running: TestBroker | null = null;
let child: ChildBroker | null = null;
const logLines: string[] = [];

const logger: Logger = {
  debug: () => undefined,
  info: (m) => logLines.push(`info ${m}`),
  warn: (m) => logLines.push(`warn ${m}`),
  error: (m) => logLines.push(`error ${m}`),
};

beforeAll(() => {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mountPoint], {
      stdio: 'pipe',
    });
    mounted = true;
  } catch (err) {
    console.log(
      `disk-full: cannot mount a tmpfs here (${(err as Error).message.split('\n')[0]}); ` +
        'testing the disk alarm through diskFreeLimit instead',
    );
  }
});

afterEach(async () => {
  await running?.stop();
  running = null;
  await child?.kill();
  child = null;
  rmSync(join(mountPoint, 'filler'), { force: true });
  rmSync(join(mountPoint, 'filler-limit'), { force: true });
});

afterAll(async () => {
  await running?.stop();
  running = null;
  if (mounted) {
    try {
      execFileSync('umount', [mountPoint], { stdio: 'pipe' });
    } catch {
      execFileSync('umount', ['-l', mountPoint], { stdio: 'pipe' });
    }
  }
  rmSync(mountPoint, { recursive: true, force: true });
});

function free(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

async function boot(dataDir: string, options: BrokerOptions): Promise<TestBroker> {
  running = await startTestBroker({ dataDir, logger, segmentSize: 64 * 1024, ...options });
  return running;
}

async function shutdown(): Promise<void> {
  await running?.stop();
  running = null;
}

function body(i: number): Buffer {
  const b = Buffer.alloc(4096, 0x2d);
  b.write(`#${i}#`);
  return b;
}

function indexOf(content: Buffer): number {
  return Number(/^#(\d+)#/.exec(content.toString('latin1', 0, 16))![1]);
}

/** Indexes of the messages whose records are intact in a queue's segment files. */
function storedIndexes(dataDir: string, queue: string): number[] {
  let storageId: string | undefined;
  for (const line of readFileSync(join(dataDir, 'definitions.log'), 'utf8').split('\n')) {
    if (line === '') continue;
    const op = JSON.parse(line.slice(9)) as { value?: { name?: string; storageId?: string } };
    if (op.value?.name === queue && op.value.storageId !== undefined)
      storageId = op.value.storageId;
  }
  const dir = join(dataDir, 'queues', storageId!);
  const out: number[] = [];
  for (const f of readdirSync(dir)
    .filter((n) => n.endsWith('.dat'))
    .sort()) {
    const buf = readFileSync(join(dir, f));
    let pos = SEGMENT_HEADER.length;
    while (checkRecord(buf, pos, buf.length, true) === RecordCheck.Ok) {
      out.push(indexOf(readRecord(buf, pos).body));
      pos += recordLength(buf, pos);
    }
  }
  return out;
}

/** Watches a connection for connection.blocked / unblocked and for being closed. */
function watch(conn: amqplib.ChannelModel) {
  const events: string[] = [];
  conn.on('blocked', (reason: string) => events.push(`blocked: ${reason}`));
  conn.on('unblocked', () => events.push('unblocked'));
  conn.on('error', (err: Error) => events.push(`error: ${err.message}`));
  conn.on('close', () => events.push('close'));
  return events;
}

const DRAIN = 10;

const range = (n: number): number[] => Array.from({ length: n }, (_, k) => k);

describe('disk full', () => {
  it('blocks publishers, confirms nothing unwritten, and resumes when space returns', async () => {
    if (!mounted) {
      // The fallback: a limit no disk can meet raises the disk alarm through statfs.
      const dir = mkdtempSync(join(tmpdir(), 'warren-diskalarm-'));
      try {
        const b = await boot(dir, { diskFreeLimit: Number.MAX_SAFE_INTEGER });
        const conn = await amqplib.connect(b.url);
        const events = watch(conn);
        const ch = await conn.createConfirmChannel();
        await ch.assertQueue('q', { durable: true });
        ch.sendToQueue('q', body(0), { persistent: true });
        await waitFor(() => events.some((e) => e.startsWith('blocked')), 'blocked', 15_000);
        expect(b.broker.alarms.has('disk')).toBe(true);
        b.broker.setAlarm('disk', false);
        await waitFor(() => events.includes('unblocked'), 'unblocked');
        await ch.waitForConfirms();
        await conn.close();
      } finally {
        await shutdown();
        rmSync(dir, { recursive: true, force: true });
      }
      return;
    }

    const dataDir = join(mountPoint, 'data');
    mkdirSync(dataDir);
    // Only a write that fails raises the alarm here: the test is about ENOSPC itself.
    let b = await boot(dataDir, { diskFreeLimit: 0 });
    const setup = await amqplib.connect(b.url);
    const sch = await setup.createConfirmChannel();
    await sch.assertQueue('full', { durable: true });
    await sch.assertQueue('drain', { durable: true });
    // Few enough to stay in one segment (kept, and the disk stays full, while one is unacked).
    for (let i = 0; i < DRAIN; i++) sch.sendToQueue('drain', body(i), { persistent: true });
    await sch.waitForConfirms();
    await setup.close();

    // Leave about 300 KiB, then publish 4 MiB of persistent messages without waiting.
    const filler = join(mountPoint, 'filler');
    writeFileSync(filler, Buffer.alloc(Math.max(0, free(mountPoint) - 300 * 1024)));
    const freeBefore = free(mountPoint);
    const conn = await amqplib.connect(b.url);
    const events = watch(conn);
    const ch = await conn.createConfirmChannel();
    ch.on('error', () => undefined);
    const TOTAL = 1000;
    const confirmed = new Set<number>();
    const nacked = new Set<number>();
    for (let i = 0; i < TOTAL; i++) {
      ch.sendToQueue('full', body(i), { persistent: true }, (err) => {
        if (err === null || err === undefined) confirmed.add(i);
        else nacked.add(i);
      });
    }

    await waitFor(() => events.some((e) => e.startsWith('blocked')), 'connection.blocked', 20_000);
    expect(b.broker.alarms.has('disk')).toBe(true);
    expect(logLines.join('\n')).toMatch(/disk alarm set: the disk is full \(ENOSPC/);
    // amqplib advertises connection.blocked, which is why it is told.
    expect([...b.broker.connections].every((c) => c.capabilities.connectionBlocked)).toBe(true);

    // A consumer on another connection keeps draining (and acking) while publishers are blocked.
    const cconn = await amqplib.connect(b.url);
    const cevents = watch(cconn);
    const cch = await cconn.createChannel();
    let drained = 0;
    let last: amqplib.ConsumeMessage | null = null;
    await cch.consume('drain', (m) => {
      if (m === null) return;
      if (++drained < DRAIN) cch.ack(m);
      else last = m;
    });
    await waitFor(
      () => drained === DRAIN,
      'the consumer to drain its queue while the disk is full',
    );

    // Watch for a while (longer than the broker's free-space check period): the disk stays full,
    // so no further confirm may arrive, the alarm must stay on, and no connection may be closed.
    const confirmedWhileFull = confirmed.size;
    const observedUntil = Date.now() + 5500;
    await waitFor(() => Date.now() > observedUntil, 'the observation window', 10_000);
    expect(confirmed.size).toBe(confirmedWhileFull);
    expect(confirmed.size).toBeLessThan(TOTAL);
    // Every confirm the broker sent is backed by an intact record in the queue's files.
    const onDisk = new Set(storedIndexes(dataDir, 'full'));
    expect([...confirmed].filter((i) => !onDisk.has(i))).toEqual([]);
    expect(nacked.size).toBe(0);
    expect(b.broker.alarms.has('disk')).toBe(true);
    expect(events.filter((e) => !e.startsWith('blocked'))).toEqual([]);
    expect(cevents).toEqual([]);
    console.log(
      `disk full: ${freeBefore} bytes were free; ${confirmedWhileFull} of ${TOTAL} 4 KiB ` +
        `publishes confirmed before the disk filled, the rest held unconfirmed`,
    );

    // Space returns: the alarm clears, the publisher is unblocked, everything is confirmed.
    unlinkSync(filler);
    await waitFor(() => events.includes('unblocked'), 'connection.unblocked', 20_000);
    await waitFor(() => confirmed.size === TOTAL, 'every publish to be confirmed', 20_000);
    expect(b.broker.alarms.has('disk')).toBe(false);
    expect(nacked.size).toBe(0);
    expect(logLines.join('\n')).toMatch(/disk alarm cleared/);
    expect(logLines.filter((l) => l.startsWith('error '))).toEqual([]);
    cch.ack(last!);
    await cch.checkQueue('drain');
    await conn.close();
    await cconn.close();
    await shutdown();

    // What was written while the disk was full and after is all there, in order, once; the acks
    // made while it was full held.
    b = await boot(dataDir, { diskFreeLimit: 0 });
    const rconn = await amqplib.connect(b.url);
    const rch = await rconn.createChannel();
    expect((await rch.checkQueue('drain')).messageCount).toBe(0);
    const got: number[] = [];
    for (;;) {
      const m = await rch.get('full', { noAck: true });
      if (m === false) break;
      got.push(indexOf(m.content));
    }
    expect(got).toEqual(range(TOTAL));
    await rconn.close();
    await shutdown();
  });

  it('raises the disk alarm when free space falls below diskFreeLimit, and clears it', async () => {
    const dataDir = mounted ? join(mountPoint, 'limit') : mkdtempSync(join(tmpdir(), 'warren-'));
    mkdirSync(dataDir, { recursive: true });
    const limit = mounted ? 2 * 1024 * 1024 : Number.MAX_SAFE_INTEGER;
    const b = await boot(dataDir, { diskFreeLimit: limit });
    const conn = await amqplib.connect(b.url);
    const events = watch(conn);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('limited', { durable: true });
    ch.sendToQueue('limited', body(0), { persistent: true });
    await ch.waitForConfirms();
    const filler = join(mountPoint, 'filler-limit');
    if (mounted) writeFileSync(filler, Buffer.alloc(Math.max(0, free(mountPoint) - 1024 * 1024)));
    // The broker checks free space every few seconds.
    await waitFor(() => b.broker.alarms.has('disk'), 'the disk alarm', 20_000);
    ch.sendToQueue('limited', body(1), { persistent: true });
    await waitFor(() => events.some((e) => e.startsWith('blocked')), 'connection.blocked');
    expect(events[0]).toMatch(/blocked: disk/);
    if (mounted) unlinkSync(filler);
    else b.broker.setAlarm('disk', false);
    await waitFor(() => events.includes('unblocked'), 'connection.unblocked', 20_000);
    await ch.waitForConfirms();
    expect((await ch.checkQueue('limited')).messageCount).toBe(2);
    await conn.close();
    await shutdown();
    if (!mounted) rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps acks a full disk refused and writes them once space returns', () => {
    if (!mounted) {
      console.log('disk-full: no tmpfs, so no partial ack write can be provoked; case not run');
      return;
    }
    const dir = join(mountPoint, 'acks');
    const logger = { info: () => undefined, warn: (m: string) => logLines.push(`warn ${m}`) };
    const errors: string[] = [];
    const open = () =>
      new QueueStore(dir, {
        segmentSize: 1024 * 1024,
        commit: new CommitScheduler(10),
        logger,
        onWriteError: (err) => errors.push(err.code ?? err.message),
      });
    const store = open();
    const refs: StoredRef[] = [];
    for (let seq = 1; seq <= 2000; seq++) {
      refs.push(
        store.append(
          {
            seq,
            expiresAt: 0,
            flags: RecordFlag.Persistent,
            exchange: '',
            routingKey: 'q',
            header: Buffer.alloc(14),
            body: Buffer.alloc(100, seq % 251),
          },
          false,
        ),
      );
    }
    expect(store.flush()).toBe(true);
    // 412 acks: the ack file's first page has room for 100 more.
    for (const r of refs.slice(0, 412)) store.release(r, true);
    expect(store.flush()).toBe(true);
    // Fill the disk to the last byte, then ack 600 more: only 100 fit.
    const filler = join(mountPoint, 'filler');
    writeFileSync(filler, Buffer.alloc(free(mountPoint)));
    expect(free(mountPoint)).toBe(0);
    for (const r of refs.slice(412, 1012)) store.release(r, true);
    expect(store.flush()).toBe(false);
    expect(errors).toContain('ENOSPC');
    unlinkSync(filler);
    expect(store.flush()).toBe(true);
    store.close();

    const again = open();
    expect(again.recover().liveCount).toBe(2000 - 1012);
    again.close();
  });

  it('leaves no torn definition record when a declaration meets a full disk', async () => {
    if (!mounted) {
      console.log(
        'disk-full: no tmpfs, so a definition write cannot be made to fail; case not run',
      );
      return;
    }
    const dataDir = join(mountPoint, 'defs');
    let b = await boot(dataDir, { diskFreeLimit: 0 });
    const filler = join(mountPoint, 'filler');
    writeFileSync(filler, Buffer.alloc(free(mountPoint)));
    const conn = await amqplib.connect(b.url);
    let closedWith = '';
    conn.on('error', (err: Error) => (closedWith = err.message));
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    const declared: string[] = [];
    let refused: string | null = null;
    for (let n = 0; n < 2000 && refused === null; n++) {
      const name = `declared-on-a-full-disk-${n}-${'x'.repeat(60)}`;
      try {
        await ch.assertQueue(name, { durable: true });
        declared.push(name);
      } catch (err) {
        refused = (err as Error).message;
      }
    }
    // The declaration that could not be stored was refused, not acknowledged.
    expect(refused).not.toBeNull();
    // 506 RESOURCE_ERROR is a connection exception (spec); the queue is not left half-made.
    await waitFor(() => closedWith !== '', 'the connection to close');
    expect(closedWith).toMatch(/RESOURCE_ERROR - cannot store queue .* the disk is full/);
    await conn.close().catch(() => undefined);

    unlinkSync(filler);
    const conn2 = await amqplib.connect(b.url);
    const ch2 = await conn2.createChannel();
    await ch2.assertQueue('declared-after', { durable: true });
    await conn2.close();
    await shutdown();

    logLines.length = 0;
    b = await boot(dataDir, { diskFreeLimit: 0 });
    expect(logLines.filter((l) => /damaged definition record/.test(l))).toEqual([]);
    const conn3 = await amqplib.connect(b.url);
    const ch3 = await conn3.createChannel();
    for (const q of [...declared, 'declared-after']) await ch3.checkQueue(q);
    console.log(
      `disk full: ${declared.length} durable queues declared before a declaration was refused ` +
        `(${refused}); all of them and one declared after space returned were recovered`,
    );
    await conn3.close();
  });

  it('delivers from a queue paged to disk while the disk is full', async () => {
    if (!mounted) {
      console.log('disk-full: no tmpfs, so no write can be refused; case not run');
      return;
    }
    // A child process: a broker that hung here must fail the test, not stall the test runner.
    child = await spawnBroker({
      dataDir: join(mountPoint, 'paged'),
      memoryBudget: 0,
      diskFreeLimit: 0,
      segmentSize: 64 * 1024,
    });
    const conn = await amqplib.connect(child.url);
    const events = watch(conn);
    const ch = await conn.createConfirmChannel();
    ch.on('error', () => undefined);
    await ch.assertQueue('paged', { durable: true });
    writeFileSync(
      join(mountPoint, 'filler'),
      Buffer.alloc(Math.max(0, free(mountPoint) - 300 * 1024)),
    );
    const TOTAL = 600;
    const confirmed = new Set<number>();
    for (let i = 0; i < TOTAL; i++) {
      ch.sendToQueue('paged', body(i), { persistent: true }, (err) => {
        if (err === null || err === undefined) confirmed.add(i);
      });
    }
    await waitFor(() => events.some((e) => e.startsWith('blocked')), 'connection.blocked', 20_000);
    const held = await child.stats();
    const accepted = held.queues.paged!.messages;
    // The queue is paged (only on disk past its head), and part of that is still in memory
    // because the disk refused it.
    expect(held.queues.paged!.tail).toBeGreaterThan(0);
    expect(accepted).toBeGreaterThan(confirmed.size);

    // A consumer gets all of it, in order, while the disk is still full. It acks nothing yet:
    // acks would free whole segments, and so disk space.
    const cconn = await amqplib.connect(child.url);
    const cch = await cconn.createChannel();
    await cch.prefetch(TOTAL);
    const got: number[] = [];
    let acking = false;
    await cch.consume('paged', (m) => {
      if (m === null) return;
      got.push(indexOf(m.content));
      if (acking) cch.ack(m, true);
    });
    await waitFor(() => got.length >= accepted, 'the accepted messages, disk still full', 20_000);
    expect(got).toEqual(range(accepted));
    expect((await child.stats()).alarms).toEqual(['disk']);

    rmSync(join(mountPoint, 'filler'));
    acking = true;
    await waitFor(() => got.length === TOTAL, 'every message after space returned', 20_000);
    await waitFor(() => confirmed.size === TOTAL, 'every confirm', 20_000);
    expect(got).toEqual(range(TOTAL));
    console.log(
      `disk full, paged queue: ${accepted} messages accepted before the block (` +
        `${held.queues.paged!.tail} of them only on disk or buffered for it) delivered while full`,
    );
    await cconn.close();
    await conn.close();
    await child.stop();
    child = null;
  });
});
