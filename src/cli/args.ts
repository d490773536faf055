import { parseArgs } from 'node:util';
import { UsageError, closest } from './usage-error.js';

export interface FlagSpec {
  type: 'string' | 'boolean';
  short?: string;
  description: string;
  /** Shown in help, e.g. "<port>". */
  value?: string;
  default?: string;
}

/**
 * Parse flags strictly: an unknown flag or a missing value is a UsageError naming the flag, with
 * a suggestion when it looks like a typo of a known one.
 */
export function parseFlags(
  command: string,
  argv: string[],
  flags: Record<string, FlagSpec>,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [name, spec] of Object.entries(flags)) {
    options[name] =
      spec.short === undefined ? { type: spec.type } : { type: spec.type, short: spec.short };
  }
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options,
      strict: true,
      allowPositionals: true,
    });
    return { values: values, positionals };
  } catch (err) {
    const e = err as { code?: string; message: string };
    const unknown = /Unknown option '(-{1,2}[^']+)'/.exec(e.message);
    if (unknown !== null) {
      const flag = unknown[1]!;
      const hint = closest(flag.replace(/^-+/, ''), Object.keys(flags));
      throw new UsageError(
        `unknown flag '${flag}' for 'warren ${command}'` +
          (hint !== undefined ? `; did you mean --${hint}?` : '') +
          ` (see 'warren ${command} --help')`,
      );
    }
    const missing = /Option '(?:-\w, )?(--[\w-]+) <value>' argument missing/.exec(e.message);
    if (missing !== null) {
      throw new UsageError(`flag ${missing[1]} needs a value (see 'warren ${command} --help')`);
    }
    throw new UsageError(`${e.message} (see 'warren ${command} --help')`);
  }
}

/** An integer flag within bounds, or a UsageError that says what is allowed. */
export function intFlag(name: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw.trim())) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got '${raw}'`);
  }
  const n = Number(raw);
  if (n < min || n > max) {
    throw new UsageError(`--${name} must be from ${min} to ${max}, got ${n}`);
  }
  return n;
}

export function formatHelp(
  usage: string,
  summary: string,
  flags: Record<string, FlagSpec>,
): string {
  const rows = Object.entries(flags).map(([name, f]) => {
    const left = `${f.short !== undefined ? `-${f.short}, ` : '    '}--${name}${f.value !== undefined ? ` ${f.value}` : ''}`;
    const right = f.description + (f.default !== undefined ? ` (default: ${f.default})` : '');
    return [left, right] as const;
  });
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  return [
    `Usage: ${usage}`,
    '',
    summary,
    '',
    'Options:',
    ...rows.map(([l, r]) => `  ${l.padEnd(width)}${r}`),
    '',
  ].join('\n');
}
