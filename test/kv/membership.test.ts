/**
 * Gossip membership and the round-robin ring in isolation, with a fake clock.
 */
import { describe, expect, it } from 'vitest';
import { MemberState, Membership } from '../../src/kv/membership.js';
import { WorkerRing } from '../../src/kv/worker-ring.js';

function cluster(n: number, clock: { now: number }) {
  return Array.from(
    { length: n },
    (_, i) =>
      new Membership(
        { id: `w${i}`, role: 'worker', inbox: `q${i}`, state: MemberState.Ready },
        { failTimeout: 3000, cleanupTimeout: 10_000, now: () => clock.now },
      ),
  );
}

/** One gossip round: everyone ticks and sends its table to `fanout` random live members. */
function round(
  nodes: Membership[],
  clock: { now: number },
  fanout = 2,
  skip = new Set<number>(),
): void {
  clock.now += 500;
  const byId = new Map(nodes.map((m) => [m.self.id, m]));
  for (const [i, m] of nodes.entries()) {
    if (skip.has(i)) continue;
    m.tick();
    const table = m.table();
    for (const t of m.pick(fanout)) {
      const peer = byId.get(t.id)!;
      if (!skip.has(nodes.indexOf(peer))) peer.merge(JSON.parse(JSON.stringify(table)));
    }
  }
}

describe('gossip membership', () => {
  it('spreads a join to everyone in a few rounds without any central list', () => {
    const clock = { now: 0 };
    const nodes = cluster(20, clock);
    // Only a chain of first-hand introductions: each knows the next.
    for (let i = 0; i < 19; i++) {
      nodes[i]!.learn({
        id: `w${i + 1}`,
        role: 'worker',
        inbox: `q${i + 1}`,
        hb: 1,
        state: 'ready',
      });
    }
    let rounds = 0;
    while (nodes.some((n) => n.size < 20) && rounds < 40) {
      round(nodes, clock);
      rounds++;
    }
    expect(nodes.every((n) => n.size === 20)).toBe(true);
    expect(rounds).toBeLessThan(40);
  });

  it('takes a silent member for failed, forgets it, and ignores stale news of it', () => {
    const clock = { now: 0 };
    const nodes = cluster(5, clock);
    for (const a of nodes) for (const b of nodes) if (a !== b) a.learn(b.self);
    const events: string[] = [];
    nodes[0]!.on('change', (m, what) => events.push(`${m.id}:${what}`));
    const stale = nodes[1]!.table();
    // Member 4 stops (a crash, or SIGSTOP).
    for (let r = 0; r < 8; r++) round(nodes, clock, 2, new Set([4]));
    expect(nodes[0]!.get('w4')!.failed).toBe(true);
    expect(events).toContain('w4:failed');
    for (let r = 0; r < 20; r++) round(nodes, clock, 2, new Set([4]));
    expect(nodes[0]!.get('w4')).toBeUndefined();
    expect(events).toContain('w4:removed');
    // Old gossip that still lists it does not bring it back...
    nodes[0]!.merge(stale);
    expect(nodes[0]!.get('w4')).toBeUndefined();
    // ...but the member itself, alive again with a higher heartbeat, is taken back.
    nodes[4]!.tick();
    nodes[4]!.tick();
    nodes[0]!.merge(nodes[4]!.table());
    expect(nodes[0]!.get('w4')?.alive).toBe(true);
  });

  it('a member restarted under the same id with a clock-based incarnation is news again', () => {
    const clock = { now: 0 };
    const opts = { failTimeout: 3000, cleanupTimeout: 10_000, now: () => clock.now };
    const worker = new Membership(
      { id: 'w', role: 'worker', inbox: 'qw', state: MemberState.Ready },
      opts,
    );
    const first = new Membership(
      { id: 'lb', role: 'lb', inbox: 'qlb', state: MemberState.Ready },
      { ...opts, incarnation: 1000 },
    );
    for (let i = 0; i < 50; i++) first.tick();
    worker.merge(first.table());
    worker.drop('lb');
    // A restart that started from 1 again would be taken for stale news of the dropped one.
    const restarted = new Membership(
      { id: 'lb', role: 'lb', inbox: 'qlb', state: MemberState.Ready },
      { ...opts, incarnation: 2000 },
    );
    worker.merge(restarted.table());
    expect(worker.get('lb')?.alive).toBe(true);
    expect(worker.get('lb')?.hb).toBe(2000);
  });

  it('spreads state changes and departures; ignores malformed tables', () => {
    const clock = { now: 0 };
    const nodes = cluster(6, clock);
    for (const a of nodes) for (const b of nodes) if (a !== b) a.learn(b.self);
    nodes[2]!.setState(MemberState.NotReady);
    nodes[3]!.setState(MemberState.Left);
    for (let r = 0; r < 10; r++) round(nodes, clock);
    for (const n of nodes) {
      // The departed one hears no more gossip: nobody sends to a member that left.
      if (n !== nodes[2] && n !== nodes[3]) expect(n.get('w2')!.state).toBe('not-ready');
      if (n !== nodes[3]) expect(n.get('w3')?.state ?? 'left').toBe('left');
    }
    expect(nodes[0]!.merge({ v: 2, m: [] })).toBe(false);
    expect(
      nodes[0]!.merge({ v: 1, from: 'x', m: [['bad'], ['x', 'worker', 'q', 'NaN', 'ready']] }),
    ).toBe(true);
    expect(nodes[0]!.get('x')).toBeUndefined();
  });

  it('a process that was stopped pardons the silence it caused', () => {
    const clock = { now: 0 };
    const [a, b] = cluster(2, clock);
    a!.learn(b!.self);
    clock.now += 10_000;
    a!.pardon();
    a!.tick();
    expect(a!.get('w1')!.failed).toBe(false);
  });
});

describe('WorkerRing', () => {
  it('hands out workers in turn, adds at the end of the round, removes in O(1)', () => {
    const r = new WorkerRing<string>();
    expect(r.next()).toBeUndefined();
    r.add('a', 'a');
    r.add('b', 'b');
    r.add('c', 'c');
    const seq = Array.from({ length: 6 }, () => r.next());
    expect(seq).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
    r.remove('b');
    expect([r.next(), r.next(), r.next()]).toEqual(['a', 'c', 'a']);
    r.add('d', 'd');
    // d joins behind the pointer: last in the round under way.
    expect([r.next(), r.next(), r.next()]).toEqual(['c', 'a', 'd']);
    expect(r.next((x) => x === 'c')).toBe('a');
    expect(r.next((x) => x !== 'nothing')).toBeUndefined();
    r.remove('a');
    r.remove('c');
    r.remove('d');
    expect(r.size).toBe(0);
    expect(r.next()).toBeUndefined();
  });
});
