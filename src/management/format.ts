import { Decimal, TypedValue } from '../protocol/index.js';
import type { BasicProperties, FieldTable, FieldValue } from '../protocol/index.js';
import { httpErrors } from './http.js';

/** A field table as JSON, the way RabbitMQ's API shows arguments, headers and client properties. */
export function tableToJson(t: FieldTable | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (t === undefined) return out;
  for (const [k, v] of Object.entries(t)) {
    if (v !== undefined) out[k] = valueToJson(v);
  }
  return out;
}

export function valueToJson(v: FieldValue): unknown {
  if (v instanceof TypedValue) return valueToJson(v.value);
  switch (typeof v) {
    case 'string':
    case 'boolean':
    case 'number':
      return v;
    case 'bigint':
      return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
    case 'undefined':
      return null;
    default:
      break;
  }
  if (v === null) return null;
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) {
    const b = Buffer.from(v);
    return isPrintableUtf8(b) ? b.toString('utf8') : b.toString('base64');
  }
  if (v instanceof Date) return Math.floor(v.getTime() / 1000);
  if (v instanceof Decimal) return v.toNumber();
  if (Array.isArray(v)) return (v as readonly FieldValue[]).map(valueToJson);
  return tableToJson(v as FieldTable);
}

/** JSON (from a request body) to a field table: numbers, strings, booleans, arrays, objects. */
export function jsonToTable(json: unknown, what: string): FieldTable {
  if (json === undefined || json === null) return {};
  if (typeof json !== 'object' || Array.isArray(json)) {
    throw httpErrors.badRequest(`'${what}' must be a JSON object`);
  }
  const out: FieldTable = {};
  for (const [k, v] of Object.entries(json as Record<string, unknown>)) {
    out[k] = jsonToValue(v, `${what}.${k}`);
  }
  return out;
}

function jsonToValue(v: unknown, what: string): FieldValue {
  if (v === null) return null;
  if (typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number') return v;
  if (Array.isArray(v)) return v.map((x, i) => jsonToValue(x, `${what}[${i}]`));
  if (typeof v === 'object') return jsonToTable(v, what);
  throw httpErrors.badRequest(`'${what}' has a value JSON cannot carry`);
}

export function isPrintableUtf8(b: Buffer): boolean {
  // Control characters other than tab, CR and LF make a payload binary for display purposes.
  for (const byte of b) {
    if (byte < 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d) return false;
  }
  const s = b.toString('utf8');
  return Buffer.byteLength(s) === b.length && !s.includes('\ufffd');
}

// ---------------------------------------------------------------- message properties

const PROPERTY_NAMES: readonly [keyof BasicProperties, string][] = [
  ['contentType', 'content_type'],
  ['contentEncoding', 'content_encoding'],
  ['headers', 'headers'],
  ['deliveryMode', 'delivery_mode'],
  ['priority', 'priority'],
  ['correlationId', 'correlation_id'],
  ['replyTo', 'reply_to'],
  ['expiration', 'expiration'],
  ['messageId', 'message_id'],
  ['timestamp', 'timestamp'],
  ['type', 'type'],
  ['userId', 'user_id'],
  ['appId', 'app_id'],
  ['clusterId', 'cluster_id'],
];

export function propertiesToJson(p: BasicProperties): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, json] of PROPERTY_NAMES) {
    const v = p[key];
    if (v === undefined) continue;
    out[json] = key === 'headers' ? tableToJson(v as FieldTable) : v;
  }
  return out;
}

const NUMERIC_PROPERTIES = new Set(['delivery_mode', 'priority', 'timestamp']);

export function jsonToProperties(json: Record<string, unknown>): BasicProperties {
  const p: BasicProperties = {};
  const byJson = new Map(PROPERTY_NAMES.map(([k, j]) => [j, k]));
  for (const [name, v] of Object.entries(json)) {
    const key = byJson.get(name);
    if (key === undefined) {
      throw httpErrors.badRequest(
        `unknown message property '${name}'; known: ${PROPERTY_NAMES.map(([, j]) => j).join(', ')}`,
      );
    }
    if (v === null || v === undefined || v === '') continue;
    if (key === 'headers') {
      p.headers = jsonToTable(v, 'properties.headers');
    } else if (NUMERIC_PROPERTIES.has(name)) {
      const n = typeof v === 'string' ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
        throw httpErrors.badRequest(`property '${name}' must be a non-negative integer`);
      }
      (p as Record<string, unknown>)[key] = n;
    } else {
      if (typeof v !== 'string') throw httpErrors.badRequest(`property '${name}' must be a string`);
      (p as Record<string, unknown>)[key] = v;
    }
  }
  return p;
}

