/**
 * Anti-entropy (seed 003): push-pull rounds between two replicas that repair whatever the
 * replication stream did not deliver. The caller compares the peer's bucket digests with its own;
 * for the buckets that differ it sends its versions, the peer answers with the entries the caller
 * lacks (an entry stream) and the keys it wants back, and the caller pushes those. Deletes travel
 * as death certificates, so a round does not bring a deleted key back while they are kept.
 *
 * Both sides are here: `round` and `closeGaps` on the caller's, `digest`, `reconcile` and `push`
 * (the worker's RPC methods of the same names) on the peer's. When to run a round is the worker's
 * call.
 */
import type { ServiceClient } from '../rpc/index.js';
import type { WorkerService } from './contracts.js';
import type { EntryTransfer } from './entry-transfer.js';
import { MemberState } from './membership.js';
import type { Member, Membership } from './membership.js';
import type { Update } from './messages.js';
import type { KvStore } from './store.js';
import { keyBytes } from './store.js';
import { located } from './waits.js';
import type { Watermarks } from './watermarks.js';
import { WorkerStoppedError } from './worker-stopped-error.js';

export interface AntiEntropyOptions {
  /** This worker's id. */
  id: string;
  store: KvStore;
  marks: Watermarks;
  membership: Membership;
  transfer: EntryTransfer;
  /** The other workers' service; bound once the worker is connected, before any round runs. */
  peers: () => ServiceClient<typeof WorkerService>;
  /** Death certificates older than this timestamp are collected (see KvStore.merge). */
  horizon: () => number;
  /** Until when (ms since the epoch) a departed worker's watermark is kept, from now. */
  retainUntil: () => number;
  /** Whether the worker is stopping: no round starts then. */
  isStopping: () => boolean;
  log: (line: string) => void;
}

/** Buckets compared per reconcile call. */
const AE_BATCH = 256;

export class AntiEntropy {
  /** Entries this replica received in rounds, its own or a peer's. */
  repaired = 0;
  private readonly o: AntiEntropyOptions;
  /** Rounds run one after the other; this settles when the last one queued does. */
  private queue: Promise<void> = Promise.resolve();

  constructor(o: AntiEntropyOptions) {
    this.o = o;
  }

  /**
   * One round with `peer`, after any round already running. Afterwards this replica holds
   * everything the peer held when it sent its digest, so it also holds every stream as far as the
   * peer did. Callers that need that (catching up, closing gaps) so always get a round of their
   * own.
   */
  round(peer: string): Promise<void> {
    const round = this.queue.then(() => this.runRound(peer));
    this.queue = round.catch(() => undefined);
    return round;
  }

  /** Rounds until no origin has a gap (bounded attempts; reads wait on barriers anyway). */
  async closeGaps(): Promise<void> {
    for (let i = 0; i < 5 && !this.o.isStopping(); i++) {
      const gaps = this.o.marks.gaps();
      if (gaps.length === 0) return;
      const peer = this.pickPeer(gaps);
      if (peer === undefined) return;
      await this.round(peer).catch((err: unknown) =>
        this.o.log(`anti-entropy with ${peer} failed: ${(err as Error).message}`),
      );
    }
  }

  /** A random ready peer, preferring one of `origins` (who holds its own writes in full). */
  pickPeer(origins: string[] = []): string | undefined {
    const ready = (m: Member): boolean => m.role === 'worker' && m.state === MemberState.Ready;
    for (const o of origins) {
      const m = this.o.membership.get(o);
      if (m !== undefined && m.alive && ready(m)) return o;
    }
    return this.o.membership.pick(1, ready)[0]?.id;
  }

