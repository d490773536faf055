import { readFileSync, writeFileSync } from 'node:fs';
import { formatHelp, parseFlags } from './args.js';
import type { FlagSpec } from './args.js';
import { CtlError, ManagementClient, formatTable } from './ctl-client.js';
import { UsageError, closest } from './usage-error.js';

const FLAGS: Record<string, FlagSpec> = {
  url: {
    type: 'string',
    value: '<url>',
    description: 'management API to talk to',
    default: 'http://localhost:15672',
  },
  user: { type: 'string', short: 'u', value: '<name>', description: 'user name', default: 'guest' },
  password: {
    type: 'string',
    value: '<password>',
    description: 'password',
    default: 'guest',
  },
  vhost: { type: 'string', short: 'p', value: '<vhost>', description: 'virtual host' },
  tags: {
    type: 'string',
    value: '<tags>',
    description: 'add-user: comma-separated tags (administrator, monitoring, management)',
  },
  json: { type: 'boolean', description: 'print JSON instead of a table' },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};

const SUBCOMMANDS = {
  list: 'list queues|exchanges|bindings|connections|consumers|users|vhosts|permissions',
  'add-user': 'add-user <name> <password> [--tags administrator]',
  'set-permissions': 'set-permissions <user> <configure> <write> <read> [--vhost /]',
  'delete-queue': 'delete-queue <name> [--vhost /]',
  'purge-queue': 'purge-queue <name> [--vhost /]',
  'export-definitions': 'export-definitions [file]   (stdout without a file)',
  'import-definitions': 'import-definitions <file>   (- reads stdin)',
} as const;

export const CTL_HELP = formatHelp(
  'warren ctl <subcommand> [arguments] [options]',
  [
    'Inspect and administer a running Warren (or RabbitMQ) through its management HTTP API.',
    '',
    'Subcommands:',
    ...Object.values(SUBCOMMANDS).map((s) => `  ${s}`),
  ].join('\n'),
  FLAGS,
);

/** What `list <what>` shows: API path and table columns. */
const LISTS: Record<string, { path: string; vhostPath: boolean; columns: string[] }> = {
  queues: {
    path: '/queues',
    vhostPath: true,
    columns: ['vhost', 'name', 'messages_ready', 'messages_unacknowledged', 'consumers', 'durable'],
  },
  exchanges: {
    path: '/exchanges',
    vhostPath: true,
    columns: ['vhost', 'name', 'type', 'durable', 'auto_delete', 'internal'],
  },
  bindings: {
    path: '/bindings',
    vhostPath: true,
    columns: ['vhost', 'source', 'destination_type', 'destination', 'routing_key'],
  },
  connections: {
    path: '/connections',
    vhostPath: false,
    columns: ['name', 'user', 'vhost', 'state', 'channels'],
  },
  consumers: {
    path: '/consumers',
    vhostPath: true,
    columns: ['queue.vhost', 'queue.name', 'consumer_tag', 'ack_required', 'prefetch_count'],
  },
  users: { path: '/users', vhostPath: false, columns: ['name', 'tags'] },
  vhosts: { path: '/vhosts', vhostPath: false, columns: ['name', 'messages_ready', 'messages'] },
  permissions: {
    path: '/permissions',
    vhostPath: false,
    columns: ['vhost', 'user', 'configure', 'write', 'read'],
  },
};

