/**
 * The method and property lists of spec/amqp-rabbitmq-0.9.1.json, read straight from the JSON so
 * that the codec tests cover whatever the spec defines (a method added to the spec is tested
 * without touching the tests), plus a reference encoder written from the spec's wire rules with
 * plain Buffer operations, independent of Writer and of the generated code.
 */
import { readFileSync } from 'node:fs';

export type WireType =
  'octet' | 'short' | 'long' | 'longlong' | 'shortstr' | 'longstr' | 'bit' | 'table' | 'timestamp';

interface RawArg {
  name: string;
  type?: string;
  domain?: string;
  'default-value'?: unknown;
}
interface RawMethod {
  name: string;
  id: number;
  arguments: RawArg[];
  synchronous?: boolean;
  content?: boolean;
}
interface RawClass {
  name: string;
  id: number;
  methods: RawMethod[];
  properties?: RawArg[];
}
interface RawSpec {
  domains: [string, string][];
  constants: { name: string; value: number; class?: string }[];
  classes: RawClass[];
}

export const rawSpec = JSON.parse(
  readFileSync(new URL('../../spec/amqp-rabbitmq-0.9.1.json', import.meta.url), 'utf8'),
) as RawSpec;

export interface SpecArg {
  /** The spec's name, e.g. `auto-delete`. */
  specName: string;
  /** The codec's field name, e.g. `autoDelete`. */
  field: string;
  type: WireType;
  default: unknown;
}

export interface SpecMethod {
  /** `queue.declare` */
  fullName: string;
  /** `QueueDeclare`, the key in the generated `Method` table. */
  key: string;
  classId: number;
  methodId: number;
  synchronous: boolean;
  hasContent: boolean;
  args: SpecArg[];
}

const wireTypes = new Set<string>([
  'octet',
  'short',
  'long',
  'longlong',
  'shortstr',
  'longstr',
  'bit',
  'table',
  'timestamp',
]);

export function pascal(s: string): string {
  return s
    .split(/[-_ ]/)
    .map((p) => p.charAt(0).toUpperCase() + p.slice(1).toLowerCase())
    .join('');
}

export function camel(s: string): string {
  const p = pascal(s);
  return p.charAt(0).toLowerCase() + p.slice(1);
}

const domains = new Map(rawSpec.domains);

function resolve(arg: RawArg): WireType {
  let t = arg.type ?? arg.domain;
  if (t === undefined) throw new Error(`argument ${arg.name} has neither type nor domain`);
  while (domains.has(t) && domains.get(t) !== t) t = domains.get(t)!;
  if (!wireTypes.has(t)) throw new Error(`argument ${arg.name} resolves to unknown type ${t}`);
  return t as WireType;
}

function toArg(a: RawArg): SpecArg {
  return { specName: a.name, field: camel(a.name), type: resolve(a), default: a['default-value'] };
}

export const specMethods: SpecMethod[] = rawSpec.classes.flatMap((c) =>
  c.methods.map((m) => ({
    fullName: `${c.name}.${m.name}`,
    key: pascal(c.name) + pascal(m.name),
    classId: c.id,
    methodId: m.id,
    synchronous: m.synchronous === true,
    hasContent: m.content === true,
    args: m.arguments.map(toArg),
  })),
);

export const basicPropertySpec: SpecArg[] = (
  rawSpec.classes.find((c) => c.name === 'basic')?.properties ?? []
).map(toArg);

export function specMethod(fullName: string): SpecMethod {
  const m = specMethods.find((x) => x.fullName === fullName);
  if (m === undefined) throw new Error(`no method ${fullName} in the spec`);
  return m;
}

// ------------------------------------------------------------------ reference encoder

const u8 = (v: number): Buffer => Buffer.from([v]);
function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}
function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
}
function u64(v: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(v));
  return b;
}
function shortstr(s: string): Buffer {
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.length > 255) throw new Error('reference shortstr too long');
  return Buffer.concat([u8(bytes.length), bytes]);
}
function longstr(b: Uint8Array): Buffer {
  return Buffer.concat([u32(b.length), b]);
}

/**
 * A field table holding only strings, 32-bit integers, booleans and nested tables, encoded the
 * way RabbitMQ does ('S', 'I', 't', 'F'). Enough for method arguments; field-table.test.ts
 * covers every type byte by byte.
 */
