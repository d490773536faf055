import { TypedValue } from '../protocol/index.js';
import type { FieldTable, FieldValue } from '../protocol/index.js';

export const Overflow = {
  DropHead: 'drop-head',
  RejectPublish: 'reject-publish',
  RejectPublishDlx: 'reject-publish-dlx',
} as const;
export type Overflow = (typeof Overflow)[keyof typeof Overflow];

/** What a queue's x-arguments ask of it (already validated by the vhost on declare). */
export interface QueueFeatures {
  /** x-message-ttl in ms. */
  messageTtl: number | null;
  /** x-expires in ms: delete the queue after it has been unused this long. */
  expires: number | null;
  maxLength: number | null;
  maxLengthBytes: number | null;
  overflow: Overflow;
  deadLetterExchange: string | null;
  deadLetterRoutingKey: string | null;
  /** x-max-priority; 0 for an ordinary queue. */
  maxPriority: number;
  singleActiveConsumer: boolean;
}

export function queueFeatures(args: FieldTable): QueueFeatures {
  const int = (key: string): number | null => {
    const v = plain(args[key]);
    if (typeof v === 'number') return v;
    if (typeof v === 'bigint') return Number(v);
    return null;
  };
  const str = (key: string): string | null => {
    const v = plain(args[key]);
    return typeof v === 'string' ? v : null;
  };
  const overflow = str('x-overflow');
  return {
    messageTtl: int('x-message-ttl'),
    expires: int('x-expires'),
    maxLength: int('x-max-length'),
    maxLengthBytes: int('x-max-length-bytes'),
    overflow:
      overflow === Overflow.RejectPublish || overflow === Overflow.RejectPublishDlx
        ? overflow
        : Overflow.DropHead,
    deadLetterExchange: str('x-dead-letter-exchange'),
    deadLetterRoutingKey: str('x-dead-letter-routing-key'),
    maxPriority: Math.min(int('x-max-priority') ?? 0, 255),
    singleActiveConsumer: plain(args['x-single-active-consumer']) === true,
  };
}

function plain(v: FieldValue): FieldValue {
  return v instanceof TypedValue ? v.value : v;
}

/** RabbitMQ's largest TTL or expiry, in ms (ten years); larger values are refused. */
export const MAX_EXPIRY_MS = 315_360_000_000;

/**
 * The expiration property as milliseconds, or an error text in RabbitMQ's words
 * ("invalid expiration 'abc': no_integer"). RabbitMQ parses it with Erlang's string:to_integer,
 * so a leading '+' and leading zeros are fine and trailing text is a `leftover_string`.
 */
export function parseExpiration(expiration: string): number | string {
  // The common case, plain digits within the limit, without a regular expression or a BigInt:
  // RPC requests carry an expiration on every message.
  const len = expiration.length;
  if (len > 0 && len <= 12) {
    let n = 0;
    let i = 0;
    for (; i < len; i++) {
      const c = expiration.charCodeAt(i) - 48;
      if (c < 0 || c > 9) break;
      n = n * 10 + c;
    }
    if (i === len && n <= MAX_EXPIRY_MS) return n;
  }
  const prefix = `invalid expiration '${expiration}': `;
  const m = /^([+-]?\d+)(.*)$/s.exec(expiration);
  if (m === null) return `${prefix}no_integer`;
  if (m[2] !== '') return `${prefix}{leftover_string,${JSON.stringify(m[2])}}`;
  const n = BigInt(m[1]!);
  // Erlang's ~p breaks a term that would run past column 80 after its first element.
  const term = (tag: string): string => {
    const flat = `{${tag},${n}}`;
    if (prefix.length + flat.length <= 80) return flat;
    return `{${tag},\n${' '.repeat(prefix.length + 1)}${n}}`;
  };
  if (n < 0n) return prefix + term('value_negative');
  if (n > BigInt(MAX_EXPIRY_MS)) return prefix + term('value_too_large');
  return Number(n);
}
