import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/broker.js';
import { spawnBroker } from './child-broker.js';
import type { ChildBroker } from './child-broker.js';

/*
 * kill -9 under load, many times over one data directory.
 *
 * Publishers publish persistent messages to durable queues with confirms; consumers ack them in
 * every pattern a client may use (one by one, `multiple`, out of order, some nacked back). At a
 * random moment the broker is killed. After the restart every message in the queues is read (and
 * requeued) before the load resumes, and checked against what the clients saw:
 *
 *   - every confirmed message that was not acked is there, exactly once;
 *   - an acked message may be back only if its ack was in flight at the kill (sent by the client,
 *     not yet processed by the broker), and then with redelivered=true; an ack from an earlier
 *     round (which a later restart already honoured) never comes back;
 *   - nothing is there twice, nothing is there that was never published;
 *   - a message a client ever received comes back with redelivered=true;
 *   - unconfirmed publishes may or may not be there.
 */

const ROUNDS = 20;
/**
 * Rounds stop early past this, so a slow machine still finishes in bounded time (20 rounds take
 * some 40 s on an idle 2-core machine; the drain and the last restarts come after).
 */
const TIME_CAP_MS = 75_000;
const QUEUES = ['crash-a', 'crash-b'];
const EXCHANGE = 'crash-x';
const PUBLISHERS = 3;
const CONSUMERS = 2;
/** Per consumer (each consumer channel consumes every queue). */
const PREFETCH = 50;
/** Unconfirmed publishes per publisher. */
const WINDOW = 64;
/** Publishers pause while this many confirmed messages are unacked (bounds the backlog). */
const MAX_BACKLOG = 6000;

const dataDir = mkdtempSync(join(tmpdir(), 'warren-crash-'));
let child: ChildBroker | null = null;

afterAll(async () => {
  await child?.kill();
  rmSync(dataDir, { recursive: true, force: true });
});

function noop(): void {}

/** A seeded PRNG (mulberry32), so a failing run can be replayed with CRASH_SEED. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Model {
  /** Published, not confirmed (and not seen at a restart since). */
  readonly unconfirmed = new Set<string>();
  /** Known to be in the broker: confirmed (or found at a restart) and not acked. */
  readonly live = new Set<string>();
  /** Acks sent in this round. */
  readonly ackedThisRound = new Set<string>();
  /**
   * Acks sent in an earlier round whose message was gone at the restart after, and unconfirmed
   * publishes that were not there: none of these may ever come back.
   */
  readonly gone = new Set<string>();
  /** Ever delivered to a client: must come back with redelivered=true. */
  readonly received = new Set<string>();
  readonly violations: string[] = [];
  totals = { published: 0, confirmed: 0, acked: 0, nacked: 0, ackedBack: 0, unconfirmedKept: 0 };

  published(id: string): void {
    this.totals.published++;
    this.unconfirmed.add(id);
  }

  confirmed(id: string): void {
    this.totals.confirmed++;
    this.unconfirmed.delete(id);
    if (!this.ackedThisRound.has(id)) this.live.add(id);
  }

  delivered(id: string, round: number): void {
    if (this.ackedThisRound.has(id)) {
      this.violations.push(`round ${round}: ${id} delivered again after it was acked`);
    }
    if (this.gone.has(id))
      this.violations.push(`round ${round}: ${id} delivered after it was gone`);
    this.received.add(id);
  }

  acked(id: string): void {
    this.totals.acked++;
    this.live.delete(id);
    this.unconfirmed.delete(id);
    this.ackedThisRound.add(id);
  }

  /** Check what a restart brought back, then make it the new truth. */
  recovered(round: number, present: Map<string, boolean>, duplicates: string[]): number {
    const v = this.violations;
    for (const id of duplicates) v.push(`round ${round}: ${id} is in the queues more than once`);
    let ackedBack = 0;
    for (const [id, redelivered] of present) {
      if (this.received.has(id) && !redelivered) {
        v.push(`round ${round}: ${id} was delivered before the crash but redelivered=false`);
      }
      if (this.live.has(id)) continue;
      if (this.ackedThisRound.has(id)) {
        ackedBack++;
        if (!redelivered) v.push(`round ${round}: acked ${id} is back without redelivered`);
      } else if (this.gone.has(id)) {
        v.push(`round ${round}: ${id} is back although a restart already showed it gone`);
      } else if (this.unconfirmed.has(id)) {
        this.totals.unconfirmedKept++;
      } else {
        v.push(`round ${round}: ${id} was never published`);
      }
    }
    for (const id of this.live) {
      if (!present.has(id)) v.push(`round ${round}: confirmed, unacked ${id} is lost`);
    }
    for (const id of this.ackedThisRound) if (!present.has(id)) this.gone.add(id);
    for (const id of this.unconfirmed) if (!present.has(id)) this.gone.add(id);
    this.ackedThisRound.clear();
    this.unconfirmed.clear();
    this.live.clear();
    for (const id of present.keys()) this.live.add(id);
    this.totals.ackedBack += ackedBack;
    return ackedBack;
  }
}

