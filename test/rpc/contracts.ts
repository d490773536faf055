import { z } from 'zod';
import * as v from 'valibot';
import { defineInterface, defineService, s } from '../../src/rpc/index.js';

/** Contracts the RPC tests share. */
export const Calc = defineService({
  name: 'calc',
  version: '1.2.0',
  methods: {
    add: { args: s.object({ a: s.number(), b: s.number() }), result: s.number() },
    div: { args: s.object({ a: s.number(), b: s.number() }), result: s.number() },
    /** Echoes any value: for round-trip tests. */
    echo: { args: s.unknown(), result: s.unknown() },
    /** Waits until the test lets it go, or until its call is cancelled. */
    slow: { args: s.object({ key: s.string() }), result: s.string() },
    /** Returns how many times the server has executed `bump` so far. */
    bump: { args: s.object({ key: s.string() }), result: s.int() },
    log: { args: s.string(), result: s.void(), oneWay: true },
    ping: { args: s.void(), result: s.literal('pong') },
  },
});

/** The same service validated with zod. */
export const Shop = defineService({
  name: 'shop',
  version: '2.0.0',
  methods: {
    order: {
      args: z.object({
        customer: z.object({ id: z.number().int(), email: z.string().email() }),
        items: z.array(z.object({ sku: z.string(), qty: z.number().int().positive() })).min(1),
      }),
      result: z.object({ total: z.number(), at: z.date() }),
    },
  },
});

/** And with valibot. */
export const Notes = defineService({
  name: 'notes',
  version: '1.0.0',
  methods: {
    save: {
      args: v.object({ title: v.pipe(v.string(), v.minLength(3)), body: v.string() }),
      result: v.object({ id: v.number() }),
    },
  },
});

export const Counter = defineInterface({
  name: 'Counter',
  methods: {
    increment: { args: s.int(), result: s.int() },
    value: { args: s.void(), result: s.int() },
  },
});

export const Counters = defineService({
  name: 'counters',
  version: '1.0.0',
  methods: {
    create: { args: s.object({ start: s.int() }), result: s.ref(Counter) },
    /** Takes a counter by reference and reads it (through the proxy). */
    read: { args: s.object({ counter: s.ref(Counter) }), result: s.int() },
    /** Takes an object the caller exports and calls back into it. */
    callback: { args: s.object({ counter: s.ref(Counter), by: s.int() }), result: s.int() },
  },
});
