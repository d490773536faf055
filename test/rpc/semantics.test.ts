import { expect, it } from 'vitest';
import { describeBrokers, until } from '../client/brokers.js';
import { TcpProxy } from '../client/tcp-proxy.js';
import { connect } from '../../src/client/index.js';
import { Reason, RpcError, Status, defineService, rpcEndpoint, s } from '../../src/rpc/index.js';
import type { CallContext, RpcEndpoint } from '../../src/rpc/index.js';
import { H } from '../../src/rpc/wire.js';
import { calcImpl } from './calc-impl.js';
import { Calc } from './contracts.js';
import { world } from './helpers.js';

/** A server fault: drop the first reply of every call (the reply is lost on its way back). */
function dropFirstReply(): { dropReply(info: { callId: string }): boolean; dropped: number } {
  const seen = new Set<string>();
  const f = {
    dropped: 0,
    dropReply(info: { callId: string }): boolean {
      if (seen.has(info.callId)) return false;
      seen.add(info.callId);
      f.dropped++;
      return true;
    },
  };
  return f;
}

const Flaky = defineService({
  name: 'flaky',
  version: '1.0.0',
  methods: { work: { args: s.object({ key: s.string() }), result: s.int() } },
});

const Front = defineService({
  name: 'front',
  version: '1.0.0',
  methods: { relay: { args: s.object({ key: s.string() }), result: s.string() } },
});

/**
 * Call semantics proved by injecting the faults they exist for, on every broker.
 */
