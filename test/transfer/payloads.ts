/**
 * Payloads for transfer tests, generated on the fly so that multi-GiB ones are never stored:
 * a keyed AES-128-CTR keystream is pseudo-random, reproducible from (seed, offset), and fast
 * (OpenSSL, GB/s), so the same bytes can be produced at any offset by the sender and checked by
 * hashing on the receiving side.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { RandomAccessSource } from '../../src/transfer/index.js';

function key(seed: number): Buffer {
  return createHash('sha256').update(`warren-transfer-test-${seed}`).digest().subarray(0, 16);
}

/** `length` bytes of payload `seed` at `offset` (any offset). */
export function generate(seed: number, offset: number, length: number): Buffer {
  const block = Math.floor(offset / 16);
  const skip = offset - block * 16;
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(block), 8);
  const c = createCipheriv('aes-128-ctr', key(seed), iv);
  const out = c.update(Buffer.alloc(skip + length));
  return out.subarray(skip);
}

/** A payload of `size` bytes readable at any offset (a seekable source). */
export function generatedSource(size: number, seed: number): RandomAccessSource {
  return { size, read: (offset, length) => generate(seed, offset, length) };
}

/** The same payload as a one-pass stream in pieces of `piece` bytes; `sha256()` once it ended. */
export function generatedStream(
  size: number,
  seed: number,
  piece = 64 * 1024,
): Readable & { sha256(): string } {
  const hash = createHash('sha256');
  const iv = Buffer.alloc(16);
  const cipher = createCipheriv('aes-128-ctr', key(seed), iv);
  const zeros = Buffer.alloc(piece);
  let sent = 0;
  let digest: string | null = null;
  const r = new Readable({
    highWaterMark: piece,
    read() {
      if (sent >= size) {
        this.push(null);
        return;
      }
      const n = Math.min(piece, size - sent);
      const b = cipher.update(n === piece ? zeros : zeros.subarray(0, n));
      hash.update(b);
      sent += n;
      this.push(b);
    },
  }) as Readable & { sha256(): string };
  r.sha256 = () => (digest ??= hash.digest('hex'));
  return r;
}

/** SHA-256 of payload `seed` of `size` bytes, computed by generating it. */
export function generatedSha256(size: number, seed: number): string {
  const hash = createHash('sha256');
  const step = 4 * 1024 * 1024;
  for (let off = 0; off < size; off += step)
    hash.update(generate(seed, off, Math.min(step, size - off)));
  return hash.digest('hex');
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}
