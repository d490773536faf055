import { createInterface } from 'node:readline';
import { ListenError } from '../broker/index.js';
import { ClientError } from '../client/index.js';
import {
  KvClient,
  KvError,
  LoadBalancer,
  Worker,
  WorkerStoppedError,
  formatKvBench,
  runKvBench,
} from '../kv/index.js';
import { DEFAULT_KV_AMQP_PORT, DEFAULT_KV_PORT } from '../kv/load-balancer.js';
import { formatHelp, intFlag, parseFlags } from './args.js';
import type { FlagSpec } from './args.js';
import { UsageError, closest } from './usage-error.js';

const SUBCOMMANDS = ['lb', 'worker', 'client', 'bench'] as const;

export const KV_HELP = `Usage: warren kv <lb|worker|client|bench> [options]

The replicated key-value service of seed 002, built on Warren: clients speak a small
binary protocol to a load balancer (TCP port ${DEFAULT_KV_PORT}), which hands each request to the next
worker in turn through the broker; workers replicate every write to each other.

Commands:
  lb       run the load balancer (with an embedded broker unless --broker is given)
  worker   run a worker; it registers with the load balancer and takes a full export
  client   put / get / del from the command line, or interactively
  bench    load the service and report ops/s and latency percentiles

See 'warren kv <command> --help'.
`;

const HELP_FLAG: FlagSpec = { type: 'boolean', short: 'h', description: 'show this help' };
const NAMESPACE_FLAG: FlagSpec = {
  type: 'string',
  value: '<name>',
  description: 'prefix of the queues and exchange (several clusters can share a broker)',
  default: 'warren.kv',
};
const FAIL_FLAG: FlagSpec = {
  type: 'string',
  value: '<ms>',
  description: 'a member silent this long counts as failed',
  default: '3000',
};
const CLEANUP_FLAG: FlagSpec = {
  type: 'string',
  value: '<ms>',
  description: 'failed and departed members are forgotten after this long',
  default: '30000',
};

const LB_FLAGS: Record<string, FlagSpec> = {
  port: {
    type: 'string',
    short: 'p',
    value: '<port>',
    description: 'client port (0: any free one; the line "listening <port>" says which)',
    default: String(DEFAULT_KV_PORT),
  },
  host: { type: 'string', value: '<addr>', description: 'interface to listen on (default: all)' },
  broker: {
    type: 'string',
    short: 'b',
    value: '<url>',
    description: 'use this AMQP broker (Warren or RabbitMQ) instead of an embedded one',
  },
  'amqp-port': {
    type: 'string',
    value: '<port>',
    description: 'AMQP port of the embedded broker, where workers connect (0: any free one)',
    default: String(DEFAULT_KV_AMQP_PORT),
  },
  namespace: NAMESPACE_FLAG,
  'attempt-timeout': {
    type: 'string',
    value: '<ms>',
    description: 'a worker that has not answered by then is skipped and the request resent',
    default: '3000',
  },
  'request-timeout': {
    type: 'string',
    value: '<ms>',
    description: 'a request not served by then is answered with result ERROR',
    default: '10000',
  },
  'fail-timeout': FAIL_FLAG,
  'cleanup-timeout': CLEANUP_FLAG,
  'max-payload': {
    type: 'string',
    value: '<bytes>',
    description: 'largest request payload accepted; larger frames get MSG_ERROR and are skipped',
    default: '65535',
  },
  help: HELP_FLAG,
};

const WORKER_FLAGS: Record<string, FlagSpec> = {
  broker: {
    type: 'string',
    short: 'b',
    value: '<url>',
    description: "the broker (the load balancer's embedded one by default)",
    default: `amqp://guest:guest@localhost:${DEFAULT_KV_AMQP_PORT}`,
  },
  name: {
    type: 'string',
    value: '<name>',
    description: 'prefix of the worker id (a random suffix is added)',
    default: 'the host name',
  },
  namespace: NAMESPACE_FLAG,
  'anti-entropy-interval': {
    type: 'string',
    value: '<ms>',
    description: 'ms between anti-entropy rounds with a random peer',
    default: '2000',
  },
  'tombstone-ttl': {
    type: 'string',
    value: '<seconds>',
    description: 'how long death certificates (deletes) are kept',
    default: '3600',
  },
  'fail-timeout': FAIL_FLAG,
  'cleanup-timeout': CLEANUP_FLAG,
  'replication-delay': {
    type: 'string',
    value: '<ms>',
    description: "for testing: apply other workers' writes this much later",
    default: '0',
  },
  help: HELP_FLAG,
};

