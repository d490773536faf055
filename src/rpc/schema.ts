import { EXPORTED as EXPORTED_KEY, isRemoteObject, isRemoteProxy } from './contract.js';
import type { InterfaceContract, RemoteObject, RemoteProxy } from './contract.js';
import type { StandardSchemaV1 } from './standard-schema.js';
import type { Issue } from './status.js';

/** Returned by `check` for a value that failed (the issues were recorded). */
const INVALID: unique symbol = Symbol('invalid');
type Invalid = typeof INVALID;

type Path = (string | number)[];

/**
 * A dependency-free schema implementing Standard Schema: `s.object({ a: s.number() })`. Values
 * pass through unchanged except that objects drop keys the schema does not name (a copy is made
 * only then).
 */
export class Schema<I, O = I> implements StandardSchemaV1<I, O> {
  readonly '~standard': StandardSchemaV1.Props<I, O>;
  /** A short description, used in messages: `number`, `string[]`, `{ a, b }`. */
  readonly description: string;
  /** @internal */
  readonly check: (v: unknown, path: Path, issues: Issue[]) => O | Invalid;

  constructor(
    description: string,
    check: (v: unknown, path: Path, issues: Issue[]) => O | Invalid,
  ) {
    this.description = description;
    this.check = check;
    this['~standard'] = {
      version: 1,
      vendor: 'warren',
      validate: (value) => {
        const issues: Issue[] = [];
        const out = check(value, [], issues);
        if (out === INVALID || issues.length > 0) return { issues };
        return { value: out };
      },
    };
  }

  /** This schema, or undefined (an optional object property). */
  optional(): OptionalSchema<I | undefined, O | undefined> {
    return optional(this);
  }

  /** This schema, or null. */
  nullable(): Schema<I | null, O | null> {
    return nullable(this);
  }

  /** Add a check of your own: `s.number().refine((n) => n > 0, 'must be positive')`. */
  refine(ok: (value: O) => boolean, message: string): Schema<I, O> {
    return new Schema(this.description, (v, path, issues) => {
      const out = this.check(v, path, issues);
      if (out === INVALID) return INVALID;
      if (!ok(out)) return fail(issues, path, message);
      return out;
    });
  }
}

/** A schema that may be left out of an object. */
export class OptionalSchema<I, O = I> extends Schema<I, O> {
  readonly isOptional = true as const;
}

function fail(issues: Issue[], path: Path, message: string): Invalid {
  issues.push({ path: [...path], message });
  return INVALID;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Date) return 'a Date';
  if (v instanceof Uint8Array) return 'bytes';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `a string`;
  if (typeof v === 'undefined') return 'nothing (undefined)';
  if (typeof v === 'number' || typeof v === 'boolean') return `a ${typeof v} (${v})`;
  if (typeof v === 'bigint') return `a bigint (${v})`;
  return `a ${typeof v}`;
}

function expected(issues: Issue[], path: Path, what: string, v: unknown): Invalid {
  return fail(issues, path, `expected ${what}, got ${describe(v)}`);
}

// ---------------------------------------------------------------- primitives

export interface StringOptions {
  min?: number;
  max?: number;
  pattern?: RegExp;
}

function string(o: StringOptions = {}): Schema<string> {
  return new Schema('string', (v, path, issues) => {
    if (typeof v !== 'string') return expected(issues, path, 'a string', v);
    if (o.min !== undefined && v.length < o.min)
      return fail(issues, path, `expected at least ${o.min} characters, got ${v.length}`);
    if (o.max !== undefined && v.length > o.max)
      return fail(issues, path, `expected at most ${o.max} characters, got ${v.length}`);
    if (o.pattern !== undefined && !o.pattern.test(v))
      return fail(issues, path, `expected a string matching ${String(o.pattern)}`);
    return v;
  });
}

export interface NumberOptions {
  min?: number;
  max?: number;
  /** Integers only. */
  int?: boolean;
  /** Allow NaN and ±Infinity (default: finite numbers only). */
  nonFinite?: boolean;
}