// ---------------------------------------------------------------- rates

/** RabbitMQ's shape for a counter and its rate: `{publish: 5, publish_details: {rate: 1.2}}`. */
export function withRate(
  out: Record<string, unknown>,
  name: string,
  value: number,
  rate: number,
): void {
  out[name] = value;
  out[`${name}_details`] = { rate: round(rate) };
}

export function round(n: number): number {
  return Math.round(n * 100) / 100;
}

// ---------------------------------------------------------------- listings

/**
 * Apply RabbitMQ's listing query parameters: `name` (+ `use_regex`) filters, `sort` /
 * `sort_reverse` order, `columns` trims, `page` / `page_size` turn the answer into a page object.
 * With `format`, items are broker objects turned into JSON only when needed: a page sorted by
 * name formats just its own rows, so the web UI's paged lists stay cheap with many queues.
 */
export function listing<T>(
  items: readonly T[],
  query: URLSearchParams,
  format: (item: T) => Record<string, unknown> = (i) => i as Record<string, unknown>,
  nameOf: (item: T) => string = (i) => String(format(i).name),
): unknown {
  const total = items.length;
  const sort = query.get('sort') ?? '';
  const reverse = query.get('sort_reverse') === 'true' ? -1 : 1;
  let raw = filterByName(items, nameOf, query.get('name'), query.get('use_regex') === 'true');
  let rows: Record<string, unknown>[] | null = null;
  if (sort === 'name') {
    raw = [...raw].sort((a, b) => reverse * compare(nameOf(a), nameOf(b)));
  } else if (sort !== '') {
    const path = sort.split('.');
    rows = raw.map(format).sort((a, b) => reverse * compare(pick(a, path), pick(b, path)));
  }
  const pageRaw = query.get('page');
  const shape = (list: Record<string, unknown>[]): Record<string, unknown>[] =>
    trimColumns(list, query.get('columns'));
  if (pageRaw === null) return shape(rows ?? raw.map(format));
  const page = positiveInt(pageRaw, 'page');
  const pageSize = positiveInt(query.get('page_size') ?? '100', 'page_size');
  if (pageSize > 500) throw httpErrors.badRequest('page_size must be at most 500');
  const count = raw.length;
  const from = (page - 1) * pageSize;
  const pageItems =
    rows !== null
      ? rows.slice(from, from + pageSize)
      : raw.slice(from, from + pageSize).map(format);
  return {
    filtered_count: count,
    item_count: pageItems.length,
    items: shape(pageItems),
    page,
    page_count: Math.max(1, Math.ceil(count / pageSize)),
    page_size: pageSize,
    total_count: total,
  };
}

function filterByName<T>(
  items: readonly T[],
  nameOf: (item: T) => string,
  name: string | null,
  regex: boolean,
): readonly T[] {
  if (name === null || name === '') return items;
  if (regex) {
    let re: RegExp;
    try {
      re = new RegExp(name);
    } catch {
      throw httpErrors.badRequest(`invalid regular expression '${name}'`);
    }
    return items.filter((i) => re.test(nameOf(i)));
  }
  const needle = name.toLowerCase();
  return items.filter((i) => nameOf(i).toLowerCase().includes(needle));
}

function trimColumns(
  rows: Record<string, unknown>[],
  columns: string | null,
): Record<string, unknown>[] {
  if (columns === null || columns === '') return rows;
  const paths = columns.split(',').map((c) => c.split('.'));
  return rows.map((r) => {
    const out: Record<string, unknown> = {};
    for (const p of paths) put(out, p, pick(r, p));
    return out;
  });
}

function positiveInt(raw: string, what: string): number {
  if (!/^\d+$/.test(raw) || Number(raw) < 1) {
    throw httpErrors.badRequest(`${what} must be a positive integer, got '${raw}'`);
  }
  return Number(raw);
}

function pick(r: unknown, path: string[]): unknown {
  let v: unknown = r;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

function put(out: Record<string, unknown>, path: string[], v: unknown): void {
  if (v === undefined) return;
  let o = out;
  for (let i = 0; i < path.length - 1; i++) {
    const k = path[i]!;
    if (typeof o[k] !== 'object' || o[k] === null) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[path[path.length - 1]!] = v;
}

function compare(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (a === undefined || a === null) return b === undefined || b === null ? 0 : -1;
  if (b === undefined || b === null) return 1;
  const text = (v: unknown): string => (typeof v === 'string' ? v : (JSON.stringify(v) ?? ''));
  return text(a).localeCompare(text(b));
}