const CLIENT_FLAGS: Record<string, FlagSpec> = {
  host: {
    type: 'string',
    short: 'H',
    value: '<host>',
    description: 'load balancer host',
    default: '127.0.0.1',
  },
  port: {
    type: 'string',
    short: 'p',
    value: '<port>',
    description: 'load balancer port',
    default: String(DEFAULT_KV_PORT),
  },
  help: HELP_FLAG,
};

const BENCH_FLAGS: Record<string, FlagSpec> = {
  host: CLIENT_FLAGS.host!,
  port: CLIENT_FLAGS.port!,
  connections: {
    type: 'string',
    short: 'c',
    value: '<n>',
    description: 'client connections',
    default: '50',
  },
  pipeline: {
    type: 'string',
    short: 'P',
    value: '<n>',
    description: 'requests each connection keeps in flight',
    default: '1',
  },
  keys: {
    type: 'string',
    short: 'k',
    value: '<n>',
    description: 'distinct keys',
    default: '10000',
  },
  'value-size': {
    type: 'string',
    short: 'd',
    value: '<bytes>',
    description: 'bytes per value',
    default: '100',
  },
  'get-ratio': {
    type: 'string',
    value: '<0..1>',
    description: 'fraction of requests that are gets (the rest are puts)',
    default: '0.5',
  },
  requests: {
    type: 'string',
    short: 'n',
    value: '<n>',
    description: 'requests to make',
    default: '100000',
  },
  duration: { type: 'string', value: '<seconds>', description: 'stop after this long, if sooner' },
  'no-preload': { type: 'boolean', description: 'do not put every key once before measuring' },
  json: { type: 'boolean', description: 'print the result as JSON' },
  help: HELP_FLAG,
};

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

/** `warren kv <sub>`. */
export async function runKv(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(KV_HELP);
      return sub === undefined ? 2 : 0;
    case 'lb':
      return runLb(rest);
    case 'worker':
      return runWorker(rest);
    case 'client':
      return runClient(rest);
    case 'bench':
      return runBenchCommand(rest);
    default: {
      const hint = closest(sub, SUBCOMMANDS);
      throw new UsageError(
        `unknown kv command '${sub}'` +
          (hint !== undefined ? `; did you mean '${hint}'?` : '') +
          " (see 'warren kv --help')",
      );
    }
  }
}

function str(v: string | boolean | undefined, fallback: string): string {
  return typeof v === 'string' ? v : fallback;
}

function ms(name: string, v: string | boolean | undefined, fallback: number, min = 1): number {
  return typeof v === 'string' ? intFlag(name, v, min, 0x7fff_ffff) : fallback;
}

/** Resolves on the first SIGINT or SIGTERM. */
function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string): void => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(sig);
    };
    const onInt = (): void => on('SIGINT');
    const onTerm = (): void => on('SIGTERM');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
  });
}