/** `warren ctl ...`: returns the exit status; problems are printed as one line. */
export async function runCtl(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags('ctl', argv, FLAGS);
  if (values.help === true || positionals.length === 0) {
    process.stdout.write(CTL_HELP);
    return values.help === true ? 0 : 2;
  }
  const [sub, ...args] = positionals as [string, ...string[]];
  if (!(sub in SUBCOMMANDS)) {
    const hint = closest(sub, Object.keys(SUBCOMMANDS));
    throw new UsageError(
      `unknown ctl subcommand '${sub}'` +
        (hint !== undefined ? `; did you mean '${hint}'?` : '') +
        " (see 'warren ctl --help')",
    );
  }
  const client = new ManagementClient({
    url: (values.url as string | undefined) ?? 'http://localhost:15672',
    user: (values.user as string | undefined) ?? 'guest',
    password: (values.password as string | undefined) ?? 'guest',
  });
  const vhost = values.vhost as string | undefined;
  const json = values.json === true;
  try {
    await dispatch(client, sub as keyof typeof SUBCOMMANDS, args, {
      vhost,
      json,
      tags: values.tags as string | undefined,
    });
    return 0;
  } catch (err) {
    if (err instanceof CtlError) {
      process.stderr.write(`warren: error: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

interface CtlFlags {
  vhost: string | undefined;
  json: boolean;
  tags: string | undefined;
}

function expectArgs(sub: keyof typeof SUBCOMMANDS, args: string[], min: number, max: number): void {
  if (args.length < min || args.length > max) {
    throw new UsageError(`usage: warren ctl ${SUBCOMMANDS[sub]}`);
  }
}

const enc = encodeURIComponent;

async function dispatch(
  client: ManagementClient,
  sub: keyof typeof SUBCOMMANDS,
  args: string[],
  f: CtlFlags,
): Promise<void> {
  const vhost = f.vhost ?? '/';
  const done = (text: string, json: unknown): void => {
    process.stdout.write(f.json ? JSON.stringify(json) + '\n' : text + '\n');
  };
  switch (sub) {
    case 'list': {
      expectArgs(sub, args, 1, 1);
      const what = args[0]!;
      const spec = LISTS[what];
      if (spec === undefined) {
        const hint = closest(what, Object.keys(LISTS));
        throw new UsageError(
          `cannot list '${what}'` +
            (hint !== undefined ? `; did you mean '${hint}'?` : '') +
            `; one of: ${Object.keys(LISTS).join(', ')}`,
        );
      }
      const path =
        f.vhost !== undefined && spec.vhostPath ? `${spec.path}/${enc(f.vhost)}` : spec.path;
      let rows = (await client.request('GET', path)) as Record<string, unknown>[];
      if (f.vhost !== undefined && !spec.vhostPath) {
        rows = rows.filter((r) => r.vhost === undefined || r.vhost === f.vhost);
      }
      process.stdout.write(
        f.json ? JSON.stringify(rows, null, 2) + '\n' : formatTable(rows, spec.columns),
      );
      return;
    }
    case 'add-user': {
      expectArgs(sub, args, 2, 2);
      const [name, password] = args as [string, string];
      await client.request('PUT', `/users/${enc(name)}`, { password, tags: f.tags ?? '' });
      done(`user '${name}' added`, { user: name, added: true });
      return;
    }
    case 'set-permissions': {
      expectArgs(sub, args, 4, 4);
      const [user, configure, write, read] = args as [string, string, string, string];
      await client.request('PUT', `/permissions/${enc(vhost)}/${enc(user)}`, {
        configure,
        write,
        read,
      });
      done(`permissions of '${user}' in vhost '${vhost}' set`, {
        user,
        vhost,
        configure,
        write,
        read,
      });
      return;
    }
    case 'delete-queue': {
      expectArgs(sub, args, 1, 1);
      await client.request('DELETE', `/queues/${enc(vhost)}/${enc(args[0]!)}`);
      done(`queue '${args[0]}' deleted`, { queue: args[0], vhost, deleted: true });
      return;
    }
    case 'purge-queue': {
      expectArgs(sub, args, 1, 1);
      await client.request('DELETE', `/queues/${enc(vhost)}/${enc(args[0]!)}/contents`);
      done(`queue '${args[0]}' purged`, { queue: args[0], vhost, purged: true });
      return;
    }
    case 'export-definitions': {
      expectArgs(sub, args, 0, 1);
      const defs = await client.request('GET', '/definitions');
      const text = JSON.stringify(defs, null, 2) + '\n';
      if (args[0] === undefined || args[0] === '-') {
        process.stdout.write(text);
      } else {
        writeFile(args[0], text);
        done(`definitions written to ${args[0]}`, { file: args[0] });
      }
      return;
    }
    case 'import-definitions': {
      expectArgs(sub, args, 1, 1);
      const file = args[0]!;
      const text = readInput(file);
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch (err) {
        throw new UsageError(`'${file}' is not valid JSON: ${(err as Error).message}`);
      }
      await client.request('POST', '/definitions', doc);
      done(`definitions imported from ${file}`, { file, imported: true });
      return;
    }
  }
}

function readInput(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new UsageError(
      `cannot read '${file}': ${e.code === 'ENOENT' ? 'no such file' : e.message}`,
    );
  }
}

function writeFile(file: string, text: string): void {
  try {
    writeFileSync(file, text);
  } catch (err) {
    throw new UsageError(`cannot write '${file}': ${(err as Error).message}`);
  }
}
