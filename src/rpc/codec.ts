import { RpcError, Reason, Status, formatPath } from './status.js';

/**
 * The value encoding of RPC bodies (docs/rpc-wire-format.md, "Body encoding"): UTF-8 JSON in
 * which the values JSON has no form for are objects with a single `$`-key:
 *
 *   {"$bin": "<base64>"}    Uint8Array          {"$buf": "<base64>"}   Buffer
 *   {"$date": <ms>|null}    Date (null: invalid) {"$bigint": "<dec>"}   bigint
 *   {"$num": "NaN"|"Infinity"|"-Infinity"|"-0"} {"$undef": 1}          undefined in an array
 *   {"$map": [[k, v], ...]} Map                 {"$set": [v, ...]}     Set
 *   {"$ref": {...}}         remote object reference
 *   {"$obj": {...}}         a plain object that itself has exactly one key starting with `$`
 *
 * A top-level undefined is an empty body. Plain JSON data is encoded by JSON.stringify as it is:
 * the walk that looks for special values copies nothing unless it finds one.
 */

export type RefEncoder = (value: object) => unknown;
export type RefDecoder = (json: unknown) => unknown;

const MAX_DEPTH = 512;
const OMIT: unique symbol = Symbol('omit');
const EMPTY = Buffer.alloc(0);

export interface EncodeContext {
  /** Turns a remote object or proxy into its JSON reference; undefined for other objects. */
  ref?: ((value: object) => unknown) | undefined;
}

export interface DecodeContext {
  ref?: RefDecoder | undefined;
}

/** Encode a value as a body. Throws RpcError (reason UNENCODABLE) naming the path of a bad value. */
export function encodeValue(value: unknown, ctx: EncodeContext = {}): Buffer {
  if (value === undefined) return EMPTY;
  const path: (string | number)[] = [];
  const json = convert(value, ctx, path, 0);
  return Buffer.from(JSON.stringify(json === OMIT ? null : json), 'utf8');
}

/** Decode a body. An empty body is undefined. Throws RpcError (reason MALFORMED). */
export function decodeValue(body: Buffer, ctx: DecodeContext = {}): unknown {
  if (body.length === 0) return undefined;
  const text = body.toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new RpcError(Status.INTERNAL, `the body is not valid JSON: ${(err as Error).message}`, {
      reason: Reason.Malformed,
    });
  }
  // Tags always contain `"$`; most bodies have none and need no second walk.
  if (!text.includes('"$')) return parsed;
  return revive(parsed, ctx, 0);
}

function unencodable(path: (string | number)[], what: string): RpcError {
  return new RpcError(
    Status.INVALID_ARGUMENT,
    `${formatPath('', path)}: cannot send ${what}; send plain data, bytes, Dates, bigints, Maps, Sets or remote objects`,
    {
      reason: Reason.Unencodable,
      issues: [{ path: [...path], message: `cannot send ${what}` }],
      executed: 'no',
    },
  );
}

function convert(
  v: unknown,
  ctx: EncodeContext,
  path: (string | number)[],
  depth: number,
): unknown {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v;
    case 'number':
      if (Number.isFinite(v) && !Object.is(v, -0)) return v;
      return { $num: Object.is(v, -0) ? '-0' : String(v) };
    case 'bigint':
      return { $bigint: v.toString() };
    case 'undefined':
      return OMIT;
    case 'object':
      break;
    default:
      throw unencodable(path, `a ${typeof v}`);
  }
  if (v === null) return null;
  if (depth > MAX_DEPTH) throw unencodable(path, 'a value nested this deep (or a cycle)');
  if (v instanceof Uint8Array) {
    const b = Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    return Buffer.isBuffer(v) ? { $buf: b.toString('base64') } : { $bin: b.toString('base64') };
  }
  if (Array.isArray(v)) {
    let out: unknown[] | null = null;
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      path.push(i);
      let c = convert(x, ctx, path, depth + 1);
      path.pop();
      if (c === OMIT) c = { $undef: 1 };
      if (c !== x) {
        out ??= v.slice();
        out[i] = c;
      }
    }
    return out ?? v;
  }
  if (v instanceof Date) {
    const t = v.getTime();
    return { $date: Number.isNaN(t) ? null : t };
  }
  const ref = ctx.ref?.(v);
  if (ref !== undefined) return { $ref: ref };
  if (v instanceof Map) {
    const entries: unknown[] = [];
    let i = 0;
    for (const [k, x] of v) {
      path.push(i++);
      const ck = convert(k, ctx, path, depth + 1);
      const cx = convert(x, ctx, path, depth + 1);
      path.pop();
      entries.push([ck === OMIT ? { $undef: 1 } : ck, cx === OMIT ? { $undef: 1 } : cx]);
    }
    return { $map: entries };
  }
  if (v instanceof Set) {
    const items: unknown[] = [];
    let i = 0;
    for (const x of v) {
      path.push(i++);
      const c = convert(x, ctx, path, depth + 1);
      path.pop();
      items.push(c === OMIT ? { $undef: 1 } : c);
    }
    return { $set: items };
  }
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) {
    throw unencodable(path, `a ${v.constructor.name} (use a Uint8Array or Buffer)`);
  }
  if (v instanceof Promise) throw unencodable(path, 'a Promise (await it first)');
  const toJSON = (v as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') {
    return convert((toJSON as () => unknown).call(v), ctx, path, depth + 1);
  }
  // A plain object, or a class instance sent by value as its own enumerable properties.
  const o = v as Record<string, unknown>;
  let out: Record<string, unknown> | null = null;
  let count = 0;
  let dollar = false;
  for (const k in o) {
    if (!Object.prototype.hasOwnProperty.call(o, k)) continue;
    const x = o[k];
    path.push(k);
    const c = convert(x, ctx, path, depth + 1);
    path.pop();
    if (c === OMIT) {
      out ??= copyUpTo(o, k);
      continue;
    }
    count++;
    if (k.charCodeAt(0) === 0x24 /* $ */) dollar = true;
    if (c !== x && out === null) out = copyUpTo(o, k);
    if (out !== null) out[k] = c;
  }
  const result = out ?? o;
  // Exactly one key, starting with '$', would read as a tag: escape it.
  if (dollar && count === 1) return { $obj: result };
  return result;
}

