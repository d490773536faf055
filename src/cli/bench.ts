import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { redact } from '../client/url.js';
import { fmtInt, fmtLatency, fmtMiB } from '../bench/format.js';
import { localListener, runLoad } from '../bench/load.js';
import { runRpc } from '../bench/rpc-load.js';
import type { LoadResult } from '../bench/load.js';
import { LOAD_DEFAULTS, loadOptions } from '../bench/load-options.js';
import type { LoadOptions } from '../bench/load-options.js';
import { SCENARIO_IDS, runSuite } from '../bench/suite.js';
import type { SuiteOptions } from '../bench/suite.js';
import { formatHelp, intFlag, parseFlags } from './args.js';
import type { FlagSpec } from './args.js';
import { UsageError } from './usage-error.js';

const D = LOAD_DEFAULTS;

const FLAGS: Record<string, FlagSpec> = {
  url: {
    type: 'string',
    short: 'u',
    value: '<amqp-url>',
    description: 'broker to load (Warren, RabbitMQ, any AMQP 0-9-1 broker)',
    default: 'amqp://guest:guest@127.0.0.1:5672',
  },
  publishers: {
    type: 'string',
    short: 'x',
    value: '<n>',
    description: 'publishers, each with its own connection',
    default: String(D.publishers),
  },
  consumers: {
    type: 'string',
    short: 'y',
    value: '<n>',
    description: 'consumers, each with its own connection',
    default: String(D.consumers),
  },
  queues: {
    type: 'string',
    short: 'q',
    value: '<n>',
    description: 'queues; agent i uses queue i mod n',
    default: String(D.queues),
  },
  size: {
    type: 'string',
    short: 's',
    value: '<bytes>',
    description: 'message body size',
    default: String(D.size),
  },
  confirm: {
    type: 'string',
    short: 'c',
    value: '<n>',
    description: 'publisher confirms with n in flight per publisher (0: none)',
    default: '0',
  },
  persistent: {
    type: 'boolean',
    description: 'persistent messages (delivery mode 2) to durable queues',
  },
  durable: {
    type: 'boolean',
    description: 'declare the queues durable even for transient messages',
  },
  prefetch: {
    type: 'string',
    short: 'P',
    value: '<n>',
    description: 'consumer prefetch (basic.qos); 0 is unlimited',
    default: String(D.prefetch),
  },
  ack: {
    type: 'string',
    value: '<mode>',
    description: "'manual' (ack every message) or 'auto' (no-ack consumers)",
    default: D.ack,
  },
  duration: {
    type: 'string',
    short: 'z',
    value: '<seconds>',
    description: 'measured time',
    default: String(D.duration),
  },
  warmup: {
    type: 'string',
    value: '<seconds>',
    description: 'load before measuring starts',
    default: String(D.warmup),
  },
  rate: {
    type: 'string',
    short: 'r',
    value: '<msg/s>',
    description: 'publish rate per publisher (0: as fast as possible)',
    default: '0',
  },
  messages: {
    type: 'string',
    short: 'C',
    value: '<n>',
    description: 'stop each publisher after n messages (0: run for --duration)',
    default: '0',
  },
  exchange: {
    type: 'string',
    short: 'e',
    value: '<name>',
    description: "publish through this exchange (declared; queues bound to it) instead of ''",
  },
  'exchange-type': {
    type: 'string',
    short: 't',
    value: '<type>',
    description: 'direct, fanout or topic',
    default: 'direct',
  },
  threads: {
    type: 'string',
    value: '<n>',
    description: 'worker threads for the agents (0: the main thread)',
    default: 'one per agent, at most 2',
  },
  'broker-pid': {
    type: 'string',
    value: '<pid>',
    description: 'process whose RSS and CPU to report',
    default: "the local listener of the URL's port",
  },
  json: { type: 'string', value: '<file>', description: 'also write the result as JSON' },
  rpc: {
    type: 'string',
    value: '<n>',
    description:
      'instead: RPC round trips (direct reply-to, echo server) with n calls in flight; uses --size, --duration, --warmup',
  },
  quiet: { type: 'boolean', description: 'no progress line every second' },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};

