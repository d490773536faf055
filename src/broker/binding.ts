import { Decimal, TypedValue } from '../protocol/index.js';
import type { FieldTable, FieldValue } from '../protocol/index.js';
import type { Exchange } from './exchange/exchange.js';
import type { Queue } from './queue.js';

export type Destination = Queue | Exchange;

/**
 * A binding from an exchange to a queue or another exchange. Two bindings are the same when
 * source, destination, routing key and arguments are all equal (as in RabbitMQ).
 */
export class Binding {
  readonly source: Exchange;
  readonly destination: Destination;
  readonly destinationKind: 'queue' | 'exchange';
  readonly routingKey: string;
  readonly arguments: FieldTable;
  readonly key: string;

  constructor(
    source: Exchange,
    destination: Destination,
    destinationKind: 'queue' | 'exchange',
    routingKey: string,
    args: FieldTable,
  ) {
    this.source = source;
    this.destination = destination;
    this.destinationKind = destinationKind;
    this.routingKey = routingKey;
    this.arguments = args;
    this.key = Binding.keyOf(destinationKind, destination.name, routingKey, args);
  }

  static keyOf(kind: string, destination: string, routingKey: string, args: FieldTable): string {
    return `${kind}\u0000${destination}\u0000${routingKey}\u0000${canonicalArgs(args)}`;
  }
}

/** A stable text form of a field table: keys sorted, types folded to their JSON shape. */
export function canonicalArgs(args: FieldTable): string {
  const keys = Object.keys(args).filter((k) => args[k] !== undefined);
  if (keys.length === 0) return '';
  keys.sort();
  return keys.map((k) => `${k}=${canonicalValue(args[k])}`).join(';');
}

function canonicalValue(v: FieldValue): string {
  if (v === null || v === undefined) return 'V';
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v !== 'object') return JSON.stringify(v);
  if (v instanceof Uint8Array) return `x${Buffer.from(v).toString('hex')}`;
  if (v instanceof Date) return `T${v.getTime()}`;
  if (Array.isArray(v)) return `[${(v as FieldValue[]).map(canonicalValue).join(',')}]`;
  if (v instanceof TypedValue) return canonicalValue(v.value);
  if (v instanceof Decimal) return `D${v.scale}:${v.value}`;
  return `{${canonicalArgs(v as FieldTable)}}`;
}

const WIRE_TYPE_NAMES: Record<string, string> = {
  t: 'bool',
  b: 'byte',
  B: 'unsignedbyte',
  s: 'short',
  u: 'unsignedshort',
  I: 'signedint',
  i: 'unsignedint',
  l: 'long',
  L: 'unsignedlong',
  f: 'float',
  d: 'double',
  D: 'decimal',
  S: 'longstr',
  x: 'binary',
  A: 'array',
  T: 'timestamp',
  F: 'table',
  V: 'void',
};

/**
 * RabbitMQ's name for a value's field type. Decoded tables keep no wire types, so integers are
 * named by range ('signedint' or 'long'), which is what most clients send.
 */
export function fieldTypeName(v: FieldValue): string {
  if (v instanceof TypedValue) return WIRE_TYPE_NAMES[v.type] ?? v.type;
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'string') return 'longstr';
  if (typeof v === 'bigint') return 'long';
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) return 'double';
    return v >= -0x8000_0000 && v <= 0x7fff_ffff ? 'signedint' : 'long';
  }
  if (v === null || v === undefined) return 'void';
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return 'binary';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Date) return 'timestamp';
  if (v instanceof Decimal) return 'decimal';
  return 'table';
}
