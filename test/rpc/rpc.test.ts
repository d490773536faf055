import { expect, it } from 'vitest';
import { describeBrokers, until } from '../client/brokers.js';
import { Reason, RpcError, Status, defineService, s } from '../../src/rpc/index.js';
import type { Implementation } from '../../src/rpc/index.js';
import { calcImpl } from './calc-impl.js';
import type { CalcState } from './calc-impl.js';
import { Calc, Notes, Shop } from './contracts.js';
import { world } from './helpers.js';

/**
 * Typed calls, marshalling, validation, errors, call styles and binding, on every broker: the
 * local RabbitMQ, a standalone Warren and an embedded Warren.
 */
describeBrokers('rpc: calls and binding', (target) => {
  it('calls a typed stub; bytes, Dates, bigints, Maps, Sets and nested objects round-trip exactly', async () => {
    const w = world(target());
    const server = await w.endpoint();
    await server.serve(Calc, calcImpl().impl);
    const calc = await (await w.endpoint()).bind(Calc);
    expect(await calc.add({ a: 2, b: 40 })).toBe(42);
    expect(await calc.ping()).toBe('pong');
    const value = {
      buf: Buffer.from([0, 1, 2, 255]),
      u8: new Uint8Array([9, 8, 7]),
      empty: new Uint8Array(0),
      when: new Date(Date.UTC(2024, 1, 29, 12, 0, 0, 123)),
      invalid: new Date(NaN),
      big: -(2n ** 100n) + 7n,
      nums: [NaN, Infinity, -Infinity, -0, 0, 1.5, Number.MAX_SAFE_INTEGER],
      holes: [1, undefined, 3],
      map: new Map<unknown, unknown>([
        ['k', new Set([1, 'two', new Uint8Array([3])])],
        [7, { nested: [new Date(0)] }],
      ]),
      dollar: { $bin: 'not bytes' },
      dollars: { $a: 1, $b: 2 },
      deep: { a: { b: { c: { d: [[[{ e: 'ok' }]]] } } } },
      text: 'ünïcødé \u0000 "quotes" \\ 😀',
    };
    const back = (await calc.echo(value)) as typeof value;
    expect(back).toStrictEqual(value);
    expect(Buffer.isBuffer(back.buf)).toBe(true);
    expect(Buffer.isBuffer(back.u8)).toBe(false);
    expect(back.u8).toBeInstanceOf(Uint8Array);
    expect(Object.is(back.nums[3], -0)).toBe(true);
    expect(Number.isNaN(back.invalid.getTime())).toBe(true);
  });

  it('validates arguments on the server: the error names the field (own schemas, zod, valibot)', async () => {
    const w = world(target());
    const server = await w.endpoint();
    await server.serve(Calc, calcImpl().impl);
    await server.serve(Shop, {
      order: ({ items }) => ({ total: items.length * 10, at: new Date(5) }),
    });
    await server.serve(Notes, { save: () => ({ id: 1 }) });
    const client = await w.endpoint();
    const calc = await client.bind(Calc);
    const err = await calc.add({ a: 1, b: 'two' as unknown as number }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect(err).toMatchObject({
      status: Status.INVALID_ARGUMENT,
      code: 'WARREN_ERR_RPC_INVALID_ARGUMENT',
      reason: Reason.InvalidArguments,
      executed: 'no',
      issues: [{ path: ['b'], message: 'expected a number, got a string' }],
    });
    expect((err as Error).message).toContain('args.b: expected a number');

    const shop = await client.bind(Shop);
    expect(
      await shop.order({
        customer: { id: 1, email: 'ann@example.com' },
        items: [{ sku: 'x', qty: 2 }],
      }),
    ).toEqual({
      total: 10,
      at: new Date(5),
    });
    const zerr = (await shop
      .order({ customer: { id: 1, email: 'not-an-email' }, items: [{ sku: 'x', qty: 0 }] })
      .catch((e: unknown) => e)) as RpcError;
    expect(zerr.status).toBe(Status.INVALID_ARGUMENT);
    expect(zerr.issues.map((i) => i.path.join('.')).sort()).toEqual([
      'customer.email',
      'items.0.qty',
    ]);
    expect(zerr.message).toContain('args.customer.email');
    expect(zerr.message).toContain('args.items[0].qty');

    const notes = await client.bind(Notes);
    expect(await notes.save({ title: 'abc', body: '' })).toEqual({ id: 1 });
    const verr = (await notes.save({ title: 'ab', body: '' }).catch((e: unknown) => e)) as RpcError;
    expect(verr.status).toBe(Status.INVALID_ARGUMENT);
    expect(verr.issues[0]!.path).toEqual(['title']);
  });

  it('validates results on the client: a server breaking the contract is an INTERNAL error naming the field', async () => {
    const w = world(target());
    const liar = { ...calcImpl().impl, add: () => 'forty-two' } as unknown as Implementation<
      typeof Calc
    >;
    await (await w.endpoint()).serve(Calc, liar);
    const calc = await (await w.endpoint()).bind(Calc);
    await expect(calc.add({ a: 1, b: 2 })).rejects.toMatchObject({
      status: Status.INTERNAL,
      reason: Reason.InvalidResult,
      executed: 'yes',
      message: expect.stringContaining('result: expected a number'),
    });
  });

  it('carries handler errors: status, reason and details of an RpcError; UNKNOWN for others', async () => {
    const w = world(target());
    const { impl } = calcImpl();
    await (
      await w.endpoint()
    ).serve(Calc, {
      ...impl,
      add: () => {
        throw new TypeError('boom');
      },
    });
    const calc = await (await w.endpoint()).bind(Calc);
    await expect(calc.div({ a: 1, b: 0 })).rejects.toMatchObject({
      status: Status.INVALID_ARGUMENT,
      reason: 'DIVIDE_BY_ZERO',
      details: { a: 1, b: 0 },
      message: 'division by zero',
    });
    await expect(calc.add({ a: 1, b: 0 })).rejects.toMatchObject({
      status: Status.UNKNOWN,
      reason: Reason.HandlerFailed,
      executed: 'yes',
      message: 'TypeError: boom',
    });
  });

  it('answers UNIMPLEMENTED for a method the server does not have (a newer client contract)', async () => {
    const w = world(target());
    await (await w.endpoint()).serve(Calc, calcImpl().impl);
    const Newer = defineService({
      name: 'calc',
      version: '1.3.0',
      methods: {
        ...Calc.methods,
        mul: { args: s.tuple([s.number(), s.number()]), result: s.number() },
      },
    });
    const calc = await (await w.endpoint()).bind(Newer, { version: '^1.0.0' });
    expect(await calc.add({ a: 1, b: 1 })).toBe(2);
    await expect(calc.mul([2, 3])).rejects.toMatchObject({
      status: Status.UNIMPLEMENTED,
      reason: Reason.UnknownMethod,
      executed: 'no',
    });
  });

  it('one-way calls resolve when the broker has the request; the server runs them', async () => {
    const w = world(target());
    const { impl, state } = calcImpl();
    await (await w.endpoint()).serve(Calc, impl);
    const calc = await (await w.endpoint()).bind(Calc);
    await calc.log('first');
    await calc.add.send({ a: 1, b: 2 });
    await calc.log.send('second');
    await until(() => state.logs.length === 2, 'both one-way calls to run');
    expect(state.logs).toEqual(['first', 'second']);
  });

  it('deferred synchronous calls return at once and deliver the result later', async () => {
    const w = world(target());
    const { impl, state } = calcImpl();
    await (await w.endpoint()).serve(Calc, impl);
    const calc = await (await w.endpoint()).bind(Calc);
    const d = calc.slow.defer({ key: 'd1' });
    const seen: unknown[] = [];
    d.onSettled((err, result) => seen.push(err ?? result));
    expect(d.state).toBe('pending');
    await until(() => state.started.has('d1'), 'the handler to start');
    expect(d.settled).toBe(false);
    state.release('d1');
    expect(await d).toBe('done d1');
    await until(() => seen.length === 1, 'the callback');
    expect(seen).toEqual(['done d1']);
    expect(d.state).toBe('fulfilled');
  });

  it('long-running jobs: start returns a job to poll; result() polls until it is done', async () => {
    const w = world(target());
    const { impl, state } = calcImpl();
    const server = await (await w.endpoint()).serve(Calc, impl);
    const calc = await (await w.endpoint()).bind(Calc);
    const job = await calc.slow.start({ key: 'j1' });
    expect(job.instance).toBe(server.instanceId);
    expect(await job.poll()).toEqual({ state: 'running' });
    await until(() => state.started.has('j1'), 'the job to start');
    state.release('j1');
    expect(await job.result({ interval: 5 })).toBe('done j1');
    expect(await job.poll()).toEqual({ state: 'done', result: 'done j1' });

    const failing = await calc.div.start({ a: 1, b: 0 });
    const st = await until(
      async () => (await failing.poll()).state !== 'running',
      'the failing job',
    ).then(() => failing.poll());
    expect(st).toMatchObject({ state: 'failed', error: { status: Status.INVALID_ARGUMENT } });

    const cancelled = await calc.slow.start({ key: 'j2' });
    await until(() => state.started.has('j2'), 'the second job to start');
    await cancelled.cancel();
    await until(() => state.cancelled.has('j2'), 'the job handler to see the cancellation');
    await expect(cancelled.result({ interval: 5 })).rejects.toMatchObject({
      status: Status.CANCELLED,
    });
  });

  it('client cannot locate server: a clear UNAVAILABLE error when no compatible server runs', async () => {
    const w = world(target());
    const client = await w.endpoint({ locateTimeout: 300 });
    await expect(client.bind(Calc)).rejects.toMatchObject({
      status: Status.UNAVAILABLE,
      reason: Reason.CannotLocateServer,
      message: expect.stringContaining(
        "client cannot locate server: no live instance of service 'calc'",
      ),
    });
    await (await w.endpoint()).serve(Calc, calcImpl().impl);
    const err = (await client
      .bind(Calc, { version: '^2.0.0' })
      .catch((e: unknown) => e)) as RpcError;
    expect(err.reason).toBe(Reason.CannotLocateServer);
    expect(err.message).toContain("'^2.0.0' (running: 1.2.0 on 1 instance)");
    expect(await (await client.bind(Calc)).add({ a: 1, b: 2 })).toBe(3);
  });

  it('binds to the highest running version in the range', async () => {
    const w = world(target());
    const versions = ['1.2.0', '1.5.1', '2.0.0'];
    const servers = new Map<string, string>();
    for (const version of versions) {
      const C = defineService({ ...Calc, version, methods: Calc.methods });
      const srv = await (
        await w.endpoint()
      ).serve(C, calcImpl().impl, { instanceId: `calc-${version}` });
      servers.set(srv.instanceId, version);
    }
    const client = await w.endpoint();
    const servedBy = async (range: string): Promise<string> => {
      const calc = await client.bind(Calc, { version: range });
      const job = await calc.add.start({ a: 1, b: 1 });
      return servers.get(job.instance)!;
    };
    await until(
      async () => (await client.bind(Calc, { version: '*' })).$.instances().length === 3,
      'all three servers',
    );
    expect(await servedBy('^1.0.0')).toBe('1.5.1');
    expect(await servedBy('~1.2.0')).toBe('1.2.0');
    expect(await servedBy('>=1.0.0 <3.0.0')).toBe('2.0.0');
    expect(await servedBy('1.2.0 || 1.5.1')).toBe('1.5.1');
    await expect(
      client.bind(Calc, { version: '^3.0.0', locateTimeout: 100 }),
    ).rejects.toMatchObject({
      reason: Reason.CannotLocateServer,
    });
  });

  it('spreads load: competing consumers for at-least-once, round-robin instances for at-most-once', async () => {
    const w = world(target());
    const states: CalcState[] = [];
    for (let i = 0; i < 3; i++) {
      const { impl, state } = calcImpl();
      states.push(state);
      await (await w.endpoint()).serve(Calc, impl, { instanceId: `spread-${i}` });
    }
    const calc = await (await w.endpoint()).bind(Calc);
    await until(() => calc.$.instances().length === 3, 'three instances');
    // Held calls: each server keeps what it got, so the split is what the broker dispatched.
    const calls = Array.from({ length: 30 }, (_, i) => calc.slow({ key: `s${i}` }));
    const served = () => states.reduce((n, st) => n + st.started.size, 0);
    await until(() => served() === 30, 'all 30 calls to reach a server');
    for (const st of states) expect(st.started.size).toBeGreaterThan(0);
    for (const st of states) for (const k of st.started.keys()) st.release(k);
    await Promise.all(calls);

    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        calc.bump({ key: `b${i}` }, { semantics: 'at-most-once' }),
      ),
    );
    const counts = states.map((st) => st.executions.size);
    expect(counts).toEqual([10, 10, 10]);
  });

  it('re-binds when the instance it used disappears (withdrawn, or its lease runs out)', async () => {
    const w = world(target());
    const a = calcImpl();
    const b = calcImpl();
    const epA = await w.endpoint({ reconnect: false });
    const srvA = await epA.serve(Calc, a.impl, { instanceId: 'gone-a', lease: 600 });
    const epC = await w.endpoint({ reconnect: false });
    const srvC = await epC.serve(Calc, calcImpl().impl, { instanceId: 'gone-c', lease: 600 });
    await (await w.endpoint()).serve(Calc, b.impl, { instanceId: 'stays-b', lease: 600 });
    const calc = await (await w.endpoint()).bind(Calc);
    await until(() => calc.$.instances().length === 3, 'three instances');

    await srvA.close(); // withdraws at once
    await until(() => calc.$.instances().length === 2, 'the withdrawn instance to be dropped');
    expect(calc.$.instances().map((i) => i.instance)).not.toContain(srvA.instanceId);

    await epC.connection.close(); // a crash: no withdrawal, the lease runs out
    await until(() => calc.$.instances().length === 1, "the crashed instance's lease to run out");
    expect(calc.$.instances()[0]!.instance).toBe('stays-b');
    for (let i = 0; i < 6; i++) await calc.bump({ key: `r${i}` }, { semantics: 'at-most-once' });
    expect(b.state.executions.size).toBe(6);
    expect(srvC.stats.executed).toBe(0);
  });
});