export const BENCH_HELP =
  formatHelp(
    'warren bench [options]\n       warren bench suite [options]',
    'Load an AMQP broker with publishers and consumers and report throughput, latency\n' +
      "percentiles (publish to delivery, publish to confirm) and the broker's RSS and CPU\n" +
      "(when it runs on this machine). 'warren bench suite' runs the fixed scenario set\n" +
      "against Warren and RabbitMQ and prints the ratios (see 'warren bench suite --help').",
    FLAGS,
  ) +
  '\nExamples:\n' +
  '  warren bench -x 1 -y 1 -s 1024 -z 30\n' +
  '  warren bench --persistent -c 1000 -u amqp://guest:guest@127.0.0.1:5672\n' +
  '  warren bench -e bench.fanout -t fanout -q 4 -y 4\n';

function num(
  values: Record<string, string | boolean | undefined>,
  name: string,
  min: number,
  max: number,
): number | undefined {
  const v = values[name];
  return typeof v === 'string' ? intFlag(name, v, min, max) : undefined;
}

/** Flags to load options; undefined for help. */
export function benchOptions(argv: string[]): LoadOptions | null {
  const { values, positionals } = parseFlags('bench', argv, FLAGS);
  if (values.help === true) return null;
  if (positionals.length > 0) {
    throw new UsageError(
      `unexpected argument '${positionals[0]}' for 'warren bench' (see 'warren bench --help')`,
    );
  }
  const o: Partial<LoadOptions> = {};
  const set = <K extends keyof LoadOptions>(k: K, v: LoadOptions[K] | undefined): void => {
    if (v !== undefined) o[k] = v;
  };
  if (typeof values.url === 'string') o.url = values.url;
  set('publishers', num(values, 'publishers', 0, 10_000));
  set('consumers', num(values, 'consumers', 0, 10_000));
  set('queues', num(values, 'queues', 1, 10_000));
  set('size', num(values, 'size', 0, 512 * 1024 * 1024));
  set('confirm', num(values, 'confirm', 0, 1_000_000));
  set('prefetch', num(values, 'prefetch', 0, 65_535));
  set('duration', num(values, 'duration', 1, 86_400));
  set('warmup', num(values, 'warmup', 0, 3600));
  set('rate', num(values, 'rate', 0, 100_000_000));
  set('messages', num(values, 'messages', 0, Number.MAX_SAFE_INTEGER));
  set('threads', num(values, 'threads', 0, 64));
  set('brokerPid', num(values, 'broker-pid', 1, 2 ** 31));
  if (values.persistent === true) o.persistent = true;
  if (values.durable === true) o.durable = true;
  if (typeof values.ack === 'string') {
    if (values.ack !== 'manual' && values.ack !== 'auto') {
      throw new UsageError(`--ack must be 'manual' or 'auto', got '${values.ack}'`);
    }
    o.ack = values.ack;
  }
  if (typeof values.exchange === 'string') o.exchange = values.exchange;
  const type = values['exchange-type'];
  if (typeof type === 'string') {
    if (type !== 'direct' && type !== 'fanout' && type !== 'topic') {
      throw new UsageError(`--exchange-type must be direct, fanout or topic, got '${type}'`);
    }
    o.exchangeType = type;
  }
  o.progress = values.quiet !== true;
  if ((o.publishers ?? D.publishers) === 0 && (o.consumers ?? D.consumers) === 0) {
    throw new UsageError('nothing to run: --publishers and --consumers are both 0');
  }
  return loadOptions(o);
}

const SUITE_FLAGS: Record<string, FlagSpec> = {
  'rabbitmq-url': {
    type: 'string',
    value: '<amqp-url>',
    description: 'the RabbitMQ to compare with',
    default: 'amqp://guest:guest@127.0.0.1:5672',
  },
  'no-rabbitmq': { type: 'boolean', description: 'measure Warren alone' },
  management: {
    type: 'boolean',
    description:
      "run Warren's management server (default: only when RabbitMQ's management plugin answers)",
  },
  only: { type: 'string', value: '<ids>', description: 'comma-separated scenario ids to run' },
  skip: {
    type: 'string',
    value: '<ids>',
    description: 'comma-separated scenario ids to leave out',
  },
  rounds: {
    type: 'string',
    value: '<n>',
    description: 'rounds of each repeatable scenario (median)',
    default: '3',
  },
  duration: {
    type: 'string',
    value: '<seconds>',
    description: 'measured time per throughput run',
    default: '10',
  },
  queued: {
    type: 'string',
    value: '<n>',
    description: 'messages in the deep-queue scenario',
    default: '1000000',
  },
  connections: {
    type: 'string',
    value: '<n>',
    description: 'idle connections in the connection scenario',
    default: '1000',
  },
  quick: {
    type: 'boolean',
    description: 'a fast smoke run: 1 round, 2 s, small counts (numbers not comparable)',
  },
  out: {
    type: 'string',
    value: '<dir>',
    description: 'where the JSON and Markdown results go',
    default: 'bench/results',
  },
  profile: {
    type: 'boolean',
    description: 'run Warren under node --cpu-prof and print its top self-time functions',
  },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};