function number(o: NumberOptions = {}): Schema<number> {
  const what = o.int === true ? 'an integer' : 'a number';
  return new Schema(o.int === true ? 'integer' : 'number', (v, path, issues) => {
    if (typeof v !== 'number') return expected(issues, path, what, v);
    if (o.nonFinite !== true && !Number.isFinite(v))
      return fail(issues, path, `expected a finite number, got ${v}`);
    if (o.int === true && !Number.isInteger(v)) return expected(issues, path, what, v);
    if (o.min !== undefined && v < o.min)
      return fail(issues, path, `expected a number >= ${o.min}, got ${v}`);
    if (o.max !== undefined && v > o.max)
      return fail(issues, path, `expected a number <= ${o.max}, got ${v}`);
    return v;
  });
}

function typeofSchema<T>(type: string, what: string): () => Schema<T> {
  return () =>
    new Schema<T>(type, (v, path, issues) =>
      typeof v === type ? (v as T) : expected(issues, path, what, v),
    );
}

const boolean = typeofSchema<boolean>('boolean', 'a boolean');
const bigint = typeofSchema<bigint>('bigint', 'a bigint');

function date(): Schema<Date> {
  return new Schema('Date', (v, path, issues) =>
    v instanceof Date ? v : expected(issues, path, 'a Date', v),
  );
}

/** Bytes: a Uint8Array (a Buffer is one). */
function bytes(): Schema<Uint8Array> {
  return new Schema('bytes', (v, path, issues) =>
    v instanceof Uint8Array ? v : expected(issues, path, 'bytes (a Uint8Array or Buffer)', v),
  );
}

function literal<const T extends string | number | boolean | null | undefined>(
  value: T,
): Schema<T> {
  const text = JSON.stringify(value) ?? 'undefined';
  return new Schema(text, (v, path, issues) =>
    v === value ? (v as T) : expected(issues, path, text, v),
  );
}

function enumOf<const T extends readonly (string | number)[]>(values: T): Schema<T[number]> {
  const set = new Set<unknown>(values);
  const text = values.map((x) => JSON.stringify(x)).join(' | ');
  return new Schema(text, (v, path, issues) =>
    set.has(v) ? (v as T[number]) : expected(issues, path, `one of ${text}`, v),
  );
}

function unknownSchema(): Schema<unknown> {
  return new Schema('unknown', (v) => v);
}

/** No value: undefined (or null, which is how other languages say nothing). */
function voidSchema(): Schema<void, undefined> {
  return new Schema<void, undefined>('void', (v, path, issues) =>
    v === undefined || v === null ? undefined : expected(issues, path, 'nothing', v),
  );
}

function nullSchema(): Schema<null> {
  return literal(null);
}

function undefinedSchema(): Schema<undefined> {
  return literal(undefined);
}

// ---------------------------------------------------------------- combinators

function optional<I, O>(inner: Schema<I, O>): OptionalSchema<I | undefined, O | undefined> {
  return new OptionalSchema<I | undefined, O | undefined>(
    `${inner.description}?`,
    (v, path, issues) => (v === undefined ? undefined : inner.check(v, path, issues)),
  );
}

function nullable<I, O>(inner: Schema<I, O>): Schema<I | null, O | null> {
  return new Schema<I | null, O | null>(`${inner.description} | null`, (v, path, issues) =>
    v === null ? null : inner.check(v, path, issues),
  );
}

export interface ArrayOptions {
  min?: number;
  max?: number;
}

function array<I, O>(item: Schema<I, O>, o: ArrayOptions = {}): Schema<I[], O[]> {
  return new Schema<I[], O[]>(`${item.description}[]`, (v, path, issues) => {
    if (!Array.isArray(v)) return expected(issues, path, 'an array', v);
    if (o.min !== undefined && v.length < o.min)
      return fail(issues, path, `expected at least ${o.min} items, got ${v.length}`);
    if (o.max !== undefined && v.length > o.max)
      return fail(issues, path, `expected at most ${o.max} items, got ${v.length}`);
    let out: O[] | null = null;
    let bad = false;
    for (let i = 0; i < v.length; i++) {
      path.push(i);
      const r = item.check(v[i], path, issues);
      path.pop();
      if (r === INVALID) bad = true;
      else if (r !== v[i]) {
        out ??= v.slice() as O[];
        out[i] = r;
      }
    }
    if (bad) return INVALID;
    return out ?? (v as O[]);
  });
}

