import { crc32 } from './crc32.js';

/**
 * Message records in a segment file:
 *
 *   u32 magic 'WRN1' | u32 payload length | u32 crc32(payload) | payload
 *   payload = u64 seq | u64 expires-at (ms since the epoch, 0 = never) | u8 flags
 *           | u8 len + exchange | u8 len + routing key | u32 len + content header | body
 *
 * The magic lets recovery find the next record after a damaged one; the checksum catches torn
 * and corrupted writes.
 */
export const RECORD_MAGIC = 0x57524e31;
export const RECORD_OVERHEAD = 12;
export const RecordFlag = {
  /** A persistent message in a durable queue: recovered after a restart. */
  Persistent: 1,
  /** The body is in a blob file; the record's body is the blob reference (BLOB_REF_SIZE). */
  External: 2,
} as const;

/** Segment files start with this 8-byte header (format version 1). */
export const SEGMENT_HEADER = Buffer.from('WRNSEG01', 'latin1');

export interface RecordFields {
  seq: number;
  /** When the message expires (ms since the epoch), 0 for never: TTL survives paging and restarts. */
  expiresAt: number;
  flags: number;
  exchange: string;
  routingKey: string;
  header: Buffer;
  body: Buffer;
}

export function recordSize(
  exchange: string,
  routingKey: string,
  header: Buffer,
  body: Buffer,
): number {
  return (
    RECORD_OVERHEAD +
    8 +
    8 +
    1 +
    1 +
    Buffer.byteLength(exchange) +
    1 +
    Buffer.byteLength(routingKey) +
    4 +
    header.length +
    body.length
  );
}

/** Encode a record into `out` at `pos`; returns the position after it. */
export function writeRecord(out: Buffer, pos: number, r: RecordFields): number {
  const start = pos;
  out.writeUInt32BE(RECORD_MAGIC, pos);
  pos += RECORD_OVERHEAD;
  const payloadStart = pos;
  out.writeUInt32BE(Math.floor(r.seq / 0x1_0000_0000), pos);
  out.writeUInt32BE(r.seq >>> 0, pos + 4);
  out.writeUInt32BE(Math.floor(r.expiresAt / 0x1_0000_0000), pos + 8);
  out.writeUInt32BE(r.expiresAt >>> 0, pos + 12);
  pos += 16;
  out[pos++] = r.flags;
  const exLen = out.write(r.exchange, pos + 1, 'utf8');
  out[pos] = exLen;
  pos += 1 + exLen;
  const rkLen = out.write(r.routingKey, pos + 1, 'utf8');
  out[pos] = rkLen;
  pos += 1 + rkLen;
  out.writeUInt32BE(r.header.length, pos);
  pos += 4;
  r.header.copy(out, pos);
  pos += r.header.length;
  r.body.copy(out, pos);
  pos += r.body.length;
  out.writeUInt32BE(pos - payloadStart, start + 4);
  out.writeUInt32BE(crc32(out.subarray(payloadStart, pos)), start + 8);
  return pos;
}

export const RecordCheck = {
  Ok: 0,
  /** Not enough bytes for the record: a torn tail, or read further. */
  Short: 1,
  /** Wrong magic or checksum: damaged. */
  Bad: 2,
} as const;
export type RecordCheck = (typeof RecordCheck)[keyof typeof RecordCheck];

/** Validate the record at `pos` of `buf` (which holds bytes up to `end`). */
export function checkRecord(
  buf: Buffer,
  pos: number,
  end: number,
  verifyCrc: boolean,
): RecordCheck {
  if (end - pos < RECORD_OVERHEAD) return RecordCheck.Short;
  if (buf.readUInt32BE(pos) !== RECORD_MAGIC) return RecordCheck.Bad;
  const len = buf.readUInt32BE(pos + 4);
  if (len < 23) return RecordCheck.Bad;
  if (end - pos < RECORD_OVERHEAD + len) return RecordCheck.Short;
  if (verifyCrc) {
    const crc = crc32(buf.subarray(pos + RECORD_OVERHEAD, pos + RECORD_OVERHEAD + len));
    if (crc !== buf.readUInt32BE(pos + 8)) return RecordCheck.Bad;
  }
  return RecordCheck.Ok;
}

/** Total size of a validated record. */
export function recordLength(buf: Buffer, pos: number): number {
  return RECORD_OVERHEAD + buf.readUInt32BE(pos + 4);
}

export function recordSeq(buf: Buffer, pos: number): number {
  return buf.readUInt32BE(pos + 12) * 0x1_0000_0000 + buf.readUInt32BE(pos + 16);
}

/** Body size of a validated record (its length minus everything before the body). */
export function recordBodySize(buf: Buffer, pos: number): number {
  const end = pos + recordLength(buf, pos);
  let p = pos + RECORD_OVERHEAD + 17;
  p += 1 + buf[p]!;
  p += 1 + buf[p]!;
  const hLen = buf.readUInt32BE(p);
  return end - (p + 4 + hLen);
}

export function recordFlags(buf: Buffer, pos: number): number {
  return buf[pos + 28]!;
}

/**
 * Decode a validated record. Header and body are copied out so the read buffer can be reused;
 * they share one allocation.
 */
export function readRecord(buf: Buffer, pos: number): RecordFields {
  const end = pos + recordLength(buf, pos);
  let p = pos + RECORD_OVERHEAD;
  const seq = buf.readUInt32BE(p) * 0x1_0000_0000 + buf.readUInt32BE(p + 4);
  const expiresAt = buf.readUInt32BE(p + 8) * 0x1_0000_0000 + buf.readUInt32BE(p + 12);
  p += 16;
  const flags = buf[p++]!;
  const exLen = buf[p++]!;
  const exchange = buf.toString('utf8', p, p + exLen);
  p += exLen;
  const rkLen = buf[p++]!;
  const routingKey = buf.toString('utf8', p, p + rkLen);
  p += rkLen;
  const hLen = buf.readUInt32BE(p);
  p += 4;
  const content = Buffer.from(buf.subarray(p, end));
  return {
    seq,
    expiresAt,
    flags,
    exchange,
    routingKey,
    header: content.subarray(0, hLen),
    body: content.subarray(hLen),
  };
}

/**
 * Find the next plausible record start at or after `from` (a magic followed by a record whose
 * checksum verifies), to resynchronise after damage. Returns -1 if none.
 */
export function resync(buf: Buffer, from: number, end: number): number {
  const magic = Buffer.from([0x57, 0x52, 0x4e, 0x31]);
  let i = buf.indexOf(magic, from);
  while (i >= 0 && i < end) {
    if (checkRecord(buf, i, end, true) === RecordCheck.Ok) return i;
    i = buf.indexOf(magic, i + 1);
  }
  return -1;
}