export const SUITE_HELP = formatHelp(
  'warren bench suite [options]',
  'Run the fixed scenario set against Warren (a child process started from this CLI, with a\n' +
    'fresh data directory) and the RabbitMQ at --rabbitmq-url, one after the other with the same\n' +
    "client (Warren's), and print a table of Warren / RabbitMQ ratios against the targets.\n" +
    `Scenarios: ${SCENARIO_IDS.join(', ')}.`,
  SUITE_FLAGS,
);

/** `warren bench suite` flags to suite options; null for help. */
export function suiteOptions(argv: string[]): SuiteOptions | null {
  const { values, positionals } = parseFlags('bench suite', argv, SUITE_FLAGS);
  if (values.help === true) return null;
  if (positionals.length > 0) {
    throw new UsageError(
      `unexpected argument '${positionals[0]}' for 'warren bench suite' (see 'warren bench suite --help')`,
    );
  }
  const quick = values.quick === true;
  const int = (name: string, min: number, max: number, dflt: number): number => {
    const v = values[name];
    return typeof v === 'string' ? intFlag(name, v, min, max) : dflt;
  };
  const ids = (name: string): string[] => {
    const v = values[name];
    if (typeof v !== 'string') return [];
    const list = v
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x !== '');
    for (const id of list) {
      if (!SCENARIO_IDS.includes(id)) {
        throw new UsageError(
          `unknown scenario '${id}' in --${name}; the scenarios are ${SCENARIO_IDS.join(', ')}`,
        );
      }
    }
    return list;
  };
  return {
    rabbitmqUrl:
      values['no-rabbitmq'] === true
        ? null
        : typeof values['rabbitmq-url'] === 'string'
          ? values['rabbitmq-url']
          : 'amqp://guest:guest@127.0.0.1:5672',
    only: ids('only'),
    skip: ids('skip'),
    rounds: int('rounds', 1, 100, quick ? 1 : 3),
    quick,
    outDir: typeof values.out === 'string' ? values.out : 'bench/results',
    profile: values.profile === true,
    management: values.management === true,
    settings: {
      duration: int('duration', 1, 3600, quick ? 2 : 10),
      warmup: quick ? 0 : 2,
      queued: int('queued', 1000, 100_000_000, quick ? 20_000 : 1_000_000),
      connections: int('connections', 1, 100_000, quick ? 50 : 1000),
      largeMessages: quick ? 1 : 5,
    },
  };
}

export async function runBench(argv: string[]): Promise<number> {
  if (argv[0] === 'suite') {
    const so = suiteOptions(argv.slice(1));
    if (so === null) {
      process.stdout.write(SUITE_HELP);
      return 0;
    }
    return runSuite(so);
  }
  const o = benchOptions(argv);
  if (o === null) {
    process.stdout.write(`${BENCH_HELP}\n${SUITE_HELP}`);
    return 0;
  }
  const { rpc, json } = parseFlags('bench', argv, FLAGS).values;
  const jsonFile = typeof json === 'string' ? json : null;
  if (typeof rpc === 'string') return benchRpc(o, intFlag('rpc', rpc, 1, 10_000), jsonFile);
  process.stdout.write(`${describe(o)}\n`);
  const r = await runLoad(o);
  process.stdout.write(report(o, r));
  if (jsonFile !== null) {
    writeFileSync(
      jsonFile,
      JSON.stringify({ options: { ...o, url: redact(o.url) }, result: r }, null, 2) + '\n',
    );
  }
  return r.errors.length > 0 ? 1 : 0;
}