export function referenceTable(t: Record<string, unknown>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(t)) {
    parts.push(shortstr(k));
    if (typeof v === 'string') parts.push(u8(0x53), longstr(Buffer.from(v, 'utf8')));
    else if (typeof v === 'boolean') parts.push(u8(0x74), u8(v ? 1 : 0));
    else if (typeof v === 'number' && Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) {
      const b = Buffer.alloc(4);
      b.writeInt32BE(v);
      parts.push(u8(0x49), b);
    } else if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
      parts.push(u8(0x46), referenceTable(v as Record<string, unknown>));
    } else throw new Error(`reference table cannot encode ${String(v)}`);
  }
  return longstr(Buffer.concat(parts));
}

export function referenceValue(type: WireType, v: unknown): Buffer {
  switch (type) {
    case 'octet':
      return u8(v as number);
    case 'short':
      return u16(v as number);
    case 'long':
      return u32(v as number);
    case 'longlong':
    case 'timestamp':
      return u64(v as number);
    case 'shortstr':
      return shortstr(v as string);
    case 'longstr':
      return longstr(v as Buffer);
    case 'table':
      return referenceTable(v as Record<string, unknown>);
    case 'bit':
      throw new Error('bits are packed by referenceMethod');
  }
}

/**
 * Method frame payload per spec section 4.2.5: class-id, method-id, then the arguments in
 * order, consecutive bits packed into octets from the low bit upwards.
 */
export function referenceMethod(m: SpecMethod, values: Record<string, unknown>): Buffer {
  const parts: Buffer[] = [u16(m.classId), u16(m.methodId)];
  let bits = 0;
  let count = 0;
  const flush = (): void => {
    if (count > 0) parts.push(u8(bits));
    bits = 0;
    count = 0;
  };
  for (const a of m.args) {
    if (a.type === 'bit') {
      if (count === 8) flush();
      if (values[a.field] === true) bits |= 1 << count;
      count++;
      continue;
    }
    flush();
    parts.push(referenceValue(a.type, values[a.field]));
  }
  flush();
  return Buffer.concat(parts);
}

// ------------------------------------------------------------------ argument values

/** A 255-byte string mixing 1-, 2-, 3- and 4-byte UTF-8 sequences. */
export const longestShortstr = 'aé€😀'.repeat(25) + 'x'.repeat(5);

/**
 * A value for an argument that differs from the spec default (and from zero), in one of two
 * flavours: `extreme` puts every field at the top of its range, `varied` uses values that differ
 * from argument to argument so that swapped fields are noticed.
 */
export function nonDefaultValue(a: SpecArg, index: number, flavour: 'extreme' | 'varied'): unknown {
  const extreme = flavour === 'extreme';
  switch (a.type) {
    case 'bit':
      return a.default !== true;
    case 'octet':
      return extreme ? 0xff : 0x41 + index;
    case 'short':
      return extreme ? 0xffff : 0x1234 + index * 0x101;
    case 'long':
      return extreme ? 0xffff_ffff : 0x89ab_cdef - index;
    case 'longlong':
    case 'timestamp':
      return extreme ? Number.MAX_SAFE_INTEGER : 0x1_0000_0001 * (index + 1);
    case 'shortstr':
      return extreme ? longestShortstr : `${a.field}-é-${index}`;
    case 'longstr':
      return extreme
        ? Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37 + 0xce) & 0xff))
        : Buffer.from(`${a.field} ${index} \u0000\u00ce`, 'latin1');
    case 'table':
      return extreme
        ? { 'x-nested': { deep: { deeper: 'yes', n: -1 } }, flag: false, n: -(2 ** 31) }
        : { [a.field]: index, text: 'ünï', on: true };
  }
}

export function nonDefaultArgs(
  m: SpecMethod,
  flavour: 'extreme' | 'varied',
): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  m.args.forEach((a, i) => (values[a.field] = nonDefaultValue(a, i, flavour)));
  return values;
}

/** Deterministic pseudo-random numbers (mulberry32), so failures reproduce. */
export function seededRandom(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n: number): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % n) >>> 0;
  };
}
