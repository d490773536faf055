import { describe, expect, it } from 'vitest';
import { Deque } from '../../src/util/deque.js';

describe('Deque', () => {
  it('behaves like an array under random operations, across growth and wrap-around', () => {
    const d = new Deque<number>();
    const ref: number[] = [];
    let seed = 42;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let i = 0; i < 20000; i++) {
      const op = rand(7);
      if (op < 2) {
        d.push(i);
        ref.push(i);
      } else if (op === 2) {
        d.unshift(i);
        ref.unshift(i);
      } else if (op === 3) {
        expect(d.shift()).toBe(ref.shift());
      } else if (op === 4) {
        expect(d.pop()).toBe(ref.pop());
      } else if (op === 5 && ref.length > 0) {
        const at = rand(ref.length + 1);
        d.insert(at, -i);
        ref.splice(at, 0, -i);
      } else if (ref.length > 0) {
        const at = rand(ref.length);
        expect(d.removeAt(at)).toBe(ref.splice(at, 1)[0]);
      }
      expect(d.length).toBe(ref.length);
    }
    expect(d.toArray()).toEqual(ref);
    expect([...d]).toEqual(ref);
  });
});