type AnyS = Schema<any, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type Shape = Record<string, AnyS>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
type OptionalKeys<S extends Shape> = {
  [K in keyof S]: S[K] extends OptionalSchema<unknown, unknown> ? K : never;
}[keyof S];
type RequiredKeys<S extends Shape> = Exclude<keyof S, OptionalKeys<S>>;
type SIn<T> = T extends Schema<infer I, unknown> ? I : never;
type SOut<T> = T extends Schema<unknown, infer O> ? O : never;
export type ObjectInput<S extends Shape> = Simplify<
  { [K in RequiredKeys<S>]: SIn<S[K]> } & { [K in OptionalKeys<S>]?: SIn<S[K]> }
>;
export type ObjectOutput<S extends Shape> = Simplify<
  { [K in RequiredKeys<S>]: SOut<S[K]> } & { [K in OptionalKeys<S>]?: SOut<S[K]> }
>;

export interface ObjectOptions {
  /** Fail on keys the shape does not name (default: drop them). */
  strict?: boolean;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function object<S extends Shape>(
  shape: S,
  o: ObjectOptions = {},
): Schema<ObjectInput<S>, ObjectOutput<S>> {
  const keys = Object.keys(shape);
  const known = new Set(keys);
  return new Schema<ObjectInput<S>, ObjectOutput<S>>(
    `{ ${keys.join(', ')} }`,
    (v, path, issues) => {
      if (!isPlainObject(v)) return expected(issues, path, 'an object', v);
      let changed = false;
      let bad = false;
      const out: Record<string, unknown> = {};
      for (const k of keys) {
        const child = shape[k]!;
        const value = v[k];
        path.push(k);
        if (value === undefined) {
          // Absent (or undefined, which the wire cannot tell apart): fine if the schema allows it.
          if (!(child instanceof OptionalSchema) && child.check(undefined, path, []) === INVALID) {
            fail(issues, path, `required, expected ${child.description}`);
            bad = true;
          }
          path.pop();
          continue;
        }
        const r: unknown = child.check(value, path, issues);
        path.pop();
        if (r === INVALID) bad = true;
        else {
          if (r !== value) changed = true;
          out[k] = r;
        }
      }
      for (const k in v) {
        if (known.has(k)) continue;
        if (o.strict === true) {
          path.push(k);
          fail(issues, path, 'unexpected key');
          path.pop();
          bad = true;
        }
        changed = true;
      }
      if (bad) return INVALID;
      return (changed ? out : v) as ObjectOutput<S>;
    },
  );
}

function record<I, O>(value: Schema<I, O>): Schema<Record<string, I>, Record<string, O>> {
  return new Schema<Record<string, I>, Record<string, O>>(
    `Record<string, ${value.description}>`,
    (v, path, issues) => {
      if (!isPlainObject(v)) return expected(issues, path, 'an object', v);
      let bad = false;
      let out: Record<string, O> | null = null;
      for (const k in v) {
        path.push(k);
        const r = value.check(v[k], path, issues);
        path.pop();
        if (r === INVALID) bad = true;
        else if (r !== v[k]) {
          out ??= { ...(v as Record<string, O>) };
          out[k] = r;
        }
      }
      if (bad) return INVALID;
      return out ?? (v as Record<string, O>);
    },
  );
}

type TupleIn<T extends readonly AnyS[]> = { -readonly [K in keyof T]: SIn<T[K]> };
type TupleOut<T extends readonly AnyS[]> = { -readonly [K in keyof T]: SOut<T[K]> };

function tuple<const T extends readonly AnyS[]>(items: T): Schema<TupleIn<T>, TupleOut<T>> {
  return new Schema<TupleIn<T>, TupleOut<T>>(
    `[${items.map((i) => i.description).join(', ')}]`,
    (v, path, issues) => {
      if (!Array.isArray(v)) return expected(issues, path, 'an array', v);
      if (v.length !== items.length)
        return fail(issues, path, `expected ${items.length} items, got ${v.length}`);
      let bad = false;
      let out: unknown[] | null = null;
      for (let i = 0; i < items.length; i++) {
        path.push(i);
        const r: unknown = items[i]!.check(v[i], path, issues);
        path.pop();
        if (r === INVALID) bad = true;
        else if (r !== v[i]) {
          out ??= v.slice();
          out[i] = r;
        }
      }
      if (bad) return INVALID;
      return (out ?? v) as TupleOut<T>;
    },
  );
}

function union<const T extends readonly AnyS[]>(
  ...options: T
): Schema<SIn<T[number]>, SOut<T[number]>> {
  const text = options.map((o) => o.description).join(' | ');
  return new Schema<SIn<T[number]>, SOut<T[number]>>(text, (v, path, issues) => {
    for (const o of options) {
      const scratch: Issue[] = [];
      const r: unknown = o.check(v, path, scratch);
      if (r !== INVALID && scratch.length === 0) return r as SOut<T[number]>;
    }
    return expected(issues, path, text, v);
  });
}

function map<KI, KO, VI, VO>(
  key: Schema<KI, KO>,
  value: Schema<VI, VO>,
): Schema<Map<KI, VI>, Map<KO, VO>> {
  return new Schema<Map<KI, VI>, Map<KO, VO>>(
    `Map<${key.description}, ${value.description}>`,
    (v, path, issues) => {
      if (!(v instanceof Map)) return expected(issues, path, 'a Map', v);
      let bad = false;
      let i = 0;
      for (const [k, x] of v) {
        path.push(i++);
        if (key.check(k, path, issues) === INVALID) bad = true;
        if (value.check(x, path, issues) === INVALID) bad = true;
        path.pop();
      }
      return bad ? INVALID : (v as Map<KO, VO>);
    },
  );
}

function set<I, O>(item: Schema<I, O>): Schema<Set<I>, Set<O>> {
  return new Schema<Set<I>, Set<O>>(`Set<${item.description}>`, (v, path, issues) => {
    if (!(v instanceof Set)) return expected(issues, path, 'a Set', v);
    let bad = false;
    let i = 0;
    for (const x of v) {
      path.push(i++);
      if (item.check(x, path, issues) === INVALID) bad = true;
      path.pop();
    }
    return bad ? INVALID : (v as Set<O>);
  });
}

/** A schema from a predicate, for types the builders do not cover. */
function custom<T>(description: string, ok: (v: unknown) => v is T, message?: string): Schema<T> {
  return new Schema(description, (v, path, issues) =>
    ok(v) ? v : fail(issues, path, message ?? `expected ${description}, got ${describe(v)}`),
  );
}

/**
 * A remote object of interface `iface`, passed by reference: the sender gives a `remote(iface,
 * impl)` (or a proxy it holds), the receiver gets a `RemoteProxy`.
 */
function ref<I extends InterfaceContract>(
  iface: I,
): Schema<RemoteObject<I> | RemoteProxy<I>, RemoteProxy<I>> {
  return new Schema<RemoteObject<I> | RemoteProxy<I>, RemoteProxy<I>>(
    `ref(${iface.name})`,
    (v, path, issues) => {
      if (isRemoteProxy(v, iface)) return v;
      // The sending side's own check (a handler validating its result before sending).
      if (isRemoteObject(v) && v[EXPORTED_KEY].iface.name === iface.name)
        return v as unknown as RemoteProxy<I>;
      return fail(
        issues,
        path,
        `expected a reference to a remote ${iface.name}, got ${describe(v)}`,
      );
    },
  );
}

/**
 * Dependency-free schema builders. Each is a Standard Schema, so they mix freely with zod or
 * valibot schemas in one contract.
 */
export const s = {
  string,
  number,
  int: (o: Omit<NumberOptions, 'int'> = {}) => number({ ...o, int: true }),
  boolean,
  bigint,
  date,
  bytes,
  literal,
  enum: enumOf,
  unknown: unknownSchema,
  void: voidSchema,
  null: nullSchema,
  undefined: undefinedSchema,
  optional,
  nullable,
  array,
  object,
  record,
  tuple,
  union,
  map,
  set,
  custom,
  ref,
};

/** The input type of an `s` schema (or any Standard Schema). */
export type Infer<S> = S extends StandardSchemaV1<unknown, infer O> ? O : never;
