/**
 * Processes coming and going at awkward moments: clients that leave while their requests wait
 * for a worker or that half-close their side, a worker stopped while it waits for a load
 * balancer, a load balancer killed and replaced on the same broker, workers that leave while a
 * client's read-your-writes barrier still names them, and a request a worker cannot decode.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/client/index.js';
import { kvNames } from '../../src/kv/contracts.js';
import { WireType, WorkerResult, decodeWorkerResponse } from '../../src/kv/messages.js';
import { startTestBroker } from '../helpers/broker.js';
import { Inspector, killAll, spawnCli, startLb, startWorker, until } from './cluster.js';
import type { Lb, Proc, WorkerProc } from './cluster.js';
import {
  ERROR,
  NOT_FOUND,
  OK,
  T,
  WireClient,
  getFrame,
  parseReply,
  putFrame,
} from './wire-client.js';

afterAll(killAll);

describe('a load balancer without workers', () => {
  it('counts a parked request once, even when its client leaves: later ones still time out', async () => {
    // Long enough for the client to leave while both requests still wait.
    const lb = await startLb(['--request-timeout', '5000']);
    const inspector = await Inspector.open(lb.brokerUrl);
    try {
      const leaver = await WireClient.connect(lb.port);
      const stayer = await WireClient.connect(lb.port);
      leaver.write(putFrame('parked-1', 'x'));
      stayer.write(putFrame('parked-2', 'y'));
      await until('two parked requests', async () =>
        (await inspector.stats()).parked === 2 ? true : undefined,
      );
      // The client goes away (a reset: a FIN alone would be a half-close, still answered) while
      // its request waits for a worker: the request is dropped, and counted once.
      leaver.socket.resetAndDestroy();
      await until('one parked request', async () =>
        (await inspector.stats()).parked === 1 ? true : undefined,
      );
      expect(parseReply(await stayer.next())).toMatchObject({
        type: T.PUT_RESPONSE,
        result: ERROR,
      });
      const quiet = await until('nothing parked and the sweep timer stopped', async () => {
        const s = await inspector.stats();
        return s.parked === 0 && s.timers === 0 ? s : undefined;
      });
      expect(quiet.inflight).toBe(0);
      // A count gone wrong (negative) used to keep later parked requests from ever timing out.
      expect(await stayer.put('parked-3', 'z')).toBe(ERROR);
      stayer.close();
    } finally {
      await inspector.close();
      lb.proc.kill('SIGTERM');
      expect((await lb.proc.exited).code).toBe(0);
    }
  });
});

describe('a cluster with workers coming and going', () => {
  let lb: Lb;
  let inspector: Inspector;
  let h1: WorkerProc;

  afterAll(async () => {
    await inspector?.close();
  });

  it('answers a client that half-closes its side after sending, then closes', async () => {
    lb = await startLb(['--cleanup-timeout', '1000']);
    inspector = await Inspector.open(lb.brokerUrl);
    h1 = await startWorker(lb, ['--name', 'h1', '--cleanup-timeout', '1000']);
    const c = await WireClient.connect(lb.port);
    // `printf ... | nc`: the requests, then end of input.
    c.write(Buffer.concat([putFrame('half', 'closed'), getFrame('half'), getFrame('nothing')]));
    c.close();
    expect(parseReply(await c.next())).toMatchObject({ type: T.PUT_RESPONSE, result: OK });
    const g = parseReply(await c.next());
    expect(g).toMatchObject({ type: T.GET_RESPONSE, result: OK });
    expect(g.value.toString()).toBe('closed');
    expect(parseReply(await c.next())).toMatchObject({ type: T.GET_RESPONSE, result: NOT_FOUND });
    await c.closedByServer();
    await until('the connection forgotten', async () =>
      (await inspector.stats()).connections === 0 ? true : undefined,
    );
  });

  it('drops barrier entries of workers that left, and still reads what they wrote', async () => {
    const a = await startWorker(lb, ['--name', 'b1', '--cleanup-timeout', '1000']);
    await until('two workers in the ring', async () =>
      (await inspector.stats()).ring.length === 2 ? true : undefined,
    );
    const c = await WireClient.connect(lb.port);
    // Round robin: the two puts go to different workers, so the barrier names both.
    expect(await c.put('left-1', 'one')).toBe(OK);
    expect(await c.put('left-2', 'two')).toBe(OK);
    expect((await inspector.stats()).barrierEntries).toBe(2);
    const b = await startWorker(lb, ['--name', 'b2', '--cleanup-timeout', '1000']);
    const d = await startWorker(lb, ['--name', 'b3', '--cleanup-timeout', '1000']);
    // The first two leave; the newcomers hold their data (a full export).
    for (const w of [h1, a]) w.proc.kill('SIGTERM');
    await until('only the newcomers in the ring', async () => {
      const s = await inspector.stats();
      return s.ring.length === 2 && s.ring.includes(b.id) && s.ring.includes(d.id)
        ? true
        : undefined;
    });
    expect(await c.put('left-3', 'three')).toBe(OK);
    expect(await c.put('left-4', 'four')).toBe(OK);
    const pruned = await until('the departed workers dropped from the barrier', async () => {
      const s = await inspector.stats();
      return s.barrierEntries === 2 && s.members === 2 ? s : undefined;
    });
    expect(pruned.connections).toBe(1);
    for (const [k, v] of [
      ['left-1', 'one'],
      ['left-2', 'two'],
      ['left-3', 'three'],
      ['left-4', 'four'],
    ] as const) {
      const g = await c.get(k);
      expect(g.result, k).toBe(OK);
      expect(g.value.toString()).toBe(v);
    }
    c.close();
  });

  it('answers ERROR to a request a worker cannot decode, rather than letting it time out', async () => {
    const [id] = (await inspector.stats()).ring;
    const names = kvNames('warren.kv');
    const conn = await connect(lb.brokerUrl, { connectionName: 'kv test prober' });
    try {
      const ch = await conn.channel();
      const { queue } = await ch.queueDeclare('', { exclusive: true });
      const answers: Buffer[] = [];
      await ch.consume(queue, (m) => answers.push(m.body), { noAck: true });
      // A RETRIEVE_REQUEST with id 4242 and key 'k', cut short before its trailer.
      const body = Buffer.from([WireType.RetrieveRequest, 0, 0, 0x10, 0x92, 0, 1, 0x6b, 0, 0]);
      await ch.publish('', names.inbox(id!), body, { replyTo: queue });
      const r = decodeWorkerResponse(await until('an answer', () => answers[0]));
      expect(r).toMatchObject({
        type: WireType.RetrieveResponse,
        result: WorkerResult.Error,
        id: 4242,
      });
      expect(r.key.toString()).toBe('k');
    } finally {
      await conn.close();
    }
  });
});

describe('with a broker of its own', () => {
  it('a worker stopped while it waits for a load balancer exits at once', async () => {
    const broker = await startTestBroker();
    try {
      const w = spawnCli('worker', ['worker', '--broker', broker.url, '--name', 'early']);
      await w.waitFor(/^waiting for the load balancer to come up$/);
      const stoppedAt = Date.now();
      w.kill('SIGTERM');
      const { code } = await w.exited;
      expect(code).toBe(0);
      // The start gave up at once; it did not wait for a load balancer first.
      expect(Date.now() - stoppedAt).toBeLessThan(8000);
      await w.waitFor(/^worker \S+ stopped$/);
    } finally {
      await broker.stop();
    }
  });

  it('workers come back to a load balancer that replaces one that was killed', async () => {
    const broker = await startTestBroker();
    const ns = `kv-restart-${randomBytes(3).toString('hex')}`;
    const lbArgs = ['lb', '--port', '0', '--broker', broker.url, '--namespace', ns];
    const startLbProc = async (): Promise<{ proc: Proc; port: number }> => {
      const proc = spawnCli('lb', lbArgs);
      const [, port] = await proc.waitFor(/^listening (\d+)$/);
      return { proc, port: Number(port) };
    };
    const worker = async (name: string): Promise<Proc> => {
      const p = spawnCli(name, [
        'worker',
        '--broker',
        broker.url,
        '--namespace',
        ns,
        '--name',
        name,
      ]);
      await p.waitFor(/^ready \(/, 60_000);
      return p;
    };
    let inspector: Inspector | null = null;
    try {
      const first = await startLbProc();
      const workers = [await worker('r1'), await worker('r2')];
      const c = await WireClient.connect(first.port);
      for (let i = 0; i < 20; i++) expect(await c.put(`before-${i}`, `v-${i}`)).toBe(OK);
      c.destroy();

      first.proc.kill('SIGKILL');
      await first.proc.exited;
      const second = await startLbProc();
      inspector = await Inspector.open(broker.url, ns);
      const back = await until(
        'both workers back in the ring',
        async () => {
          const s = await inspector!.stats();
          return s.ring.length === 2 ? s : undefined;
        },
        30_000,
      );
      expect(back.members).toBe(2);
      for (const w of workers) await w.waitFor(/^registered with the load balancer again/);

      const c2 = await WireClient.connect(second.port);
      for (let i = 0; i < 20; i++) {
        const g = await c2.get(`before-${i}`);
        expect(g.result).toBe(OK);
        expect(g.value.toString()).toBe(`v-${i}`);
      }
      expect(await c2.put('after', 'restart')).toBe(OK);
      expect((await c2.get('after')).value.toString()).toBe('restart');
      c2.close();

      // And the new load balancer stops them as its own.
      second.proc.kill('SIGTERM');
      expect((await second.proc.exited).code).toBe(0);
      await second.proc.waitFor(/^told 2 worker\(s\) to shut down$/);
      for (const w of workers) expect((await w.exited).code).toBe(0);
    } finally {
      await inspector?.close();
      await killAll();
      await broker.stop();
    }
  }, 120_000);
});
