import { resolve } from 'node:path';
import { Broker } from '../broker/index.js';
import type { LogLevelName, TlsOptions } from '../broker/index.js';
import { startManagement } from '../management/index.js';
import type { ManagementServer } from '../management/index.js';
import { VERSION } from '../version.js';
import { formatHelp, intFlag, parseFlags } from './args.js';
import type { FlagSpec } from './args.js';
import { readConfigFile } from './config-file.js';
import type { FileConfig } from './config-file.js';
import { UsageError } from './usage-error.js';

const FLAGS: Record<string, FlagSpec> = {
  port: {
    type: 'string',
    short: 'p',
    value: '<port>',
    description: 'AMQP port (0 picks a free one)',
    default: '5672',
  },
  host: {
    type: 'string',
    value: '<address>',
    description: 'interface to listen on',
    default: 'all',
  },
  'management-port': {
    type: 'string',
    value: '<port>',
    description: 'management HTTP API, web UI and /metrics port (0 picks a free one)',
    default: '15672',
  },
  'no-management': {
    type: 'boolean',
    description: 'do not start the management HTTP server',
  },
  'data-dir': {
    type: 'string',
    short: 'd',
    value: '<dir>',
    description: 'where durable state is kept',
    default: './data',
  },
  config: {
    type: 'string',
    short: 'c',
    value: '<file>',
    description: 'JSON config file (flags override it)',
  },
  'log-level': {
    type: 'string',
    value: '<level>',
    description: 'debug, info, warn, error or silent',
    default: 'info',
  },
  'tls-port': {
    type: 'string',
    value: '<port>',
    description: 'amqps (AMQP over TLS) port, served when --tls-cert and --tls-key are given',
    default: '5671',
  },
  'tls-cert': {
    type: 'string',
    value: '<file>',
    description: "the server's TLS certificate (chain), PEM",
  },
  'tls-key': { type: 'string', value: '<file>', description: "the certificate's private key, PEM" },
  'tls-ca': {
    type: 'string',
    value: '<file>',
    description: 'CA certificates (PEM) that client certificates are verified against',
  },
  'tls-verify-peer': {
    type: 'boolean',
    description: 'ask clients for a certificate; refuse one that does not verify',
  },
  'tls-fail-if-no-peer-cert': {
    type: 'boolean',
    description: 'with --tls-verify-peer, also refuse clients without a certificate',
  },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};

export const START_HELP = formatHelp(
  'warren start [options]',
  'Start a Warren broker in the foreground. Stop it with Ctrl-C (SIGINT) or SIGTERM.',
  FLAGS,
);

const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'];

/** Resolve flags and config file into broker options (flags win). */
export function startOptions(
  argv: string[],
): FileConfig & { help?: boolean; noManagement?: boolean } {
  const { values, positionals } = parseFlags('start', argv, FLAGS);
  if (values.help === true) return { help: true };
  if (positionals.length > 0) {
    throw new UsageError(
      `unexpected argument '${positionals[0]}' for 'warren start' (see 'warren start --help')`,
    );
  }
  const file: FileConfig = typeof values.config === 'string' ? readConfigFile(values.config) : {};
  const opts: FileConfig & { noManagement?: boolean } = { ...file };
  if (values['no-management'] === true) opts.noManagement = true;
  if (typeof values.port === 'string') opts.port = intFlag('port', values.port, 0, 65535);
  if (typeof values.host === 'string') opts.host = values.host;
  if (typeof values['management-port'] === 'string') {
    opts.managementPort = intFlag('management-port', values['management-port'], 0, 65535);
  }
  if (typeof values['data-dir'] === 'string') opts.dataDir = values['data-dir'];
  if (typeof values['log-level'] === 'string') {
    const level = values['log-level'];
    if (!LOG_LEVELS.includes(level)) {
      throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got '${level}'`);
    }
    opts.logLevel = level as LogLevelName;
  }
  const tls = tlsFlags(values);
  if (tls !== null) opts.tls = { ...(opts.tls ?? {}), ...tls } as TlsOptions;
  return opts;
}

/** The --tls-* flags given (null if none); they override the config file's `tls` keys. */
function tlsFlags(
  values: Record<string, string | boolean | undefined>,
): Partial<TlsOptions> | null {
  const tls: Partial<TlsOptions> = {};
  let any = false;
  if (typeof values['tls-port'] === 'string') {
    tls.port = intFlag('tls-port', values['tls-port'], 0, 65535);
    any = true;
  }
  for (const [flag, key] of [
    ['tls-cert', 'cert'],
    ['tls-key', 'key'],
    ['tls-ca', 'ca'],
  ] as const) {
    const v = values[flag];
    if (typeof v === 'string') {
      tls[key] = v;
      any = true;
    }
  }
  if (values['tls-verify-peer'] === true) tls.verifyPeer = any = true;
  if (values['tls-fail-if-no-peer-cert'] === true) tls.failIfNoPeerCert = any = true;
  return any ? tls : null;
}

export async function runStart(argv: string[]): Promise<number> {
  const opts = startOptions(argv);
  if (opts.help === true) {
    process.stdout.write(START_HELP);
    return 0;
  }
  const { managementPort, noManagement, ...brokerOptions } = opts;
  const broker = new Broker({ dataDir: './data', ...brokerOptions });
  await broker.start();
  let management: ManagementServer | null = null;
  if (noManagement !== true) {
    try {
      management = await startManagement(broker, {
        port: managementPort ?? 15672,
        ...(brokerOptions.host !== undefined ? { host: brokerOptions.host } : {}),
      });
    } catch (err) {
      await broker.stop();
      throw err;
    }
  }
  // The handlers go in before the banner: a script that sends SIGTERM as soon as it reads
  // 'listening' must never meet the default action (the process killed, not stopped).
  const stopped = new Promise<void>((resolveStop) => {
    const stop = (signal: string): void => {
      broker.logger.info(`received ${signal}, shutting down`);
      resolveStop();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  const dataDir =
    broker.config.dataDir === null ? 'none (in memory)' : resolve(broker.config.dataDir);
  process.stdout.write(
    `Warren ${VERSION} is running\n` +
      `  AMQP 0-9-1   amqp://localhost:${broker.port}\n` +
      (broker.config.tls !== null ? `  AMQP TLS     amqps://localhost:${broker.tlsPort}\n` : '') +
      (management !== null ? `  management   ${management.url}\n` : '') +
      `  data dir     ${dataDir}\n` +
      (broker.config.defaultUser !== false
        ? `  default user ${broker.config.defaultUser.name} (works from localhost only)\n`
        : '') +
      `Stop with Ctrl-C.\n`,
  );
  // Print the bound port on its own line for scripts that start with --port 0.
  process.stdout.write(`listening ${broker.port}\n`);
  if (broker.config.tls !== null) process.stdout.write(`tls listening ${broker.tlsPort}\n`);
  if (management !== null) process.stdout.write(`management listening ${management.port}\n`);
  await stopped;
  await management?.stop();
  await broker.stop();
  broker.logger.info('Warren stopped');
  return 0;
}
