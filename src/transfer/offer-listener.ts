import type { Channel, Consumer } from '../client/index.js';
import type { ReceiveOptions, TransferEndpoint } from './endpoint.js';
import type { IncomingTransfer } from './incoming-transfer.js';
import { MessageKind, offerFromTable, protocolError } from './protocol.js';

export interface AcceptOptions extends ReceiveOptions {
  /** Offers taken from the queue ahead of the application (default 1). */
  prefetch?: number | undefined;
  /** Declare the queue (durable) first (default true). */
  declare?: boolean | undefined;
}

/**
 * Offers arriving on a queue, as incoming transfers: `for await (const t of listener)`. An offer
 * is acknowledged when it is handed out, so with several receivers on one queue each offer goes
 * to exactly one. A malformed offer is rejected (dead-lettered if the queue has a dead-letter
 * exchange) and reported through the endpoint's 'error' event. Leaving the loop stops listening;
 * offers not yet handed out go back to the queue.
 */
export class OfferListener implements AsyncIterableIterator<IncomingTransfer> {
  readonly queue: string;
  private readonly endpoint: TransferEndpoint;
  private readonly channel: Channel;
  private readonly consumer: Consumer;
  private readonly options: AcceptOptions;

  private constructor(
    endpoint: TransferEndpoint,
    queue: string,
    channel: Channel,
    consumer: Consumer,
    options: AcceptOptions,
  ) {
    this.endpoint = endpoint;
    this.queue = queue;
    this.channel = channel;
    this.consumer = consumer;
    this.options = options;
  }

  /** @internal use `endpoint.accept()`. */
  static async open(
    endpoint: TransferEndpoint,
    queue: string,
    options: AcceptOptions,
  ): Promise<OfferListener> {
    if (options.declare !== false) await endpoint.ensureQueue(queue);
    const prefetch = options.prefetch ?? 1;
    const ch = await endpoint.connection.channel();
    try {
      const consumer = await ch.consume(queue, { prefetch });
      return new OfferListener(endpoint, queue, ch, consumer, options);
    } catch (err) {
      await ch.close().catch(() => undefined);
      throw err;
    }
  }

  /** The next offer, as an incoming transfer that starts pulling when it is read. */
  async next(): Promise<IteratorResult<IncomingTransfer>> {
    // Each pass takes one message: an offer to hand out, or one that is dropped.
    for (;;) {
      const r = await this.consumer.next();
      if (r.done === true) return { value: undefined, done: true };
      const m = r.value;
      try {
        if (m.properties.type !== MessageKind.Offer) {
          throw protocolError(
            m.properties.correlationId ?? '',
            `a message of type '${m.properties.type ?? ''}' on offer queue '${this.queue}'`,
          );
        }
        const offer = offerFromTable(m.properties.headers);
        m.ack();
        // The same offer again (published twice): it is already ours.
        if (this.endpoint.isReceiving(offer.id)) continue;
        return { value: this.endpoint.receive(offer, this.options), done: false };
      } catch (err) {
        if (!m.settled) m.reject({ requeue: false });
        this.endpoint.report(err as Error);
      }
    }
  }

  /** Stop listening. */
  async close(): Promise<void> {
    await this.consumer.return();
    await this.channel.close().catch(() => undefined);
  }

  async return(): Promise<IteratorResult<IncomingTransfer>> {
    await this.close();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