describeBrokers('rpc: call semantics under faults', (target) => {
  it('a lost reply: at-most-once executes once and answers the retry from its table', async () => {
    const w = world(target());
    const { impl, state } = calcImpl();
    const faults = dropFirstReply();
    const server = await (await w.endpoint()).serve(Calc, impl, { faults });
    const calc = await (await w.endpoint()).bind(Calc);
    const n = await calc.bump(
      { key: 'k' },
      { semantics: 'at-most-once', retry: { attemptTimeout: 150 } },
    );
    expect(faults.dropped).toBe(1);
    expect(n).toBe(1);
    expect(state.executions.get('k')).toBe(1);
    expect(server.stats.duplicates).toBeGreaterThanOrEqual(1);
  });

  it('a lost reply: at-least-once executes again', async () => {
    const w = world(target());
    const { impl, state } = calcImpl();
    const faults = dropFirstReply();
    await (await w.endpoint()).serve(Calc, impl, { faults });
    const calc = await (await w.endpoint()).bind(Calc);
    const n = await calc.bump(
      { key: 'k' },
      { semantics: 'at-least-once', retry: { attemptTimeout: 150 } },
    );
    expect(faults.dropped).toBe(1);
    expect(n).toBe(2);
    expect(state.executions.get('k')).toBe(2);
  });

  it('a lost reply seen by the client (client-side drop) is retried the same way', async () => {
    const w = world(target());
    const { impl, state } = calcImpl();
    await (await w.endpoint()).serve(Calc, impl);
    const seen = new Set<string>();
    const client = await w.endpoint({
      faults: { dropReply: ({ callId }) => !seen.has(callId) && seen.add(callId).size > 0 },
    });
    const calc = await client.bind(Calc);
    expect(
      await calc.bump({ key: 'm' }, { semantics: 'at-most-once', retry: { attemptTimeout: 150 } }),
    ).toBe(1);
    expect(await calc.bump({ key: 'l' }, { retry: { attemptTimeout: 150 } })).toBe(2);
    expect(state.executions).toEqual(
      new Map([
        ['m', 1],
        ['l', 2],
      ]),
    );
  });

  it('a client crash and restart: the new incarnation is not mistaken for the old one', async () => {
    const w = world(target());
    const { impl, state } = calcImpl();
    const server = await (await w.endpoint()).serve(Calc, impl);
    const amo = { semantics: 'at-most-once' } as const;
    const before = await w.endpoint({ clientId: 'worker-7', reconnect: false });
    const calc1 = await before.bind(Calc);
    expect(await calc1.bump({ key: 'c' }, amo)).toBe(1);
    expect(await calc1.bump({ key: 'c' }, amo)).toBe(2);
    await before.connection.close(); // the crash: no goodbye, its sequence numbers start again

    const after = await w.endpoint({ clientId: 'worker-7' });
    expect(after.conversation > before.conversation).toBe(true);
    const calc2 = await after.bind(Calc);
    // Sequence number 1 again, but of a newer conversation: executed, not answered from the table.
    expect(await calc2.bump({ key: 'c' }, amo)).toBe(3);
    expect(await calc2.bump({ key: 'c' }, amo)).toBe(4);
    expect(state.executions.get('c')).toBe(4);

    // A straggler from the dead incarnation is refused, not executed.
    const raw = await (await target().connect()).rpcClient();
    const reply = await raw.call(server.instanceQueue, JSON.stringify({ key: 'c' }), {
      timeout: 10_000,
      properties: {
        headers: {
          [H.version]: 1,
          [H.service]: 'calc',
          [H.method]: 'bump',
          [H.client]: 'worker-7',
          [H.conversation]: before.conversation,
          [H.seq]: 3,
          [H.floor]: 2,
          [H.epoch]: server.epoch,
        },
      },
    });
    expect(reply.properties.headers?.[H.status]).toBe(Status.ABORTED);
    expect(reply.json()).toMatchObject({ reason: Reason.StaleConversation, executed: 'no' });
    expect(state.executions.get('c')).toBe(4);
  });

  it('a server crash and restart: an old-epoch retry fails with a rebind error, then the client rebinds', async () => {
    const w = world(target());
    const first = calcImpl();
    const epA = await w.endpoint({ reconnect: false });
    const faults = dropFirstReply();
    const a = await epA.serve(Calc, first.impl, { instanceId: 'phoenix', faults });
    const calc = await (await w.endpoint()).bind(Calc);
    const call = calc
      .bump({ key: 'x' }, { semantics: 'at-most-once', retry: { attemptTimeout: 1000 } })
      .catch((e: unknown) => e);
    await until(
      () => first.state.executions.get('x') === 1,
      'the first incarnation to execute the call',
    );
    await epA.connection.close(); // the crash, after executing and before the reply arrived

    const second = calcImpl();
    const b = await (await w.endpoint()).serve(Calc, second.impl, { instanceId: 'phoenix' });
    expect(b.epoch).not.toBe(a.epoch);
    const err = (await call) as RpcError;
    expect(err).toBeInstanceOf(RpcError);
    expect(err).toMatchObject({
      status: Status.ABORTED,
      reason: Reason.StaleEpoch,
      rebind: true,
      executed: 'unknown',
    });
    expect(second.state.executions.get('x')).toBeUndefined();
    expect(b.stats.refused).toBeGreaterThanOrEqual(1);

    await until(
      () => calc.$.instances().some((i) => i.epoch === b.epoch),
      'the client to learn the new epoch',
    );
    expect(await calc.bump({ key: 'x' }, { semantics: 'at-most-once' })).toBe(1);
    expect(second.state.executions.get('x')).toBe(1);
    expect(first.state.executions.get('x')).toBe(1);
  });

  it('an at-most-once call whose instance dies without a trace fails as INSTANCE_GONE (outcome unknown)', async () => {
    const w = world(target());
    const { impl, state } = calcImpl();
    const ep = await w.endpoint({ reconnect: false });
    await ep.serve(Calc, impl, { instanceId: 'vanishes', lease: 500 });
    const calc = await (await w.endpoint()).bind(Calc);
    const call = calc
      .slow({ key: 'v' }, { semantics: 'at-most-once', timeout: 20_000 })
      .catch((e: unknown) => e);
    await until(() => state.started.has('v'), 'the call to start');
    await ep.connection.close();
    expect(await call).toMatchObject({
      status: Status.UNAVAILABLE,
      reason: Reason.InstanceGone,
      executed: 'unknown',
      rebind: true,
    });
  });

  it('a deadline that passes mid-call fails the call and cancels the handler', async () => {
    const w = world(target());
    const { impl, state } = calcImpl();
    await (await w.endpoint()).serve(Calc, impl);
    const calc = await (await w.endpoint()).bind(Calc);
    for (const semantics of ['at-least-once', 'at-most-once'] as const) {
      const key = `dl-${semantics}`;
      const err = await calc.slow({ key }, { timeout: 300, semantics }).catch((e: unknown) => e);
      expect(err).toMatchObject({ status: Status.DEADLINE_EXCEEDED, executed: 'unknown' });
      await until(() => state.cancelled.has(key), 'the handler to see its deadline pass');
      expect(state.cancelled.get(key)).toMatchObject({ status: Status.DEADLINE_EXCEEDED });
      const ctx = state.started.get(key)!;
      expect(ctx.remaining()).toBeLessThan(5);
    }
  });

  it("cancellation (AbortSignal) reaches the server handler, through the shared queue or the instance's", async () => {
    const w = world(target());
    const a = calcImpl();
    const b = calcImpl();
    await (await w.endpoint()).serve(Calc, a.impl);
    await (await w.endpoint()).serve(Calc, b.impl);
    const calc = await (await w.endpoint()).bind(Calc);
    await until(() => calc.$.instances().length === 2, 'both instances');
    const started = (key: string) => a.state.started.has(key) || b.state.started.has(key);
    const cancelledWith = (key: string) => a.state.cancelled.get(key) ?? b.state.cancelled.get(key);
    for (const semantics of ['at-least-once', 'at-most-once'] as const) {
      // Several calls, so that both instances get some (the cancel must find the right one).
      for (let i = 0; i < 4; i++) {
        const key = `c-${semantics}-${i}`;
        const ac = new AbortController();
        const call = calc.slow({ key }, { signal: ac.signal, semantics }).catch((e: unknown) => e);
        await until(() => started(key), `${key} to start`);
        ac.abort(new Error('the user gave up'));
        expect(await call).toMatchObject({ status: Status.CANCELLED, executed: 'unknown' });
        await until(() => cancelledWith(key) !== undefined, 'the handler to see the cancellation');
        expect(cancelledWith(key)).toMatchObject({ status: Status.CANCELLED });
      }
    }
    expect(a.state.cancelled.size).toBeGreaterThan(0);
    expect(b.state.cancelled.size).toBeGreaterThan(0);
    // Deferred calls cancel the same way.
    const d = calc.slow.defer({ key: 'deferred' });
    await until(() => started('deferred'), 'the deferred call to start');
    d.cancel();
    await expect(d.promise).rejects.toMatchObject({ status: Status.CANCELLED });
    await until(() => cancelledWith('deferred') !== undefined, 'the deferred handler to see it');
  });

  it('propagates deadlines and cancellation to nested calls made inside a handler', async () => {
    const w = world(target());
    const { impl, state } = calcImpl();
    await (await w.endpoint()).serve(Calc, impl);
    const middle = await w.endpoint();
    const calc = await middle.bind(Calc);
    let outer: CallContext | undefined;
    await middle.serve(Front, {
      async relay({ key }, ctx) {
        outer = ctx;
        // No timeout or signal given: both come from the call being served.
        return calc.slow({ key });
      },
    });
    const front = await (await w.endpoint()).bind(Front);
    const err = await front.relay({ key: 'nested' }, { timeout: 600 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: Status.DEADLINE_EXCEEDED });
    await until(() => state.cancelled.has('nested'), 'the nested handler to be cancelled');
    const inner = state.started.get('nested')!;
    expect(outer).toBeDefined();
    // The nested call got no more time than its caller had left (default would be 30 s).
    const innerTimeout = Number(inner.headers[H.timeout]);
    expect(innerTimeout).toBeGreaterThan(0);
    expect(innerTimeout).toBeLessThanOrEqual(600);

    // Cancelling the outer call cancels the nested one.
    const ac = new AbortController();
    const call = front
      .relay({ key: 'nested-2' }, { signal: ac.signal, timeout: 20_000 })
      .catch((e: unknown) => e);
    await until(() => state.started.has('nested-2'), 'the nested call to start');
    ac.abort();
    expect(await call).toMatchObject({ status: Status.CANCELLED });
    await until(
      () => state.cancelled.has('nested-2'),
      'the nested handler to see the cancellation',
    );
    expect(state.cancelled.get('nested-2')).toMatchObject({ status: Status.CANCELLED });
  });

  it('retries retryable statuses with backoff up to maxAttempts', async () => {
    const w = world(target());
    const attempts = new Map<string, number>();
    let failures = 2;
    await (
      await w.endpoint()
    ).serve(Flaky, {
      work({ key }) {
        const n = (attempts.get(key) ?? 0) + 1;
        attempts.set(key, n);
        if (n <= failures) throw new RpcError(Status.UNAVAILABLE, 'try again', { executed: 'no' });
        return n;
      },
    });
    const flaky = await (await w.endpoint()).bind(Flaky);
    const fast = { initialBackoff: 1, maxBackoff: 5 };
    expect(await flaky.work({ key: 'a' }, { retry: { ...fast, maxAttempts: 5 } })).toBe(3);
    expect(
      await flaky.work(
        { key: 'b' },
        { semantics: 'at-most-once', retry: { ...fast, maxAttempts: 3 } },
      ),
    ).toBe(3);
    await expect(
      flaky.work({ key: 'c' }, { retry: { ...fast, maxAttempts: 2 } }),
    ).rejects.toMatchObject({
      status: Status.UNAVAILABLE,
    });
    expect(attempts.get('c')).toBe(2);
    await expect(flaky.work({ key: 'd' }, { retry: false })).rejects.toMatchObject({
      status: Status.UNAVAILABLE,
    });
    expect(attempts.get('d')).toBe(1);
    // A status outside the policy is not retried.
    failures = 100;
    await expect(
      flaky.work(
        { key: 'e' },
        { retry: { ...fast, maxAttempts: 5, retryableStatuses: [Status.ABORTED] } },
      ),
    ).rejects.toMatchObject({ status: Status.UNAVAILABLE });
    expect(attempts.get('e')).toBe(1);
  });

  it('does not retry an at-most-once call after an error that may have followed execution', async () => {
    const w = world(target());
    const attempts = new Map<string, number>();
    await (
      await w.endpoint()
    ).serve(Flaky, {
      work({ key }) {
        attempts.set(key, (attempts.get(key) ?? 0) + 1);
        throw new RpcError(Status.UNAVAILABLE, 'half done', { executed: 'unknown' });
      },
    });
    const flaky = await (await w.endpoint()).bind(Flaky);
    const retry = { initialBackoff: 1, maxBackoff: 2, maxAttempts: 4 };
    await expect(
      flaky.work({ key: 'amo' }, { semantics: 'at-most-once', retry }),
    ).rejects.toMatchObject({
      status: Status.UNAVAILABLE,
    });
    expect(attempts.get('amo')).toBe(1);
    await expect(flaky.work({ key: 'alo' }, { retry })).rejects.toMatchObject({
      status: Status.UNAVAILABLE,
    });
    expect(attempts.get('alo')).toBe(4);
  });

  it('a retry budget stops retries from storming a failing service', async () => {
    const w = world(target());
    let attempts = 0;
    await (
      await w.endpoint()
    ).serve(Flaky, {
      work() {
        attempts++;
        throw new RpcError(Status.UNAVAILABLE, 'down', { executed: 'no' });
      },
    });
    const client: RpcEndpoint = await w.endpoint({
      retryBudget: { burst: 3, ratio: 0, minPerSecond: 0 },
    });
    const flaky = await client.bind(Flaky);
    const retry = { initialBackoff: 1, maxBackoff: 2, maxAttempts: 10 };
    const errors: RpcError[] = [];
    for (let i = 0; i < 4; i++)
      errors.push(
        (await flaky.work({ key: `${i}` }, { retry }).catch((e: unknown) => e)) as RpcError,
      );
    // Four calls, and only the three retries the budget held: not 4 x 10 attempts.
    expect(attempts).toBe(4 + 3);
    expect(errors.at(-1)).toMatchObject({ status: Status.UNAVAILABLE, reason: Reason.RetryBudget });
    expect(client.budget!.refused).toBeGreaterThanOrEqual(1);
  });
});