async function runLb(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags('kv lb', argv, LB_FLAGS);
  if (values.help === true) {
    process.stdout.write(
      formatHelp(
        'warren kv lb [options]',
        `The load balancer: clients connect on TCP (the seed's protocol, see README), requests
go round robin to the ready workers. Without --broker it starts an embedded Warren broker
for the workers (on --amqp-port). Ctrl-C or SIGTERM sends MSG_SHUTDOWN to every client,
stops the workers and exits.`,
        LB_FLAGS,
      ),
    );
    return 0;
  }
  if (positionals.length > 0)
    throw new UsageError(`'warren kv lb' takes no arguments, got '${positionals[0]}'`);
  // Before start, which prints 'listening': a SIGTERM sent on reading it must find the handler.
  const signal = untilSignal();
  const lb = await startOrExplain('lb', () =>
    LoadBalancer.start({
      port: intFlag('port', str(values.port, String(DEFAULT_KV_PORT)), 0, 65535),
      host: typeof values.host === 'string' ? values.host : undefined,
      broker: typeof values.broker === 'string' ? values.broker : undefined,
      amqpPort: intFlag(
        'amqp-port',
        str(values['amqp-port'], String(DEFAULT_KV_AMQP_PORT)),
        0,
        65535,
      ),
      namespace: str(values.namespace, 'warren.kv'),
      attemptTimeout: ms('attempt-timeout', values['attempt-timeout'], 3000),
      requestTimeout: ms('request-timeout', values['request-timeout'], 10_000),
      failTimeout: ms('fail-timeout', values['fail-timeout'], 3000),
      cleanupTimeout: ms('cleanup-timeout', values['cleanup-timeout'], 30_000),
      maxPayload: intFlag('max-payload', str(values['max-payload'], '65535'), 16, 65535),
      log: out,
    }),
  );
  if (lb === null) return 1;
  out('load balancer running; Ctrl-C to stop');
  const sig = await signal;
  out(`received ${sig}`);
  await lb.stop();
  return 0;
}

async function runWorker(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags('kv worker', argv, WORKER_FLAGS);
  if (values.help === true) {
    process.stdout.write(
      formatHelp(
        'warren kv worker [options]',
        `A worker: registers with the load balancer, takes a full export from a ready worker,
then serves requests and replicates every write to the other workers. Ctrl-C or SIGTERM
unregisters it and stops it; the other workers keep its data.`,
        WORKER_FLAGS,
      ),
    );
    return 0;
  }
  if (positionals.length > 0)
    throw new UsageError(`'warren kv worker' takes no arguments, got '${positionals[0]}'`);
  const options = {
    url: str(values.broker, `amqp://guest:guest@localhost:${DEFAULT_KV_AMQP_PORT}`),
    name: typeof values.name === 'string' ? values.name : undefined,
    namespace: str(values.namespace, 'warren.kv'),
    antiEntropyInterval: ms('anti-entropy-interval', values['anti-entropy-interval'], 2000),
    tombstoneTtl: ms('tombstone-ttl', values['tombstone-ttl'], 3600) * 1000,
    failTimeout: ms('fail-timeout', values['fail-timeout'], 3000),
    cleanupTimeout: ms('cleanup-timeout', values['cleanup-timeout'], 30_000),
    replicationDelay: ms('replication-delay', values['replication-delay'], 0, 0),
    log: out,
  };
  // A signal while the worker starts (it may wait for a load balancer for ever) aborts the start.
  const starting = new AbortController();
  const signal = untilSignal();
  void signal.then((s) => starting.abort(`received ${s}`));
  let worker: Worker | null;
  try {
    worker = await startOrExplain('worker', () =>
      Worker.start({ ...options, signal: starting.signal }),
    );
  } catch (err) {
    if (!(err instanceof WorkerStoppedError)) throw err;
    // Our own signal, or the load balancer shutting the service down while this one joined:
    // either way a clean stop.
    if (!starting.signal.aborted) out(`stopped while starting: ${err.message}`);
    return 0;
  }
  if (worker === null) return 1;
  const why = await Promise.race([signal.then((s) => `received ${s}`), worker.stopped]);
  await worker.stop(why);
  return 0;
}

/**
 * Start something that needs the network; a broker or port problem is one line on standard
 * error (and exit status 1), not a stack trace.
 */
async function startOrExplain<T>(what: string, start: () => Promise<T>): Promise<T | null> {
  try {
    return await start();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    let text: string | null = null;
    if (err instanceof ListenError) {
      text = `the embedded broker cannot listen: ${e.message.replace('--port', '--amqp-port')}, or use --broker`;
    } else if (e.code === 'EADDRINUSE') {
      text = `the client port is in use (${e.message}); choose another with --port`;
    } else if (err instanceof ClientError) {
      text = e.message;
    }
    if (text === null) throw err;
    process.stderr.write(`warren kv ${what}: ${text}\n`);
    return null;
  }
}