/** A copy of `o`'s own enumerable keys before `stop` (values as they are: already converted). */
function copyUpTo(o: Record<string, unknown>, stop: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k in o) {
    if (k === stop) break;
    if (Object.prototype.hasOwnProperty.call(o, k) && o[k] !== undefined) out[k] = o[k];
  }
  return out;
}

function malformed(what: string): RpcError {
  return new RpcError(Status.INTERNAL, `malformed body: ${what}`, { reason: Reason.Malformed });
}

function revive(v: unknown, ctx: DecodeContext, depth: number): unknown {
  if (typeof v !== 'object' || v === null) return v;
  if (depth > MAX_DEPTH) throw malformed('nested too deep');
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = revive(v[i], ctx, depth + 1);
    return v;
  }
  const o = v as Record<string, unknown>;
  let only: string | null = null;
  let n = 0;
  for (const k in o) {
    if (++n > 1) break;
    only = k;
  }
  if (n === 1 && only !== null && only.charCodeAt(0) === 0x24)
    return tagged(only, o[only], ctx, depth);
  for (const k in o) o[k] = revive(o[k], ctx, depth + 1);
  return o;
}

function tagged(tag: string, x: unknown, ctx: DecodeContext, depth: number): unknown {
  switch (tag) {
    case '$bin':
    case '$buf': {
      if (typeof x !== 'string') throw malformed(`${tag} needs a base64 string`);
      const b = Buffer.from(x, 'base64');
      return tag === '$buf' ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    }
    case '$date':
      if (x === null) return new Date(NaN);
      if (typeof x !== 'number') throw malformed('$date needs milliseconds or null');
      return new Date(x);
    case '$bigint':
      if (typeof x !== 'string' || !/^-?\d+$/.test(x))
        throw malformed('$bigint needs a decimal string');
      return BigInt(x);
    case '$num':
      switch (x) {
        case 'NaN':
          return NaN;
        case 'Infinity':
          return Infinity;
        case '-Infinity':
          return -Infinity;
        case '-0':
          return -0;
        default:
          throw malformed(`$num ${JSON.stringify(x)}`);
      }
    case '$undef':
      return undefined;
    case '$map': {
      if (!Array.isArray(x)) throw malformed('$map needs an array of pairs');
      const m = new Map<unknown, unknown>();
      for (const pair of x) {
        if (!Array.isArray(pair) || pair.length !== 2)
          throw malformed('$map entries are [key, value]');
        m.set(revive(pair[0], ctx, depth + 1), revive(pair[1], ctx, depth + 1));
      }
      return m;
    }
    case '$set': {
      if (!Array.isArray(x)) throw malformed('$set needs an array');
      const st = new Set<unknown>();
      for (const item of x) st.add(revive(item, ctx, depth + 1));
      return st;
    }
    case '$obj': {
      if (typeof x !== 'object' || x === null || Array.isArray(x))
        throw malformed('$obj needs an object');
      const o = x as Record<string, unknown>;
      for (const k in o) o[k] = revive(o[k], ctx, depth + 1);
      return o;
    }
    case '$ref':
      if (ctx.ref === undefined) throw malformed('a remote reference where none is expected');
      return ctx.ref(x);
    default:
      throw malformed(`unknown tag ${JSON.stringify(tag)}`);
  }
}
