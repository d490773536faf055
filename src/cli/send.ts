import { basename } from 'node:path';
import { connect } from '../client/index.js';
import type { Connection } from '../client/index.js';
import { TransferEndpoint, TransferError, TransferErrorCode } from '../transfer/index.js';
import { formatHelp, intFlag, parseFlags } from './args.js';
import type { FlagSpec } from './args.js';
import { ProgressBar, formatBytes } from './progress-bar.js';
import { UsageError } from './usage-error.js';

/** Where `send` and `receive` connect unless told otherwise. */
export const DEFAULT_TRANSFER_URL = 'amqp://guest:guest@localhost:5672';

const FLAGS: Record<string, FlagSpec> = {
  to: {
    type: 'string',
    short: 't',
    value: '<queue>',
    description: 'queue to offer the file on (declared durable if it does not exist)',
  },
  url: {
    type: 'string',
    short: 'u',
    value: '<url>',
    description: 'broker to go through, Warren or RabbitMQ',
    default: `$WARREN_URL or ${DEFAULT_TRANSFER_URL}`,
  },
  name: { type: 'string', value: '<name>', description: 'name to offer (default: the file name)' },
  'chunk-size': {
    type: 'string',
    value: '<bytes>',
    description: 'bytes per chunk',
    default: '65536',
  },
  window: {
    type: 'string',
    value: '<chunks>',
    description: 'most chunks a receiver may have in flight (what a stream keeps buffered)',
    default: '128',
  },
  'accept-timeout': {
    type: 'string',
    value: '<seconds>',
    description: 'give up if no receiver starts within this time',
    default: '300',
  },
  timeout: {
    type: 'string',
    value: '<seconds>',
    description: 'give up if the receiver is silent this long',
    default: '60',
  },
  quiet: { type: 'boolean', short: 'q', description: 'no progress output' },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};

export const SEND_HELP = formatHelp(
  'warren send <file> --to <queue> [options]',
  `Offer a file (or '-' for standard input) on a queue and send it, in chunks the receiver
pulls ('warren receive --from <queue>'), through Warren or RabbitMQ. Memory stays bounded
whatever the file's size; a dropped connection resumes. Progress goes to standard error
(a bar on a terminal, a line a second otherwise); the summary to standard output.`,
  FLAGS,
);

/** `warren send`: exit 0 once the receiver verified the file, 1 on failure, 130 on Ctrl-C. */
export async function runSend(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags('send', argv, FLAGS);
  if (values.help === true) {
    process.stdout.write(SEND_HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new UsageError(
      `'warren send' takes one file ('-' for standard input), got ${positionals.length} (see 'warren send --help')`,
    );
  }
  const file = positionals[0]!;
  const to = values.to as string | undefined;
  if (to === undefined || to === '') {
    throw new UsageError("'warren send' needs --to <queue> (see 'warren send --help')");
  }
  const chunkSize = intFlag('chunk-size', str(values['chunk-size'], '65536'), 1, 64 * 1024 * 1024);
  const window = intFlag('window', str(values.window, '128'), 1, 4096);
  const acceptTimeout = intFlag(
    'accept-timeout',
    str(values['accept-timeout'], '300'),
    1,
    2_000_000,
  );
  const timeout = intFlag('timeout', str(values.timeout, '60'), 1, 2_000_000);
  const url = transferUrl(values.url);
  const name = (values.name as string | undefined) ?? (file === '-' ? undefined : basename(file));
  const label = name ?? 'standard input';

  let conn: Connection;
  try {
    conn = await connect(url, { connectionName: 'warren send' });
  } catch (err) {
    process.stderr.write(`warren: error: ${(err as Error).message}\n`);
    return 1;
  }
  const ac = new AbortController();
  const onSignal = (): void => ac.abort();
  process.once('SIGINT', onSignal);
  const bar = new ProgressBar(process.stderr, label);
  let ep: TransferEndpoint | null = null;
  try {
    ep = await TransferEndpoint.open(conn);
    const t = await ep.send(to, file === '-' ? process.stdin : { path: file }, {
      name,
      chunkSize,
      window,
      acceptTimeout: acceptTimeout * 1000,
      timeout: timeout * 1000,
      signal: ac.signal,
    });
    if (values.quiet !== true) {
      process.stderr.write(`offered ${label} on queue '${to}'; waiting for a receiver\n`);
      t.on('progress', (p) => bar.update(p));
    }
    const s = await t.done;
    bar.finish();
    process.stdout.write(
      `sent ${label} (${formatBytes(s.bytes)}) in ${(s.elapsed / 1000).toFixed(1)} s, ${formatBytes(s.rate)}/s, sha256 ${s.sha256}\n`,
    );
    return 0;
  } catch (err) {
    bar.finish();
    process.stderr.write(`warren: error: ${(err as Error).message}\n`);
    return ac.signal.aborted &&
      err instanceof TransferError &&
      err.code === TransferErrorCode.Aborted
      ? 130
      : 1;
  } finally {
    process.off('SIGINT', onSignal);
    await ep?.close();
    await conn.close();
  }
}

function str(v: string | boolean | undefined, fallback: string): string {
  return typeof v === 'string' ? v : fallback;
}

/** --url, else $WARREN_URL, else localhost. */
export function transferUrl(flag: string | boolean | undefined): string {
  if (typeof flag === 'string' && flag !== '') return flag;
  const env = process.env.WARREN_URL;
  return env !== undefined && env !== '' ? env : DEFAULT_TRANSFER_URL;
}