/** One command line: put <key> <value...> | get <key> | del <key>. */
function parseCommand(
  line: string,
): { op: 'put' | 'get' | 'del'; key: string; value: string } | string {
  const m = /^\s*(\S+)(?:\s+(\S+))?(?:\s(.*))?$/.exec(line);
  if (m === null) return 'empty line';
  const op = m[1]!.toLowerCase();
  const key = m[2];
  if (op !== 'put' && op !== 'get' && op !== 'del' && op !== 'delete') {
    return `unknown command '${m[1]}': use put <key> <value>, get <key> or del <key>`;
  }
  if (key === undefined) return `${op} needs a key`;
  if (op === 'put') {
    if (m[3] === undefined) return 'put needs a value: put <key> <value>';
    return { op, key, value: m[3] };
  }
  if (m[3] !== undefined && m[3].trim() !== '') return `${op} takes one key`;
  return { op: op === 'delete' ? 'del' : op, key, value: '' };
}

/** Exit statuses of `warren kv client`, the protocol's result byte: what scripts test. */
const EXIT_OK = 0;
const EXIT_NOT_FOUND = 1;
const EXIT_ERROR = 2;
type Status = typeof EXIT_OK | typeof EXIT_NOT_FOUND | typeof EXIT_ERROR;

/** Run one command; resolves with the line to print and its status. */
async function execute(
  c: KvClient,
  cmd: { op: 'put' | 'get' | 'del'; key: string; value: string },
): Promise<{ text: string; status: Status }> {
  try {
    switch (cmd.op) {
      case 'put':
        await c.put(cmd.key, cmd.value);
        return { text: 'OK', status: EXIT_OK };
      case 'get': {
        const v = await c.get(cmd.key);
        return v === null
          ? { text: '(not found)', status: EXIT_NOT_FOUND }
          : { text: v.toString('utf8'), status: EXIT_OK };
      }
      case 'del':
        return (await c.del(cmd.key))
          ? { text: 'OK', status: EXIT_OK }
          : { text: '(not found)', status: EXIT_NOT_FOUND };
    }
  } catch (err) {
    return { text: `ERROR: ${(err as Error).message}`, status: EXIT_ERROR };
  }
}

