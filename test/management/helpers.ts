/* eslint-disable @typescript-eslint/no-explicit-any -- tests walk JSON answers freely */
import { startManagement } from '../../src/management/index.js';
import type { ManagementServer } from '../../src/management/index.js';
import type { BrokerOptions } from '../../src/broker/index.js';
import { startTestBroker } from '../helpers/broker.js';
import type { TestBroker } from '../helpers/broker.js';

export interface ManagedBroker extends TestBroker {
  management: ManagementServer;
  /** e.g. http://127.0.0.1:40123 (no trailing slash) */
  http: string;
  api: ApiClient;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

export type ApiClient = (
  method: string,
  path: string,
  body?: unknown,
  auth?: { user: string; password: string } | null,
) => Promise<ApiResponse>;

/** A client of a management API at `base`; `auth: null` sends no credentials. */
export function apiClient(base: string, user = 'guest', password = 'guest'): ApiClient {
  return async (method, path, body, auth) => {
    const headers: Record<string, string> = {};
    const creds = auth === undefined ? { user, password } : auth;
    if (creds !== null) {
      headers.authorization =
        'Basic ' + Buffer.from(`${creds.user}:${creds.password}`).toString('base64');
    }
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${base}/api${path}`, {
      method,
      headers,
      ...(body !== undefined
        ? { body: typeof body === 'string' ? body : JSON.stringify(body) }
        : {}),
    });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: res.status, headers: res.headers, body: parsed, text };
  };
}

/** A Warren on ephemeral ports with its management server (sampling every `statsIntervalMs`). */
export async function startManagedBroker(
  options: BrokerOptions = {},
  statsIntervalMs = 200,
): Promise<ManagedBroker> {
  const tb = await startTestBroker(options);
  const management = await startManagement(tb.broker, {
    port: 0,
    host: '127.0.0.1',
    statsIntervalMs,
  });
  const http = `http://127.0.0.1:${management.port}`;
  return {
    ...tb,
    management,
    http,
    api: apiClient(http),
    async stop() {
      await management.stop();
      await tb.stop();
    },
  };
}

/** A JSON value's shape: objects by key, arrays by their first element, leaves by type. */
export type Shape = string | { [key: string]: Shape } | Shape[];

export function shapeOf(v: unknown): Shape {
  if (v === null) return 'null';
  if (Array.isArray(v)) return v.length === 0 ? [] : [shapeOf(v[0])];
  if (typeof v === 'object') {
    const out: Record<string, Shape> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = shapeOf(x);
    return out;
  }
  return typeof v;
}

/**
 * Differences between a reference shape (RabbitMQ's) and ours: paths the reference has that we
 * lack or type differently. `ignore` lists paths (or path prefixes ending in '.') we leave out
 * on purpose; `nullable` lists paths where null on one side matches any type on the other.
 */
export function shapeDiff(
  reference: Shape,
  ours: Shape,
  ignore: readonly string[] = [],
  path = '',
): string[] {
  const skip = (p: string): boolean =>
    ignore.some((i) => (i.endsWith('.') ? p.startsWith(i) : p === i || p.startsWith(`${i}.`)));
  if (typeof reference === 'string' || typeof ours === 'string') {
    if (reference === ours) return [];
    if (reference === 'null' || ours === 'null') return [];
    return [
      `${path || '(root)'}: RabbitMQ has ${JSON.stringify(reference)}, Warren ${JSON.stringify(ours)}`,
    ];
  }
  if (Array.isArray(reference) || Array.isArray(ours)) {
    if (!Array.isArray(reference) || !Array.isArray(ours)) {
      return [`${path}: array on one side only`];
    }
    if (reference.length === 0 || ours.length === 0) return [];
    return shapeDiff(reference[0]!, ours[0]!, ignore, `${path}[]`);
  }
  const out: string[] = [];
  for (const [k, v] of Object.entries(reference)) {
    const p = path === '' ? k : `${path}.${k}`;
    if (skip(p)) continue;
    if (!(k in ours)) {
      out.push(`${p}: missing in Warren`);
      continue;
    }
    out.push(...shapeDiff(v, ours[k]!, ignore, p));
  }
  return out;
}

export async function waitUntil<T>(
  check: () => Promise<T | undefined | null | false>,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
