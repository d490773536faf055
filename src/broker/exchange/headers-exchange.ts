import { Decimal, TypedValue, amqpErrors } from '../../protocol/index.js';
import type { FieldTable, FieldValue } from '../../protocol/index.js';
import { fieldTypeName } from '../binding.js';
import type { Binding } from '../binding.js';
import type { Message } from '../message.js';
import { Exchange, ExchangeType } from './exchange.js';

/**
 * Matches message headers against binding arguments. `x-match` is `all` (default) or `any`;
 * `all-with-x` / `any-with-x` also compare keys starting with `x-`, which are otherwise ignored.
 * A binding argument of type void matches on the key's presence alone.
 */
export class HeadersExchange extends Exchange {
  readonly type = ExchangeType.Headers;
  private list: Binding[] = [];

  override validateBinding(args: FieldTable): void {
    const mode = args['x-match'];
    if (mode === undefined) return;
    const value = plain(mode);
    if (typeof value === 'string') {
      if (X_MATCH_MODES.includes(value)) return;
      throw amqpErrors.preconditionFailed(
        `Invalid x-match field value <<${JSON.stringify(value)}>>; expected all, any, all-with-x, or any-with-x`,
      );
    }
    const shown =
      typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint'
        ? String(value)
        : JSON.stringify(value);
    throw amqpErrors.preconditionFailed(
      `Invalid x-match field type ${fieldTypeName(mode)} (value ${shown}); expected longstr`,
    );
  }

  protected onBind(b: Binding): void {
    this.list.push(b);
  }

  protected onUnbind(b: Binding): void {
    this.list = this.list.filter((x) => x !== b);
  }

  match(message: Message, _routingKey: string, out: Binding[]): void {
    if (this.list.length === 0) return;
    const headers = message.hasHeaders ? (message.properties.headers ?? {}) : {};
    for (const b of this.list) if (headersMatch(b.arguments, headers)) out.push(b);
  }
}

const X_MATCH_MODES: readonly string[] = ['all', 'any', 'all-with-x', 'any-with-x'];

export function headersMatch(args: FieldTable, headers: FieldTable): boolean {
  const mode = plain(args['x-match']);
  const any = mode === 'any' || mode === 'any-with-x';
  const withX = mode === 'all-with-x' || mode === 'any-with-x';
  for (const key of Object.keys(args)) {
    if (key === 'x-match') continue;
    if (!withX && key.startsWith('x-')) continue;
    const want = plain(args[key]);
    const has = Object.prototype.hasOwnProperty.call(headers, key);
    const ok = has && (want === null || want === undefined || sameValue(want, plain(headers[key])));
    if (any && ok) return true;
    if (!any && !ok) return false;
  }
  return !any;
}

function plain(v: FieldValue): FieldValue {
  return v instanceof TypedValue ? v.value : v;
}

function sameValue(a: FieldValue, b: FieldValue): boolean {
  if (a === b) return true;
  if (typeof a === 'bigint' || typeof b === 'bigint') {
    const isInt = (x: FieldValue): x is number | bigint =>
      typeof x === 'bigint' || (typeof x === 'number' && Number.isInteger(x));
    return isInt(a) && isInt(b) && BigInt(a) === BigInt(b);
  }
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.from(a).equals(b);
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (a instanceof Decimal && b instanceof Decimal)
    return a.scale === b.scale && a.value === b.value;
  return JSON.stringify(a) === JSON.stringify(b);
}