async function runClient(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags('kv client', argv, CLIENT_FLAGS);
  if (values.help === true) {
    process.stdout.write(
      formatHelp(
        'warren kv client [options] [put <key> <value> | get <key> | del <key>]',
        `With a command, run it and exit with the result: 0 OK, 1 NOT_FOUND (get or del of a
missing key), 2 ERROR (the server could not serve it, refused it, or cannot be reached).
Without one, read commands from standard input, one per line (interactive on a terminal;
from a script, the commands are pipelined and answered in order); the exit status is then
the worst of all the answers.`,
        CLIENT_FLAGS,
      ),
    );
    return 0;
  }
  const host = str(values.host, '127.0.0.1');
  const port = intFlag('port', str(values.port, String(DEFAULT_KV_PORT)), 1, 65535);
  let oneShot: ReturnType<typeof parseCommand> | null = null;
  if (positionals.length > 0) {
    oneShot = parseCommand(positionals.join(' '));
    if (typeof oneShot === 'string') throw new UsageError(oneShot);
  }
  let c: KvClient;
  try {
    c = await KvClient.connect({ host, port });
  } catch (err) {
    process.stderr.write(`warren kv client: ${(err as Error).message}\n`);
    return EXIT_ERROR;
  }
  let shutdown = false;
  c.on('shutdown', () => {
    shutdown = true;
    process.stderr.write('the server is shutting down (MSG_SHUTDOWN)\n');
  });
  if (oneShot !== null && typeof oneShot !== 'string') {
    const r = await execute(c, oneShot);
    (r.status === EXIT_OK ? process.stdout : process.stderr).write(`${r.text}\n`);
    await c.close();
    return r.status;
  }
  const interactive = process.stdin.isTTY === true;
  const rl = createInterface({
    input: process.stdin,
    output: interactive ? process.stdout : undefined,
    prompt: 'kv> ',
    terminal: interactive,
  });
  let worst: Status = EXIT_OK;
  // Answers print in the order the commands were given; commands go out as they are read.
  let printed: Promise<void> = Promise.resolve();
  const closed = new Promise<void>((resolve) => c.once('close', resolve));
  if (interactive) {
    out(`connected to ${host}:${port}; put <key> <value>, get <key>, del <key>, quit`);
    rl.prompt();
  }
  rl.on('line', (line) => {
    const t = line.trim();
    if (t === '') {
      if (interactive) rl.prompt();
      return;
    }
    if (t === 'quit' || t === 'exit') {
      rl.close();
      return;
    }
    if (t === 'help') {
      out('put <key> <value>   store a value (the rest of the line)');
      out('get <key>           print the value');
      out('del <key>           delete the key');
      out('quit                leave');
      if (interactive) rl.prompt();
      return;
    }
    const cmd = parseCommand(line);
    const answer: Promise<{ text: string; status: Status }> =
      typeof cmd === 'string'
        ? Promise.resolve({ text: `ERROR: ${cmd}`, status: EXIT_ERROR })
        : execute(c, cmd);
    printed = printed.then(async () => {
      const r = await answer;
      if (r.status > worst) worst = r.status;
      out(r.text);
      if (interactive) rl.prompt();
    });
  });
  await Promise.race([new Promise<void>((resolve) => rl.once('close', resolve)), closed]);
  await printed;
  rl.close();
  await c.close();
  return shutdown ? EXIT_ERROR : worst;
}

async function runBenchCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags('kv bench', argv, BENCH_FLAGS);
  if (values.help === true) {
    process.stdout.write(
      formatHelp(
        'warren kv bench [options]',
        `Load the key-value service through its load balancer: --connections clients, each
keeping --pipeline requests in flight, gets and puts of random keys; reports ops/s and
latency percentiles. Compare with: redis-benchmark -t set,get -c <connections> -P <pipeline>
-d <value-size> -r <keys> -n <requests>.`,
        BENCH_FLAGS,
      ),
    );
    return 0;
  }
  if (positionals.length > 0)
    throw new UsageError(`'warren kv bench' takes no arguments, got '${positionals[0]}'`);
  const ratioText = str(values['get-ratio'], '0.5');
  const getRatio = Number(ratioText);
  if (!/^\d*\.?\d+$/.test(ratioText) || getRatio < 0 || getRatio > 1) {
    throw new UsageError(`--get-ratio must be a number from 0 to 1, got '${ratioText}'`);
  }
  const o = {
    connections: intFlag('connections', str(values.connections, '50'), 1, 10_000),
    pipeline: intFlag('pipeline', str(values.pipeline, '1'), 1, 256),
    keys: intFlag('keys', str(values.keys, '10000'), 1, 100_000_000),
    valueSize: intFlag('value-size', str(values['value-size'], '100'), 0, 60_000),
    getRatio,
  };
  const requests = intFlag('requests', str(values.requests, '100000'), 1, 1_000_000_000);
  const duration =
    typeof values.duration === 'string'
      ? intFlag('duration', values.duration, 1, 86_400) * 1000
      : undefined;
  try {
    const r = await runKvBench({
      ...o,
      host: str(values.host, '127.0.0.1'),
      port: intFlag('port', str(values.port, String(DEFAULT_KV_PORT)), 1, 65535),
      requests,
      duration,
      preload: values['no-preload'] !== true,
    });
    process.stdout.write(values.json === true ? `${JSON.stringify(r)}\n` : formatKvBench(o, r));
    return r.errors > 0 ? 1 : 0;
  } catch (err) {
    if (err instanceof KvError) {
      process.stderr.write(`warren kv bench: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