  /**
   * Take over how far a peer held each stream (after receiving all it held). Streams of workers
   * this one does not know left before it joined (a joining worker learns every live one when it
   * registers): they are kept as retired marks for the retention period only, so that a session
   * that saw their writes can read here, without keeping their ids alive for ever.
   */
  absorbMarks(marks: readonly (readonly [string, number])[]): void {
    for (const [origin, seq] of marks) {
      if (
        origin === this.o.id ||
        this.o.marks.tracks(origin) ||
        this.o.membership.get(origin) !== undefined
      ) {
        this.o.marks.absorb(origin, seq);
      } else {
        this.o.marks.absorbDeparted(origin, seq, this.o.retainUntil());
      }
    }
  }

  /** The peer's step 1: bucket digests, and how far this replica holds each stream. */
  digest(): { digest: Buffer; watermarks: [origin: string, seq: number][] } {
    return { digest: this.o.store.digest(), watermarks: this.o.marks.snapshot() };
  }

  /** The peer's step 2: offer what the caller lacks in `buckets`, and list the keys it wants. */
  async reconcile({ buckets, summary }: { buckets: number[]; summary: Uint8Array }) {
    const { give, take } = this.o.store.compare(
      new Set(buckets),
      Buffer.from(summary.buffer, summary.byteOffset, summary.byteLength),
      this.o.horizon(),
    );
    const offer =
      give.length > 0 ? await this.o.transfer.offer(give.length, this.entriesFor(give)) : null;
    return { offer, give: give.length, want: encodeKeyList(take) };
  }

  /** The peer's step 3: pull the entries the caller pushed. */
  async push({ offer }: { offer: unknown }): Promise<number> {
    const r = await this.o.transfer.pull(offer, this.o.horizon());
    this.repaired += r.applied;
    if (r.applied > 0) this.o.log(`anti-entropy: ${r.applied} entries repaired by a peer`);
    return r.applied;
  }

  private async runRound(peer: string): Promise<void> {
    if (this.o.isStopping()) throw new WorkerStoppedError('stopping');
    const peers = this.o.peers();
    const d = await located(() =>
      peers.digest({ from: this.o.id }, { instance: peer, retry: false }),
    );
    const differ = this.o.store.differingBuckets(Buffer.from(d.digest));
    let got = 0;
    let gave = 0;
    for (let i = 0; i < differ.length; i += AE_BATCH) {
      const batch = differ.slice(i, i + AE_BATCH);
      const r = await peers.reconcile(
        { buckets: batch, summary: this.o.store.summary(new Set(batch)) },
        { instance: peer, retry: false },
      );
      if (r.offer !== null && r.offer !== undefined) {
        got += (await this.o.transfer.pull(r.offer, this.o.horizon())).applied;
      }
      const want = decodeKeyList(Buffer.from(r.want));
      if (want.length > 0) {
        const offer = await this.o.transfer.offer(want.length, this.entriesFor(want));
        gave += await peers.push({ offer }, { instance: peer, retry: false });
      }
    }
    this.absorbMarks(d.watermarks);
    if (got + gave > 0) {
      this.repaired += got;
      this.o.log(`anti-entropy with ${peer}: ${got} entries repaired here, ${gave} there`);
    }
  }

  private *entriesFor(keys: string[]): Generator<Update> {
    for (const k of keys) {
      const e = this.o.store.get(k);
      if (e === undefined) continue;
      yield {
        key: keyBytes(k),
        value: e.value,
        stamp: { hlc: e.hlc, origin: e.origin, seq: e.seq },
      };
    }
  }
}

/** keyLen (2), key, repeated. */
function encodeKeyList(keys: string[]): Buffer {
  const parts: Buffer[] = [];
  for (const k of keys) {
    const b = Buffer.allocUnsafe(2 + k.length);
    b.writeUInt16BE(k.length, 0);
    b.write(k, 2, 'latin1');
    parts.push(b);
  }
  return Buffer.concat(parts);
}

function decodeKeyList(b: Buffer): string[] {
  const out: string[] = [];
  let pos = 0;
  // Bounded by the buffer's length: each pass consumes one key.
  while (pos + 2 <= b.length) {
    const n = b.readUInt16BE(pos);
    out.push(b.toString('latin1', pos + 2, pos + 2 + n));
    pos += 2 + n;
  }
  return out;
}
