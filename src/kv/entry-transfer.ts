/**
 * Entry streams between replicas, sent with warren/transfer: the full export a joining worker
 * pulls, and the entries an anti-entropy round repairs. The sender offers a stream of records
 * (messages.ts' entryStream, encoded only as the receiver pulls) and hands the offer over by RPC;
 * the receiver pulls it and merges each entry into its store. One transfer endpoint, opened on
 * first use, carries every stream of the worker.
 */
import type { Connection } from '../client/index.js';
import { offerFromJson, transferEndpoint } from '../transfer/index.js';
import type { TransferEndpoint, TransferOffer } from '../transfer/index.js';
import type { HybridClock } from './hlc.js';
import { EntryStreamDecoder, entryStream } from './messages.js';
import type { Update } from './messages.js';
import type { KvStore } from './store.js';
import { keyString } from './store.js';

export class EntryTransfer {
  private endpoint: Promise<TransferEndpoint> | null = null;

  /** `conn` is asked for when the first stream is sent or received. */
  constructor(
    private readonly conn: () => Connection,
    private readonly store: KvStore,
    private readonly clock: HybridClock,
    private readonly log: (line: string) => void,
  ) {}

  /** Offer entries as a stream for a peer to pull; resolves with the offer to hand over. */
  async offer(total: number, entries: Iterable<Update>): Promise<TransferOffer> {
    const ep = await this.transferEndpoint();
    const out = await ep.offer(entryStream(total, entries), { acceptTimeout: 60_000 });
    out.done.catch((err: unknown) =>
      this.log(`an entry stream was not delivered: ${(err as Error).message}`),
    );
    return out.offer;
  }

  /** Receive an entry stream and merge each entry (with `horizon`, see KvStore.merge). */
  async pull(
    offer: unknown,
    horizon: number,
    progress?: (count: number, bytes: number) => void,
  ): Promise<{ count: number; applied: number; bytes: number }> {
    const ep = await this.transferEndpoint();
    const inc = ep.receive(offerFromJson(offer));
    const dec = new EntryStreamDecoder();
    let applied = 0;
    let bytes = 0;
    let lastReport = Date.now();
    for await (const chunk of inc) {
      bytes += chunk.length;
      dec.push(chunk, (u) => {
        this.clock.observe(u.stamp.hlc);
        if (this.store.merge(keyString(u.key), u.value, u.stamp, horizon)) applied++;
      });
      if (progress !== undefined && Date.now() - lastReport > 1000) {
        lastReport = Date.now();
        progress(dec.entries, bytes);
      }
    }
    dec.finish();
    return { count: dec.entries, applied, bytes };
  }

  /** Close the endpoint, if one was opened. */
  close(): Promise<void> | undefined {
    return this.endpoint?.then((t) => t.close());
  }

  private transferEndpoint(): Promise<TransferEndpoint> {
    this.endpoint ??= transferEndpoint(this.conn(), {
      chunkSize: 256 * 1024,
      window: 32,
      senderWindow: 32,
      acceptTimeout: 60_000,
    });
    return this.endpoint;
  }
}
