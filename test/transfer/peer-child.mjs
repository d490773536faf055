// One end of a transfer in its own process, built from dist/, for the memory test and the bench.
//
//   node peer-child.mjs send    <url> <queue> <bytes> <seed> [chunkSize] [window] [stream|seekable]
//   node peer-child.mjs receive <url> <queue> [window]
//
// The payload is generated on the fly (AES-128-CTR keystream, see payloads.ts), never stored:
// the sender produces it chunk by chunk, the receiver hashes the stream it gets. Prints one JSON
// line at the end: the transfer summary, the SHA-256 the generator (sender) or the consumer
// (receiver) computed independently of the transfer code, RSS before the transfer and the
// process's peak RSS (VmHWM) after it.
import { createCipheriv, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { connect } from '../../dist/client/index.js';
import { TransferEndpoint } from '../../dist/transfer/index.js';

function status(field) {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(
    readFileSync('/proc/self/status', 'utf8'),
  );
  return m === null ? -1 : Number(m[1]) * 1024;
}

/** CPU time (user + system) of this process so far, in ms. */
function cpuMs() {
  const u = process.cpuUsage();
  return Math.round((u.user + u.system) / 1000);
}

function key(seed) {
  return createHash('sha256').update(`warren-transfer-test-${seed}`).digest().subarray(0, 16);
}

function generate(seed, offset, length) {
  const block = Math.floor(offset / 16);
  const skip = offset - block * 16;
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(block), 8);
  return createCipheriv('aes-128-ctr', key(seed), iv)
    .update(Buffer.alloc(skip + length))
    .subarray(skip);
}

const [role, url, queue, ...rest] = process.argv.slice(2);
const conn = await connect(url, { connectionName: `transfer-${role}-${process.pid}` });

if (role === 'send') {
  const size = Number(rest[0]);
  const seed = Number(rest[1]);
  const chunkSize = Number(rest[2] ?? 65536);
  const window = Number(rest[3] ?? 128);
  const kind = rest[4] ?? 'seekable';
  const ep = await TransferEndpoint.open(conn, { chunkSize, senderWindow: window });
  const hash = createHash('sha256');
  let source;
  if (kind === 'stream') {
    const cipher = createCipheriv('aes-128-ctr', key(seed), Buffer.alloc(16));
    const zeros = Buffer.alloc(65536);
    let made = 0;
    source = new Readable({
      read() {
        if (made >= size) return void this.push(null);
        const n = Math.min(zeros.length, size - made);
        const b = cipher.update(zeros.subarray(0, n));
        hash.update(b);
        made += n;
        this.push(b);
      },
    });
  } else {
    // Hashed in order by the generator's own pass, apart from what the transfer reads.
    let hashed = 0;
    source = {
      size,
      read(offset, length) {
        const b = generate(seed, offset, length);
        if (offset === hashed) {
          hash.update(b);
          hashed += length;
        }
        return b;
      },
    };
  }
  const baseline = status('VmRSS');
  const t = await ep.send(queue, source, { name: `generated-${seed}` });
  const summary = await t.done;
  const peak = status('VmHWM');
  process.stdout.write(
    `${JSON.stringify({ role, summary, generatedSha256: hash.digest('hex'), baseline, peak, cpu: cpuMs() })}\n`,
  );
  await ep.close();
} else if (role === 'receive') {
  const window = Number(rest[0] ?? 32);
  const ep = await TransferEndpoint.open(conn, { window });
  const listener = await ep.accept(queue);
  const baseline = status('VmRSS');
  const { value: t } = await listener.next();
  await listener.close();
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of t.stream()) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  const summary = await t.done;
  const peak = status('VmHWM');
  process.stdout.write(
    `${JSON.stringify({ role, summary, bytes, consumedSha256: hash.digest('hex'), baseline, peak, cpu: cpuMs() })}\n`,
  );
  await ep.close();
} else {
  throw new Error(`unknown role ${role}`);
}
await conn.close();
