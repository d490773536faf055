import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import type { BrokerOptions, LogLevelName } from '../broker/index.js';
import { UsageError, closest } from './usage-error.js';

/** What a config file may set: the broker's options plus the management port. */
export interface FileConfig extends BrokerOptions {
  managementPort?: number;
}

const KEYS = {
  port: 'port',
  host: 'string',
  managementPort: 'port',
  dataDir: 'string',
  heartbeat: 'integer',
  frameMax: 'integer',
  channelMax: 'integer',
  maxMessageSize: 'integer',
  handshakeTimeout: 'integer',
  logLevel: 'logLevel',
  loopbackUsers: 'strings',
  defaultUser: 'user',
  tls: 'tls',
  maxConnections: 'integer',
  maxQueuesPerVhost: 'integer',
  memoryHighWatermark: 'memory',
  memoryBudget: 'integer',
  diskFreeLimit: 'integer',
} as const;

/** Keys of the `tls` object and what each must be. */
const TLS_KEYS = {
  port: 'port',
  cert: 'string',
  key: 'string',
  ca: 'string',
  verifyPeer: 'boolean',
  failIfNoPeerCert: 'boolean',
} as const;

const LOG_LEVELS: readonly LogLevelName[] = ['debug', 'info', 'warn', 'error', 'silent'];

/**
 * Read a JSON config file. Every problem (unreadable, not JSON, unknown key, wrong type) is a
 * UsageError that names the file, the key and what would be accepted.
 */
export function readConfigFile(path: string): FileConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.message;
    throw new UsageError(`cannot read config file '${path}': ${why}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`config file '${path}' is not valid JSON: ${(err as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new UsageError(`config file '${path}' must hold a JSON object like {"port": 5672}`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    const kind = (KEYS as Record<string, string>)[key];
    if (kind === undefined) {
      const hint = closest(key, Object.keys(KEYS));
      throw new UsageError(
        `config file '${path}': unknown key '${key}'` +
          (hint !== undefined
            ? `; did you mean '${hint}'?`
            : `; known keys: ${Object.keys(KEYS).join(', ')}`),
      );
    }
    out[key] = checkValue(path, key, kind, value);
  }
  return out;
}

function checkValue(path: string, key: string, kind: string, value: unknown): unknown {
  const bad = (want: string): UsageError =>
    new UsageError(`config file '${path}': '${key}' must be ${want}, got ${JSON.stringify(value)}`);
  switch (kind) {
    case 'port':
      if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 65535) {
        throw bad('a port number from 0 to 65535');
      }
      return value;
    case 'integer':
      if (!Number.isInteger(value) || (value as number) < 0) throw bad('a non-negative integer');
      return value;
    case 'string':
      if (typeof value !== 'string' || value === '') throw bad('a non-empty string');
      return value;
    case 'logLevel':
      if (typeof value !== 'string' || !LOG_LEVELS.includes(value as LogLevelName)) {
        throw bad(`one of ${LOG_LEVELS.join(', ')}`);
      }
      return value;
    case 'strings':
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
        throw bad('an array of user names');
      }
      return value;
    case 'user': {
      if (value === false) return false;
      const u = value as { name?: unknown; password?: unknown } | null;
      if (
        u === null ||
        typeof u !== 'object' ||
        typeof u.name !== 'string' ||
        typeof u.password !== 'string'
      ) {
        throw bad('false or {"name": "...", "password": "..."}');
      }
      return { name: u.name, password: u.password };
    }
    case 'memory':
      // RabbitMQ's vm_memory_high_watermark: a fraction of the machine's memory, or bytes.
      if (typeof value !== 'number' || !(value > 0)) {
        throw bad('a fraction of the memory (e.g. 0.4) or a number of bytes');
      }
      return value <= 1 ? Math.floor(totalmem() * value) : Math.floor(value);
    case 'boolean':
      if (typeof value !== 'boolean') throw bad('true or false');
      return value;
    case 'tls': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw bad('an object like {"port": 5671, "cert": "server.pem", "key": "server.key"}');
      }
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        const kind2 = (TLS_KEYS as Record<string, string>)[k];
        if (kind2 === undefined) {
          throw new UsageError(
            `config file '${path}': unknown key 'tls.${k}'; known keys: ${Object.keys(TLS_KEYS).join(', ')}`,
          );
        }
        out[k] = checkValue(path, `tls.${k}`, kind2, v);
      }
      return out;
    }
    default:
      return value;
  }
}
