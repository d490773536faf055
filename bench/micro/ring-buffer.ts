import { Deque } from '../../src/util/deque.js';
import { consume } from './harness.js';
import type { MicroCase } from './harness.js';

const N = 1000;

/**
 * The queue's ready list is a ring buffer (Deque): push at the tail, shift at the head. Compared
 * with Array push/shift, whose shift is O(n) once the array leaves V8's fast path.
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
