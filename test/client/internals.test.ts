import { describe, expect, it } from 'vitest';
import { ConfirmTracker, PendingPublish } from '../../src/client/confirm-tracker.js';
import { createDuplexPair } from '../../src/client/duplex-pair.js';
import { Topology } from '../../src/client/topology.js';

function pending(index: number): { p: PendingPublish; outcome: () => string } {
  const p = new PendingPublish(index, 'x', 'k', false, {}, 'b');
  let outcome = 'pending';
  p.resolve = () => (outcome = 'ok');
  p.reject = (e) => (outcome = e.message);
  return { p, outcome: () => outcome };
}

describe('ConfirmTracker', () => {
  it('settles by tag in O(1): single out of order, multiple, nack, unknown tags', () => {
    const t = new ConfirmTracker(() => -1);
    const ps = Array.from({ length: 8 }, (_, i) => pending(i + 1));
    ps.forEach(({ p }, i) => {
      p.seq = i + 1;
      t.add(p);
    });
    expect(t.outstanding).toBe(8);
    expect(t.ack(5, false)).toBe(true);
    expect(t.ack(2, false)).toBe(true);
    expect(t.nack(3, true, () => new Error('nacked'))).toBe(true);
    expect(ps.map((x) => x.outcome())).toEqual([
      'nacked',
      'ok',
      'nacked',
      'pending',
      'ok',
      'pending',
      'pending',
      'pending',
    ]);
    expect(t.oldestIndex).toBe(4);
    expect(t.ack(99, false)).toBe(false);
    expect(t.ack(1, false)).toBe(false);
    expect(t.ack(7, true)).toBe(true);
    expect(t.outstanding).toBe(1);
    const rest = t.takeAll();
    expect(rest.map((p) => p.seq)).toEqual([8]);
    expect(t.isEmpty).toBe(true);
  });

  it('handles a long run without growing: each confirm touches only its own entry', () => {
    const t = new ConfirmTracker(() => -1);
    let settled = 0;
    for (let i = 1; i <= 100_000; i++) {
      const p = new PendingPublish(i, 'x', 'k', false, {}, 'b');
      p.seq = i;
      p.resolve = () => settled++;
      t.add(p);
      if (i % 100 === 0) t.ack(i, true);
    }
    expect(settled).toBe(100_000);
    expect(t.isEmpty).toBe(true);
  });

  it('waiters resolve once everything up to their index settles, reject on a failure', () => {
    let lowest = 1;
    const t = new ConfirmTracker(() => lowest);
    const a = pending(1);
    const b = pending(2);
    a.p.seq = 1;
    b.p.seq = 2;
    t.add(a.p);
    t.add(b.p);
    const results: string[] = [];
    t.addWaiter({
      upTo: 1,
      failure: null,
      resolve: () => results.push('w1 ok'),
      reject: (e) => results.push(`w1 ${e.message}`),
    });
    t.addWaiter({
      upTo: 2,
      failure: null,
      resolve: () => results.push('w2 ok'),
      reject: (e) => results.push(`w2 ${e.message}`),
    });
    lowest = 2;
    t.ack(1, false);
    lowest = -1;
    t.nack(2, false, () => new Error('nacked'));
    expect(results).toEqual(['w1 ok', 'w2 nacked']);
  });
});

describe('in-process duplex pair', () => {
  it('carries bytes both ways with backpressure, and closing one end closes the other', async () => {
    const [a, b] = createDuplexPair();
    const got: Buffer[] = [];
    b.on('data', (c: Buffer) => got.push(c));
    expect(a.write(Buffer.from('hello'))).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(Buffer.concat(got).toString()).toBe('hello');
    // A reader that stops reading makes the writer see backpressure, then drain.
    b.pause();
    const big = Buffer.alloc(64 * 1024);
    let writes = 0;
    while (a.write(big) && writes < 1000) writes++;
    expect(writes).toBeLessThan(1000);
    const drained = new Promise((r) => a.once('drain', r));
    b.resume();
    await drained;
    const closed = new Promise((r) => b.once('close', r));
    a.destroy();
    await closed;
    expect(b.destroyed).toBe(true);
  });
});

describe('Topology records', () => {
  it('forgets bindings with their queue or exchange, and renames server-named queues', () => {
    const t = new Topology();
    t.recordExchange({
      name: 'x',
      type: 'topic',
      durable: false,
      autoDelete: false,
      internal: false,
      arguments: {},
    });
    t.recordExchange({
      name: 'amq.topic',
      type: 'topic',
      durable: true,
      autoDelete: false,
      internal: false,
      arguments: {},
    });
    t.recordQueue({
      name: 'amq.gen-1',
      serverNamed: true,
      durable: false,
      exclusive: true,
      autoDelete: true,
      arguments: {},
    });
    const b = {
      kind: 'queue' as const,
      destination: 'amq.gen-1',
      source: 'x',
      routingKey: 'a.*',
      arguments: { big: 2n ** 60n },
    };
    t.recordBinding(b);
    t.recordBinding({ ...b });
    t.recordBinding({
      kind: 'queue',
      destination: 'amq.gen-1',
      source: '',
      routingKey: 'q',
      arguments: {},
    });
    expect([...t.exchanges.keys()]).toEqual(['x']);
    expect(t.bindings.size).toBe(1);
    t.renameQueue('amq.gen-1', 'amq.gen-2');
    expect([...t.queues.keys()]).toEqual(['amq.gen-2']);
    expect([...t.bindings.values()][0]!.destination).toBe('amq.gen-2');
    t.deleteExchange('x');
    expect(t.bindings.size).toBe(0);
    t.deleteQueue('amq.gen-2');
    expect(t.isEmpty).toBe(true);
  });
});
