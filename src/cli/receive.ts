import { statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { connect } from '../client/index.js';
import type { Connection } from '../client/index.js';
import { TransferEndpoint } from '../transfer/index.js';
import type { IncomingTransfer, OfferListener, TransferSummary } from '../transfer/index.js';
import { formatHelp, intFlag, parseFlags } from './args.js';
import type { FlagSpec } from './args.js';
import { ProgressBar, formatBytes } from './progress-bar.js';
import { DEFAULT_TRANSFER_URL, transferUrl } from './send.js';
import { UsageError } from './usage-error.js';

const FLAGS: Record<string, FlagSpec> = {
  from: {
    type: 'string',
    short: 'f',
    value: '<queue>',
    description: 'queue to take offers from (declared durable if it does not exist)',
  },
  out: {
    type: 'string',
    short: 'o',
    value: '<file|dir|->',
    description:
      "where to write: a file, a directory (the sender's file name), or - for standard output",
    default: 'the current directory',
  },
  url: {
    type: 'string',
    short: 'u',
    value: '<url>',
    description: 'broker to go through, Warren or RabbitMQ',
    default: `$WARREN_URL or ${DEFAULT_TRANSFER_URL}`,
  },
  count: {
    type: 'string',
    short: 'n',
    value: '<n>',
    description: 'receive this many transfers, one after the other',
    default: '1',
  },
  wait: {
    type: 'string',
    short: 'w',
    value: '<seconds>',
    description: 'give up if no transfer is offered within this time',
    default: 'no limit',
  },
  window: {
    type: 'string',
    value: '<chunks>',
    description: 'chunks requested ahead of what is written',
    default: '32',
  },
  timeout: {
    type: 'string',
    value: '<seconds>',
    description: 'give up if the sender is silent this long',
    default: '60',
  },
  quiet: { type: 'boolean', short: 'q', description: 'no progress output' },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};

export const RECEIVE_HELP = formatHelp(
  'warren receive --from <queue> [--out <file|dir|->] [options]',
  `Take a transfer offered on a queue ('warren send <file> --to <queue>') and pull it in
chunks, verifying each chunk's CRC-32 and the whole SHA-256. A file is written under a
temporary name and renamed once it verified. Progress goes to standard error; the summary
to standard output (standard error with --out -).`,
  FLAGS,
);

/** `warren receive`: exit 0 once every transfer verified, 1 on failure, 130 on Ctrl-C. */
export async function runReceive(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags('receive', argv, FLAGS);
  if (values.help === true) {
    process.stdout.write(RECEIVE_HELP);
    return 0;
  }
  if (positionals.length > 0) {
    throw new UsageError(
      `'warren receive' takes no file argument (got '${positionals[0]}'); use --out (see 'warren receive --help')`,
    );
  }
  const from = values.from as string | undefined;
  if (from === undefined || from === '') {
    throw new UsageError("'warren receive' needs --from <queue> (see 'warren receive --help')");
  }
  const count = intFlag(
    'count',
    typeof values.count === 'string' ? values.count : '1',
    1,
    1_000_000,
  );
  const wait =
    typeof values.wait === 'string' ? intFlag('wait', values.wait, 1, 2_000_000) * 1000 : null;
  const window = intFlag(
    'window',
    typeof values.window === 'string' ? values.window : '32',
    1,
    4096,
  );
  const timeout =
    intFlag('timeout', typeof values.timeout === 'string' ? values.timeout : '60', 1, 2_000_000) *
    1000;
  const out = values.out as string | undefined;
  const outIsDir = out === undefined || out.endsWith('/') || isDirectory(out);
  if (count > 1 && !outIsDir) {
    throw new UsageError(`--out must be a directory when --count is more than 1 (got '${out}')`);
  }
  const quiet = values.quiet === true;
  const say = out === '-' ? process.stderr : process.stdout;

  let conn: Connection;
  try {
    conn = await connect(transferUrl(values.url), { connectionName: 'warren receive' });
  } catch (err) {
    process.stderr.write(`warren: error: ${(err as Error).message}\n`);
    return 1;
  }
  let interrupted = false;
  let current: IncomingTransfer | null = null;
  let listener: OfferListener | null = null;
  const onSignal = (): void => {
    interrupted = true;
    current?.abort('the receiver was interrupted');
    void listener?.close();
  };
  process.once('SIGINT', onSignal);
  let ep: TransferEndpoint | null = null;
  try {
    ep = await TransferEndpoint.open(conn, { window, timeout });
    listener = await ep.accept(from);
    for (let i = 0; i < count; i++) {
      if (!quiet && i === 0) process.stderr.write(`waiting for a transfer on queue '${from}'\n`);
      const inc = await nextOffer(listener, wait, from);
      if (inc === null) return interrupted ? 130 : 1;
      current = inc;
      const name = fileName(inc);
      const bar = new ProgressBar(process.stderr, name);
      if (!quiet) inc.on('progress', (p) => bar.update(p));
      let summary: TransferSummary;
      let where: string;
      try {
        if (out === '-') {
          await pipeline(inc.stream(), process.stdout);
          summary = await inc.done;
          where = 'standard output';
        } else {
          where = outIsDir ? join(out ?? '.', name) : out;
          summary = await inc.toFile(where);
          where = resolve(where);
        }
      } finally {
        bar.finish();
      }
      say.write(
        `received ${name} (${formatBytes(summary.bytes)}) in ${(summary.elapsed / 1000).toFixed(1)} s, ${formatBytes(summary.rate)}/s, sha256 ${summary.sha256}, to ${where}\n`,
      );
    }
    return 0;
  } catch (err) {
    process.stderr.write(`warren: error: ${(err as Error).message}\n`);
    return interrupted ? 130 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    await listener?.close().catch(() => undefined);
    await ep?.close();
    await conn.close();
  }
}

/** The next offer, or null (with a message) when none came in time or listening stopped. */
async function nextOffer(
  listener: OfferListener,
  wait: number | null,
  queue: string,
): Promise<IncomingTransfer | null> {
  let timedOut = false;
  const timer =
    wait === null
      ? null
      : setTimeout(() => {
          timedOut = true;
          void listener.close();
        }, wait);
  try {
    const r = await listener.next();
    if (r.done !== true) return r.value;
    process.stderr.write(
      timedOut
        ? `warren: error: no transfer was offered on queue '${queue}' within ${wait! / 1000} s\n`
        : `warren: error: stopped listening on queue '${queue}'\n`,
    );
    return null;
  } finally {
    if (timer !== null) clearTimeout(timer);
  }
}

/** The sender's name for the payload, made safe to use as a file name here. */
function fileName(t: IncomingTransfer): string {
  const n = t.name === undefined ? '' : basename(t.name.replace(/\\/g, '/'));
  return n === '' || n === '.' || n === '..' || n.includes('\0') ? `transfer-${t.id}` : n;
}

function isDirectory(path: string): boolean {
  if (path === '-') return false;
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