async function connect(url: string): Promise<amqplib.ChannelModel> {
  // A connect that cannot finish fails the round in 20 s rather than the whole test in minutes.
  const conn = await amqplib.connect(url, { timeout: 20_000 });
  conn.on('error', noop);
  return conn;
}

/**
 * Read every message in the queues (consume without acking, then close, which requeues them).
 * Returns id -> redelivered, and the ids seen more than once.
 */
async function browseAll(url: string): Promise<{ present: Map<string, boolean>; dup: string[] }> {
  const conn = await connect(url);
  const present = new Map<string, boolean>();
  const dup: string[] = [];
  try {
    const ch = await conn.createChannel();
    ch.on('error', noop);
    for (const q of QUEUES) {
      const { messageCount } = await ch.checkQueue(q);
      let got = 0;
      await new Promise<void>((resolve, reject) => {
        if (messageCount === 0) {
          resolve();
          return;
        }
        const timer = setTimeout(
          () => reject(new Error(`browsing ${q}: got ${got} of ${messageCount} messages`)),
          30_000,
        );
        void ch.consume(q, (m) => {
          if (m === null) return;
          const id = m.properties.messageId as string;
          if (present.has(id)) dup.push(id);
          present.set(id, m.fields.redelivered);
          if (++got === messageCount) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      // Nothing beyond what checkQueue counted may arrive.
      const again = await ch.checkQueue(q);
      expect(again.messageCount).toBe(0);
    }
  } finally {
    await conn.close().catch(noop);
  }
  return { present, dup };
}

interface Load {
  /** Stop acking (just before a kill, so no ack is sent to a broker already being killed). */
  freezeAcks(): void;
  stop(): Promise<void>;
}

/** Publishers and consumers on the running broker, feeding `model`, until stop(). */
async function startLoad(
  url: string,
  model: Model,
  round: number,
  rnd: () => number,
): Promise<Load> {
  let stopping = false;
  let acksFrozen = false;
  const conns: amqplib.ChannelModel[] = [];
  const loops: Promise<void>[] = [];
  const timers: NodeJS.Timeout[] = [];
  let nextId = 0;

  for (let c = 0; c < CONSUMERS; c++) {
    const conn = await connect(url);
    conns.push(conn);
    const ch = await conn.createChannel();
    ch.on('error', noop);
    await ch.prefetch(PREFETCH);
    // Unacked deliveries of this channel by tag, for `multiple` and out-of-order acks.
    const pending = new Map<number, { m: amqplib.ConsumeMessage; id: string }>();
    const ack = (tag: number, multiple: boolean): void => {
      const p = pending.get(tag)!;
      ch.ack(p.m, multiple);
      for (const [t, q] of pending) {
        if (t === tag || (multiple && t < tag)) {
          model.acked(q.id);
          pending.delete(t);
        }
      }
    };
    for (const q of QUEUES) {
      await ch.consume(q, (m) => {
        if (m === null) return;
        const id = m.properties.messageId as string;
        model.delivered(id, round);
        if (acksFrozen) return;
        const r = rnd();
        pending.set(m.fields.deliveryTag, { m, id });
        if (r < 0.03) {
          pending.delete(m.fields.deliveryTag);
          ch.nack(m, false, true);
        } else if (r < 0.5) {
          ack(m.fields.deliveryTag, false);
        }
      });
    }
    const settle = (): void => {
      if (acksFrozen || pending.size === 0) return;
      const tags = [...pending.keys()];
      if (rnd() < 0.3) ack(Math.max(...tags), true);
      else {
        for (let i = 0; i < Math.min(5, tags.length); i++) {
          const t = tags[Math.floor(rnd() * tags.length)]!;
          if (pending.has(t)) ack(t, false);
        }
      }
    };
    timers.push(setInterval(settle, 3));
  }

  for (let p = 0; p < PUBLISHERS; p++) {
    const conn = await connect(url);
    conns.push(conn);
    const ch = await conn.createConfirmChannel();
    ch.on('error', noop);
    let inflight = 0;
    let wake: (() => void) | null = null;
    const slot = (): void => {
      const w = wake;
      wake = null;
      w?.();
    };
    loops.push(
      (async () => {
        let sent = 0;
        while (!stopping) {
          if (inflight >= WINDOW || model.live.size > MAX_BACKLOG) {
            await new Promise<void>((resolve) => {
              wake = resolve;
              setTimeout(slot, 20);
            });
            continue;
          }
          const id = `r${round}.p${p}.${nextId++}`;
          // Now and then one larger than a read from disk and a good part of a segment.
          const size =
            rnd() < 0.002
              ? 64 * 1024 + Math.floor(rnd() * 128 * 1024)
              : 100 + Math.floor(rnd() * 3000);
          const body = Buffer.alloc(size, id);
          const queue = QUEUES[Math.floor(rnd() * QUEUES.length)]!;
          model.published(id);
          inflight++;
          try {
            ch.publish(EXCHANGE, queue, body, { persistent: true, messageId: id }, (err) => {
              inflight--;
              if (err === null || err === undefined) model.confirmed(id);
              else model.totals.nacked++;
              slot();
            });
          } catch {
            // The broker is gone (killed): this one was never sent.
            return;
          }
          // Let socket I/O (confirms, deliveries) in now and then.
          if (++sent % 16 === 0) await new Promise((r) => setImmediate(r));
        }
      })(),
    );
  }

  return {
    freezeAcks() {
      acksFrozen = true;
      for (const t of timers) clearInterval(t);
    },
    async stop() {
      stopping = true;
      acksFrozen = true;
      for (const t of timers) clearInterval(t);
      await Promise.all(loops);
      await Promise.all(conns.map((c) => c.close().catch(noop)));
    },
  };
}

async function declareTopology(url: string): Promise<void> {
  const conn = await connect(url);
  const ch = await conn.createChannel();
  await ch.assertExchange(EXCHANGE, 'direct', { durable: true });
  for (const q of QUEUES) {
    await ch.assertQueue(q, { durable: true });
    await ch.bindQueue(q, EXCHANGE, q);
  }
  await conn.close();
}

function diskBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += statSync(join(e.parentPath, e.name)).size;
  }
  return n;
}

describe('crash: kill -9 under confirmed publishing and acking', () => {
  it('keeps every confirmed, unacked message exactly once across many kills', async () => {
    const seed = Number(process.env.CRASH_SEED ?? Date.now() % 1_000_000);
    const rnd = prng(seed);
    const model = new Model();
    const started = Date.now();
    // Small segments so files roll and are deleted under load; every other round a tiny memory
    // budget, so messages also go through the on-disk tail.
    const options = (round: number) => ({
      dataDir,
      segmentSize: 256 * 1024,
      ...(round % 2 === 1 ? { memoryBudget: 512 * 1024 } : {}),
    });
    console.log(`crash test: seed ${seed} (replay with CRASH_SEED=${seed})`);

    child = await spawnBroker(options(0));
    await declareTopology(child.url);
    let rounds = 0;
    let totalRepairs = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      if (Date.now() - started > TIME_CAP_MS) break;
      const roundStart = Date.now();
      const load = await startLoad(child.url, model, round, rnd);
      const before = { ...model.totals };
      await new Promise((r) => setTimeout(r, 300 + Math.floor(rnd() * 2200)));
      load.freezeAcks();
      await child.kill();
      await load.stop();
      rounds++;

      child = await spawnBroker(options(round));
      const repairs = child
        .log()
        .split('\n')
        .filter((l) => l.includes('[warn] store:'));
      const { present, dup } = await browseAll(child.url);
      const inFlightBack = model.recovered(round, present, dup);
      console.log(
        `round ${round}: published ${model.totals.published - before.published}, ` +
          `confirmed ${model.totals.confirmed - before.confirmed}, ` +
          `acked ${model.totals.acked - before.acked}; after restart ${present.size} present, ` +
          `${inFlightBack} acked-but-back (redelivered); ${Date.now() - roundStart} ms` +
          (repairs.length > 0 ? `; recovery repaired:\n  ${repairs.join('\n  ')}` : ''),
      );
      totalRepairs += repairs.length;
      expect(model.violations.slice(0, 20)).toEqual([]);
      // An ack in flight is for a delivery the broker still counts as unacked: no more of them
      // than the consumers' prefetch windows hold.
      expect(inFlightBack).toBeLessThanOrEqual(CONSUMERS * QUEUES.length * PREFETCH);
    }

    // Drain everything that is left, acking it, then restart cleanly: the queues are empty and
    // the disk holds next to nothing.
    console.log(`crash test: ${rounds} rounds done after ${Date.now() - started} ms; draining`);
    const conn = await connect(child.url);
    const ch = await conn.createChannel();
    await ch.prefetch(500);
    let left = model.live.size;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`final drain: ${left} left`)), 30_000);
      if (left === 0) resolve();
      for (const q of QUEUES) {
        void ch.consume(q, (m) => {
          if (m === null) return;
          const id = m.properties.messageId as string;
          if (!model.live.delete(id)) model.violations.push(`final drain: unexpected ${id}`);
          ch.ack(m);
          if (--left === 0) {
            clearTimeout(timer);
            resolve();
          }
        });
      }
    });
    for (const q of QUEUES) expect((await ch.checkQueue(q)).messageCount).toBe(0);
    await conn.close();
    await child.stop();
    child = await spawnBroker(options(0));
    const after = await browseAll(child.url);
    expect(after.present.size).toBe(0);
    // Drained queues give their segments back (the last one once it has been empty a moment).
    const queueBytes = await waitFor(() => {
      const n = diskBytes(join(dataDir, 'queues'));
      return n < 4096 ? n + 1 : 0;
    }, 'the drained queues to give back their disk').then((n) => n - 1);
    await child.stop();
    child = null;

    const t = model.totals;
    console.log(
      `crash test: ${rounds} kill -9 rounds in ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
        `${t.published} published, ${t.confirmed} confirmed, ${t.nacked} unconfirmed at a kill, ` +
        `${t.acked} acks sent; ${t.ackedBack} acked messages came back (ack in flight at the ` +
        `kill, all redelivered=true); ${t.unconfirmedKept} unconfirmed publishes were kept; ` +
        `${totalRepairs} torn/damaged records repaired at recovery; ` +
        `queue files after the final drain: ${queueBytes} bytes`,
    );
    expect(model.violations).toEqual([]);
    expect(rounds).toBeGreaterThanOrEqual(1);
    expect(t.confirmed).toBeGreaterThan(0);
    expect(t.acked).toBeGreaterThan(0);
  }, 300_000);
});