async function benchRpc(
  o: LoadOptions,
  concurrency: number,
  jsonFile: string | null,
): Promise<number> {
  process.stdout.write(
    `warren bench: RPC round trips, ${concurrency} in flight, ${o.size} B, ${o.duration} s (+${o.warmup} s warm-up) against ${redact(o.url)}\n`,
  );
  let r;
  try {
    r = await runRpc({
      url: o.url,
      concurrency,
      size: o.size,
      warmup: o.warmup,
      duration: o.duration,
      brokerPid: o.brokerPid ?? localListener(o.url),
    });
  } catch (err) {
    process.stderr.write(`warren bench: the RPC run failed: ${(err as Error).message}\n`);
    return 1;
  }
  process.stdout.write(
    `calls        ${fmtInt(r.callsPerSecond)}/s (${fmtInt(r.calls)})\n` +
      `round trip   ${fmtLatency(r.latency)}\n` +
      (r.brokerCpu !== null ? `broker       CPU ${r.brokerCpu.toFixed(0)}% of a core\n` : '') +
      (r.brokerRss !== null ? `broker       RSS ${fmtMiB(r.brokerRss)} at the end\n` : ''),
  );
  if (jsonFile !== null) {
    writeFileSync(
      jsonFile,
      JSON.stringify(
        { options: { ...o, url: redact(o.url), rpc: concurrency }, result: r },
        null,
        2,
      ) + '\n',
    );
  }
  return r.calls > 0 ? 0 : 1;
}

function describe(o: LoadOptions): string {
  return (
    `warren bench: ${o.publishers} publisher(s), ${o.consumers} consumer(s), ${o.queues} queue(s), ` +
    `${o.size} B, ${o.confirm > 0 ? `confirms (${o.confirm} in flight)` : 'no confirms'}, ` +
    `${o.persistent ? 'persistent' : 'transient'}, prefetch ${o.prefetch}, ${o.ack} acks, ` +
    (o.messages > 0
      ? `${o.messages} messages per publisher`
      : `${o.duration} s (+${o.warmup} s warm-up)`) +
    (o.rate > 0 ? `, ${o.rate} msg/s per publisher` : '') +
    ` against ${redact(o.url)}`
  );
}

function report(o: LoadOptions, r: LoadResult): string {
  const lines = [
    `measured     ${r.seconds.toFixed(1)} s`,
    `published    ${fmtInt(r.publishRate)} msg/s (${fmtInt(r.published)})`,
  ];
  if (o.confirm > 0)
    lines.push(`confirmed    ${fmtInt(r.confirmRate)} msg/s (${fmtInt(r.confirmed)})`);
  if (o.consumers > 0)
    lines.push(`consumed     ${fmtInt(r.consumeRate)} msg/s (${fmtInt(r.consumed)})`);
  if (o.consumers > 0) lines.push(`latency      ${fmtLatency(r.latency)}  publish -> delivery`);
  if (o.confirm > 0) lines.push(`confirm lat. ${fmtLatency(r.confirmLatency)}  publish -> confirm`);
  const b = r.broker;
  lines.push(
    b === null
      ? 'broker       RSS and CPU unknown (not on this machine, or /proc not readable; see --broker-pid)'
      : `broker       pid ${b.pid}: RSS ${fmtMiB(b.rssEnd)} (start ${fmtMiB(b.rssStart)}, peak ${fmtMiB(b.rssPeak)})` +
          (b.cpu !== null ? `, CPU ${b.cpu.toFixed(0)}% of a core` : ''),
  );
  lines.push(
    `generator    CPU ${r.generatorCpu.toFixed(0)}% of a core (${o.threads === 0 ? 'main thread' : `${o.threads} worker thread(s)`})`,
  );
  if (r.machineCpu !== null) {
    const other = r.machineCpu - r.generatorCpu - (b?.cpu ?? 0);
    lines.push(
      `machine      CPU ${r.machineCpu.toFixed(0)}% of a core (${cpus().length} cores)` +
        (b?.cpu !== undefined && b.cpu !== null
          ? `; other processes ${Math.max(0, other).toFixed(0)}%` +
            (other > 20 ? ' (the machine was not quiet: numbers are skewed)' : '')
          : ''),
    );
  }
  for (const e of r.errors) lines.push(`error        ${e}`);
  return lines.join('\n') + '\n';
}
