import { MemoryBudget } from '../../src/broker/memory-budget.js';
import type { QueueEntry } from '../../src/broker/queue-entry.js';
import { ReadyList } from '../../src/broker/ready-list.js';
import { Deque } from '../../src/util/deque.js';
import { consume } from './harness.js';
import type { MicroCase } from './harness.js';

const N = 1000;

/**
 * The queue's ready list (ReadyList: a ring buffer, Deque, with memory accounting): push at the
 * tail, shift at the head. Compared with Array push/shift, whose shift is O(n) once the array
 * leaves V8's fast path.
 */
export function ringBufferCases(): MicroCase[] {
  const cases: MicroCase[] = [];
  for (const depth of [0, 100_000]) {
    const d = new Deque<{ seq: number }>();
    const a: { seq: number }[] = [];
    for (let i = 0; i < depth; i++) {
      d.push({ seq: i });
      a.push({ seq: i });
    }
    const items = Array.from({ length: N }, (_, i) => ({ seq: i }));
    // The ready list of an in-memory queue (no store), as the broker's queues use it; the entries
    // carry only what the list reads of them.
    const entry = (seq: number): QueueEntry =>
      ({ seq, message: { bodySize: 16, memorySize: 64 } }) as unknown as QueueEntry;
    const ready = new ReadyList(null, new MemoryBudget(Number.MAX_SAFE_INTEGER), () => null);
    for (let i = 0; i < depth; i++) ready.push(entry(i));
    const entries = Array.from({ length: N }, (_, i) => entry(i));
    // Three loops written out, not one shared helper: a shared loop's push/shift call sites
    // would see all three types and turn polymorphic, and time that instead.
    cases.push({
      name: `ReadyList push+shift at depth ${depth.toLocaleString('en-US')}`,
      ops: N,
      run: () => {
        for (let i = 0; i < N; i++) {
          ready.push(entries[i]!);
          consume(ready.shift()!.seq);
        }
      },
    });
    cases.push({
      name: `Deque push+shift at depth ${depth.toLocaleString('en-US')}`,
      ops: N,
      run: () => {
        for (let i = 0; i < N; i++) {
          d.push(items[i]!);
          consume(d.shift()!.seq);
        }
      },
    });
    cases.push({
      name: `Array push+shift at depth ${depth.toLocaleString('en-US')}`,
      ops: N,
      run: () => {
        for (let i = 0; i < N; i++) {
          a.push(items[i]!);
          consume(a.shift()!.seq);
        }
      },
    });
  }
  return cases;
}
