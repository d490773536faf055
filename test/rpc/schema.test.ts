import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import * as v from 'valibot';
import { defineInterface, defineService, s } from '../../src/rpc/index.js';
import type {
  Implementation,
  Issue,
  RemoteProxy,
  ServiceClient,
  StandardSchemaV1,
} from '../../src/rpc/index.js';
import { runSchema } from '../../src/rpc/validate.js';
import type { Calc, Counter, Counters, Shop } from './contracts.js';

function issues(schema: StandardSchemaV1, value: unknown): readonly Issue[] {
  const r = runSchema(schema, value);
  if (r instanceof Promise) throw new Error('async');
  return r.ok ? [] : r.issues;
}

describe('rpc schemas', () => {
  it('own builders implement Standard Schema and name the failing field', () => {
    const Order = s.object({
      id: s.int({ min: 1 }),
      note: s.string().optional(),
      lines: s.array(s.object({ sku: s.string({ pattern: /^[A-Z]+$/ }), qty: s.int() }), {
        min: 1,
      }),
      tags: s.record(s.boolean()),
      at: s.date(),
      blob: s.bytes(),
      kind: s.enum(['a', 'b']),
      pair: s.tuple([s.number(), s.string()]),
      either: s.union(s.literal(1), s.null()),
      total: s.bigint(),
      idx: s.map(s.string(), s.set(s.int())),
    });
    expect(Order['~standard'].version).toBe(1);
    expect(Order['~standard'].vendor).toBe('warren');
    const good = {
      id: 1,
      lines: [{ sku: 'AB', qty: 2 }],
      tags: { x: true },
      at: new Date(0),
      blob: Buffer.from('x'),
      kind: 'a',
      pair: [1, 'one'],
      either: null,
      total: 5n,
      idx: new Map([['k', new Set([1])]]),
    };
    expect(issues(Order, good)).toEqual([]);
    expect(issues(Order, { ...good, id: 0, lines: [{ sku: 'ab', qty: 1.5 }], extra: 1 })).toEqual([
      { path: ['id'], message: 'expected a number >= 1, got 0' },
      { path: ['lines', 0, 'sku'], message: 'expected a string matching /^[A-Z]+$/' },
      { path: ['lines', 0, 'qty'], message: 'expected an integer, got a number (1.5)' },
    ]);
    expect(
      issues(Order, { ...good, kind: 'c', pair: [1], idx: new Map([['k', new Set(['x'])]]) }),
    ).toEqual([
      { path: ['kind'], message: 'expected one of "a" | "b", got a string' },
      { path: ['pair'], message: 'expected 2 items, got 1' },
      { path: ['idx', 0, 0], message: 'expected an integer, got a string' },
    ]);
    const { id: _id, ...missing } = good;
    expect(issues(Order, missing)).toEqual([
      { path: ['id'], message: 'required, expected integer' },
    ]);
    expect(issues(s.object({ a: s.int() }, { strict: true }), { a: 1, b: 2 })).toEqual([
      { path: ['b'], message: 'unexpected key' },
    ]);
    // Unknown keys are dropped (a copy), known values untouched.
    const r = runSchema(s.object({ a: s.int() }), { a: 1, b: 2 });
    expect(r).toEqual({ ok: true, value: { a: 1 } });
    expect(
      issues(
        s.number().refine((n) => n > 0, 'must be positive'),
        -1,
      ),
    ).toEqual([{ path: [], message: 'must be positive' }]);
  });

  it('zod and valibot schemas report their paths through the same interface', () => {
    expect(issues(z.object({ a: z.array(z.number()) }), { a: [1, 'x'] })[0]!.path).toEqual([
      'a',
      1,
    ]);
    expect(issues(v.object({ a: v.array(v.number()) }), { a: [1, 'x'] })[0]!.path).toEqual([
      'a',
      1,
    ]);
  });

  it('rejects contracts that are not well formed', () => {
    expect(() => defineService({ name: 'bad name', version: '1.0.0', methods: {} })).toThrow(
      /service name/,
    );
    expect(() => defineService({ name: 'x', version: '1.0', methods: {} })).toThrow(
      /MAJOR.MINOR.PATCH/,
    );
    expect(() =>
      defineService({
        name: 'x',
        version: '1.0.0',
        methods: { 'not-ok': { args: s.void(), result: s.void() } },
      }),
    ).toThrow(/identifier/);
    expect(() =>
      defineService({
        name: 'x',
        version: '1.0.0',
        methods: { m: { args: {} as never, result: s.void() } },
      }),
    ).toThrow(/Standard Schemas/);
    expect(() => defineInterface({ name: '', methods: {} })).toThrow();
  });

  it('derives typed stubs and implementation signatures from the contract (no code generation)', () => {
    type CalcClient = ServiceClient<typeof Calc>;
    expectTypeOf<Parameters<CalcClient['add']>[0]>().toEqualTypeOf<{ a: number; b: number }>();
    expectTypeOf<ReturnType<CalcClient['add']>>().toEqualTypeOf<Promise<number>>();
    expectTypeOf<ReturnType<CalcClient['log']>>().toEqualTypeOf<Promise<void>>();
    expectTypeOf<ReturnType<CalcClient['ping']>>().toEqualTypeOf<Promise<'pong'>>();
    type ShopImpl = Implementation<typeof Shop>;
    expectTypeOf<Parameters<ShopImpl['order']>[0]['items'][number]>().toEqualTypeOf<{
      sku: string;
      qty: number;
    }>();
    expectTypeOf<Awaited<ReturnType<ServiceClient<typeof Shop>['order']>>>().toEqualTypeOf<{
      total: number;
      at: Date;
    }>();
    type Made = Awaited<ReturnType<ServiceClient<typeof Counters>['create']>>;
    expectTypeOf<Made>().toEqualTypeOf<RemoteProxy<typeof Counter>>();
    expectTypeOf<ReturnType<Made['increment']>>().toEqualTypeOf<Promise<number>>();
    // @ts-expect-error: the wrong argument type is a compile error
    const wrong: Parameters<CalcClient['add']>[0] = { a: 1, b: '2' };
    expect(wrong).toBeDefined();
  });
});
