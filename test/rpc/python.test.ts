import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { describeBrokers, until } from '../client/brokers.js';
import type { BrokerTarget } from '../client/brokers.js';
import { SYSTEM_PYTHON } from '../helpers/processes.js';
import { expectClientOk, runClient, startBackground } from '../interop/foreign/foreign.js';
import { Reason, Status, defineService, s } from '../../src/rpc/index.js';
import { calcImpl } from './calc-impl.js';
import { Calc } from './contracts.js';
import { world } from './helpers.js';

/**
 * A program in another language calls and serves Warren services over plain AMQP: Python with
 * pika, implementing docs/rpc-wire-format.md (python/warren_rpc.py). Against RabbitMQ and a
 * standalone Warren (Python needs a TCP port).
 */
const PY_DIR = join(dirname(fileURLToPath(import.meta.url)), 'python');
const SCRIPT = join(PY_DIR, 'rpc_interop.py');

const PyCalc = defineService({
  name: 'pycalc',
  version: '1.0.0',
  methods: {
    add: { args: s.object({ a: s.number(), b: s.number() }), result: s.number() },
    echo: { args: s.unknown(), result: s.unknown() },
    fail: { args: s.void(), result: s.void() },
    crash: { args: s.void(), result: s.void() },
    bump: { args: s.object({ key: s.string() }), result: s.int() },
  },
});

function portOf(t: BrokerTarget): number {
  return t.kind === 'rabbitmq' ? 5672 : t.warren!.port;
}

describeBrokers(
  'rpc: interop with a Python (pika) program',
  (target) => {
    it('Python calls a Warren service: discovery, types, errors, at-most-once, epochs', async () => {
      const t = target();
      const w = world(t);
      const { impl, state } = calcImpl();
      await (await w.endpoint()).serve(Calc, impl);
      const result = await runClient(SYSTEM_PYTHON, [SCRIPT, 'client', String(portOf(t)), w.ns], {
        cwd: PY_DIR,
        timeoutMs: 60_000,
      });
      expectClientOk(result, 'OK at-most-once');
      for (const line of ['OK add', 'OK types', 'OK errors']) expect(result.stdout).toContain(line);
      // The retried sequence number was answered from the table, not executed again.
      expect(state.executions.get('py')).toBe(2);
    });

    it('Python serves a service that a Warren client binds to and calls', async () => {
      const t = target();
      const w = world(t);
      const py = startBackground(SYSTEM_PYTHON, [SCRIPT, 'server', String(portOf(t)), w.ns], {
        cwd: PY_DIR,
        timeoutMs: 90_000,
      });
      try {
        await until(
          () => py.output().includes('READY') || py.exited(),
          'the Python server to start',
          20_000,
        );
        expect(py.output()).toContain('READY');
        const seen = new Set<string>();
        const ep = await w.endpoint({
          locateTimeout: 10_000,
          // Lose the first reply of every call: retries must reach Python and be handled right.
          faults: { dropReply: ({ callId }) => !seen.has(callId) && seen.add(callId).size > 0 },
        });
        const pc = await ep.bind(PyCalc);
        expect(pc.$.instances()).toMatchObject([{ instance: 'py-1', version: '1.0.0' }]);
        const retry = { attemptTimeout: 300 };
        expect(await pc.add({ a: 2, b: 40 }, { retry })).toBe(42);

        const value = {
          bytes: new Uint8Array([0, 1, 2, 255]),
          when: new Date(Date.UTC(2024, 1, 29, 12, 0, 0, 123)),
          big: -(2n ** 100n) + 7n,
          nums: [-0, Infinity, -Infinity, 1.25],
          holes: [1, undefined, 'three', null],
          dollar: { $bin: 'not bytes' },
          set: new Set([1, 2, 3]),
          map: new Map([[1, 'one']]),
          nested: { a: [{ b: { c: 'déjà vu 😀' } }] },
        };
        expect(await pc.echo(value, { retry })).toStrictEqual(value);

        await expect(pc.fail(undefined, { retry })).rejects.toMatchObject({
          status: Status.FAILED_PRECONDITION,
          reason: 'PY_FAIL',
          executed: 'no',
          message: 'python says no',
        });
        await expect(pc.crash(undefined, { retry })).rejects.toMatchObject({
          status: Status.UNKNOWN,
          message: 'ValueError: bad input',
        });
        // At-most-once through Python's table: the retry after the lost reply is not executed.
        expect(await pc.bump({ key: 'k' }, { semantics: 'at-most-once', retry })).toBe(1);
        expect(await pc.bump({ key: 'k' }, { semantics: 'at-most-once', retry })).toBe(2);
        // At-least-once: the retry executes again.
        expect(await pc.bump({ key: 'k' }, { retry })).toBe(4);

        await py.stop();
        expect(py.output()).toContain('STOPPED');
        // Python withdrew its registration on the way out.
        await until(() => pc.$.instances().length === 0, 'the withdrawal');
        await expect(pc.add({ a: 1, b: 1 }, { timeout: 1000 })).rejects.toMatchObject({
          status: Status.UNAVAILABLE,
          reason: Reason.CannotLocateServer,
        });
      } finally {
        await py.stop();
      }
    });
  },
  ['rabbitmq', 'warren'],
);
