#!/usr/bin/env node
import { ConfigError, ListenError } from '../broker/index.js';
import { VERSION } from '../version.js';
import { runCtl } from './ctl.js';
import { START_HELP, runStart } from './start.js';
import { UsageError, closest } from './usage-error.js';

const COMMANDS = ['start', 'ctl', 'bench', 'send', 'receive', 'kv'] as const;

const HELP = `Usage: warren <command> [options]

Warren: an AMQP 0-9-1 message broker (RabbitMQ clients work unchanged) and
communication middleware for TypeScript.

Commands:
  start     start a broker (AMQP on 5672, management on 15672, data in ./data)
  ctl       list queues, exchanges, ...; add users; import/export definitions
            (talks to the management HTTP API; see 'warren ctl --help')
  bench     load a broker (Warren, RabbitMQ, ...) and report throughput, latency
            and RSS; 'warren bench suite' compares Warren with RabbitMQ
  send      send a file through a broker to 'warren receive', in chunks, with progress
  receive   receive a file sent with 'warren send' (see 'warren send --help')
  kv        the replicated key-value service: 'warren kv lb|worker|client|bench'

Options:
  -h, --help     show help (also 'warren <command> --help')
  -v, --version  print the version

${START_HELP}`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP);
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === '-v') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  try {
    switch (command) {
      case 'start':
        return await runStart(rest);
      case 'ctl':
        return await runCtl(rest);
      case 'bench': {
        // Loaded on demand: the load generator is not needed to start a broker.
        const code = await (await import('./bench.js')).runBench(rest);
        // A load generator that failed half-way may leave a socket or a worker behind: the
        // report is written, so nothing that is left may keep the command from ending.
        setTimeout(() => process.exit(code), 2000).unref();
        return code;
      }
      case 'send':
        return await (await import('./send.js')).runSend(rest);
      case 'receive':
        return await (await import('./receive.js')).runReceive(rest);
      case 'kv':
        return await (await import('./kv.js')).runKv(rest);
      default: {
        const hint = closest(command, COMMANDS);
        throw new UsageError(
          `unknown command '${command}'` +
            (hint !== undefined ? `; did you mean '${hint}'?` : '') +
            " (see 'warren --help')",
        );
      }
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`warren: error: ${err.message}\n`);
      return 2;
    }
    if (err instanceof ListenError) {
      process.stderr.write(`warren: error: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `warren: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 1;
  },
);