const Hold = defineService({
  name: 'hold',
  version: '1.0.0',
  methods: { hold: { args: s.object({ key: s.string() }), result: s.int() } },
});

/** Connection drops need a TCP connection to cut: RabbitMQ and a standalone Warren. */
describeBrokers(
  'rpc: calls in flight across a connection drop',
  (target) => {
    it('resends after the reconnect: at-least-once executes again, at-most-once answers from its table', async () => {
      const t = target();
      const w = world(t);
      const counts = new Map<string, number>();
      const gates = new Map<string, () => void>();
      await (
        await w.endpoint()
      ).serve(Hold, {
        hold: async ({ key }) => {
          const n = (counts.get(key) ?? 0) + 1;
          counts.set(key, n);
          await new Promise<void>((resolve) => {
            const prev = gates.get(key);
            gates.set(key, () => {
              prev?.();
              resolve();
            });
          });
          return n;
        },
      });
      const proxy = await new TcpProxy(
        '127.0.0.1',
        t.kind === 'rabbitmq' ? 5672 : t.warren!.port,
      ).start();
      try {
        const conn = await connect(proxy.url, { reconnect: { initialDelay: 20, maxDelay: 100 } });
        const ep = await rpcEndpoint(conn, { namespace: w.ns });
        const hold = await ep.bind(Hold);
        for (const semantics of ['at-least-once', 'at-most-once'] as const) {
          const key = semantics;
          const call = hold.hold(
            { key },
            { semantics, timeout: 20_000, retry: { attemptTimeout: 15_000 } },
          );
          await until(() => counts.get(key) === 1, 'the call to start');
          const back = new Promise((resolve) => conn.once('reconnected', resolve));
          proxy.cut();
          await back;
          if (semantics === 'at-least-once')
            await until(() => counts.get(key) === 2, 'the resent call');
          gates.get(key)!();
          // The reply to the first attempt went to the dead session; the resend's reply arrives.
          expect(await call).toBe(semantics === 'at-least-once' ? 2 : 1);
          expect(counts.get(key)).toBe(semantics === 'at-least-once' ? 2 : 1);
        }
        await ep.close();
        await conn.close();
      } finally {
        await proxy.stop();
      }
    });
  },
  ['rabbitmq', 'warren'],
);
