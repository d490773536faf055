/**
 * The `warren kv` commands as a user runs them, protocol errors on a live connection, and the
 * clean shutdown of the whole system (the seed's MSG_SHUTDOWN).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../helpers/processes.js';
import { CLI, killAll, startLb, startWorker } from './cluster.js';
import type { Lb, WorkerProc } from './cluster.js';
import {
  ERROR,
  NOT_FOUND,
  OK,
  T,
  WireClient,
  delFrame,
  frame,
  getFrame,
  parseReply,
  putFrame,
} from './wire-client.js';

afterAll(killAll);

function kv(args: string[], input?: string) {
  return run(process.execPath, [CLI, 'kv', ...args], {
    timeoutMs: 60_000,
    ...(input !== undefined ? { input } : {}),
  });
}

describe('warren kv with a running system', () => {
  let lb: Lb;
  let workers: WorkerProc[];

  beforeAll(async () => {
    lb = await startLb();
    workers = [await startWorker(lb, ['--name', 'c1']), await startWorker(lb, ['--name', 'c2'])];
  });

  it('client: one-shot put, get and del with exit codes for scripts', async () => {
    const port = String(lb.port);
    const put = await kv(['client', '--port', port, 'put', 'greeting', 'hello', 'world']);
    expect(put).toMatchObject({ code: 0, stdout: 'OK\n' });
    const get = await kv(['client', '--port', port, 'get', 'greeting']);
    expect(get).toMatchObject({ code: 0, stdout: 'hello world\n' });
    const del = await kv(['client', '--port', port, 'del', 'greeting']);
    expect(del).toMatchObject({ code: 0, stdout: 'OK\n' });
    const missing = await kv(['client', '--port', port, 'get', 'greeting']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('(not found)\n');
    const missingDel = await kv(['client', '--port', port, 'del', 'greeting']);
    expect(missingDel.code).toBe(1);
    const usage = await kv(['client', '--port', port, 'frobnicate', 'x']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/unknown command 'frobnicate'/);
  });

  it('client: commands from standard input, pipelined, answered in order', async () => {
    const script = [
      'put a 1',
      'put b two words',
      'get a',
      'get b',
      'del a',
      'get a',
      'bogus',
      'get b',
    ].join('\n');
    const r = await kv(['client', '--port', String(lb.port)], `${script}\n`);
    expect(r.stdout.split('\n')).toEqual([
      'OK',
      'OK',
      '1',
      'two words',
      'OK',
      '(not found)',
      "ERROR: unknown command 'bogus': use put <key> <value>, get <key> or del <key>",
      'two words',
      '',
    ]);
    // The worst answer: the unknown command was an ERROR.
    expect(r.code).toBe(2);
    const notFound = await kv(['client', '--port', String(lb.port)], 'put c 3\nget nothing\n');
    expect(notFound).toMatchObject({ code: 1, stdout: 'OK\n(not found)\n' });
  });

  it('bench: reports ops/s and latency percentiles', async () => {
    const r = await kv([
      'bench',
      '--port',
      String(lb.port),
      '-c',
      '4',
      '-P',
      '2',
      '-n',
      '400',
      '--keys',
      '50',
      '-d',
      '32',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^kv bench: 4 connections, pipeline 2, 50 keys, 32-byte values, 50% gets$/m,
    );
    const ops =
      /^ops: 400 in [\d.]+ s = (\d+) ops\/s \(\d+ puts, \d+ gets, 0 not found, 0 errors\)$/m.exec(
        r.stdout,
      );
    expect(ops).not.toBeNull();
    expect(Number(ops![1])).toBeGreaterThan(0);
    expect(r.stdout).toMatch(
      /^latency ms: p50 [\d.]+ {2}p90 [\d.]+ {2}p99 [\d.]+ {2}p99\.9 [\d.]+ {2}max [\d.]+ {2}mean [\d.]+$/m,
    );
  });

  it('protocol errors get MSG_ERROR and the connection goes on', async () => {
    const c = await WireClient.connect(lb.port);
    const bad = [
      frame(99, Buffer.from('??')), // unknown type
      frame(T.STORE_REQUEST, Buffer.alloc(10)), // a worker message
      frame(T.PUT, Buffer.from([0, 50, 1, 2, 3])), // keyLen beyond the payload
      frame(T.GET, Buffer.from([0, 0])), // empty key
      putFrame('k', Buffer.alloc(0xffff - 5)), // a full 65535-byte PUT: its GET_RESPONSE would not fit
    ];
    c.write(Buffer.concat([...bad, putFrame('after', 'errors'), getFrame('after')]));
    const codes: number[] = [];
    for (let i = 0; i < bad.length; i++) {
      const r = parseReply(await c.next());
      expect(r.type).toBe(T.ERROR);
      expect(r.message.length).toBeGreaterThan(0);
      codes.push(r.code);
    }
    expect(codes).toEqual([1, 2, 3, 5, 4]);
    expect(parseReply(await c.next())).toMatchObject({ type: T.PUT_RESPONSE, result: OK });
    const g = parseReply(await c.next());
    expect(g.value.toString()).toBe('errors');
    // Keys whose response would not fit the 2-byte length (a GET_RESPONSE carries 5 bytes
    // besides the key, a DELETE_RESPONSE 3): refused at once, and the connection goes on. These
    // used to reach a worker and then crash the load balancer when it could not encode the answer.
    c.write(
      Buffer.concat([
        getFrame(Buffer.alloc(65532, 0x61)),
        delFrame(Buffer.alloc(65533, 0x62)),
        getFrame(Buffer.alloc(65531, 0x63)),
        getFrame(Buffer.alloc(65530, 0x64)),
        getFrame('after'),
      ]),
    );
    for (let i = 0; i < 3; i++) {
      const r = parseReply(await c.next());
      expect(r).toMatchObject({ type: T.ERROR, code: 4 });
      expect(r.message).toMatch(/65530/);
    }
    // The longest key allowed is served.
    expect(parseReply(await c.next())).toMatchObject({ type: T.GET_RESPONSE, result: NOT_FOUND });
    expect(parseReply(await c.next()).value.toString()).toBe('errors');
    // A frame written in two pieces is still one frame.
    const split = putFrame('split', 'in two');
    c.write(split.subarray(0, 4));
    c.write(split.subarray(4));
    expect((await c.reply()).result).toBe(OK);
    c.close();
  });

  it('answers ERROR when no worker can serve a request in time', async () => {
    const alone = await startLb(['--request-timeout', '1000']);
    const c = await WireClient.connect(alone.port);
    expect(await c.put('nobody', 'home')).toBe(ERROR);
    c.close();
    // The one-shot client says so in its exit status.
    const oneShot = await kv(['client', '--port', String(alone.port), 'get', 'nobody']);
    expect(oneShot.code).toBe(2);
    expect(oneShot.stderr).toMatch(/^ERROR: /);
    alone.proc.kill('SIGTERM');
    expect((await alone.proc.exited).code).toBe(0);
  });

  it('Ctrl-C / SIGTERM: clients get MSG_SHUTDOWN, workers stop, everything exits cleanly', async () => {
    const c = await WireClient.connect(lb.port);
    expect(await c.put('last', 'word')).toBe(OK);
    const interactive = await WireClient.connect(lb.port);
    lb.proc.kill('SIGTERM');
    for (const client of [c, interactive]) {
      const f = await client.next();
      expect(f.type).toBe(T.SHUTDOWN);
      expect(f.payload.length).toBe(0);
      await client.closedByServer();
    }
    expect((await lb.proc.exited).code).toBe(0);
    await lb.proc.waitFor(/^told 2 worker\(s\) to shut down$/);
    await lb.proc.waitFor(/^load balancer stopped; heap \d+ KB/);
    for (const w of workers) {
      expect((await w.proc.exited).code).toBe(0);
      await w.proc.waitFor(/MSG_SHUTDOWN/);
      await w.proc.waitFor(/^worker \S+ stopped$/);
    }
  });
});

describe('warren kv usage', () => {
  it('prints help and refuses unknown commands with a hint', async () => {
    const help = await kv(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/lb +run the load balancer/);
    const typo = await kv(['wrker']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/unknown kv command 'wrker'; did you mean 'worker'\?/);
    const lbHelp = await kv(['lb', '--help']);
    expect(lbHelp.stdout).toMatch(/--port <port>/);
    const flag = await kv(['worker', '--brokr', 'x']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/did you mean --broker\?/);
  });
});
