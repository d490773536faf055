import {
  BasicPropertyFlag,
  Reader,
  Writer,
  decodeBasicProperties,
  encodeBasicProperties,
  withPreservedTypes,
} from '../protocol/index.js';
import type { BasicProperties } from '../protocol/index.js';
import type { Blob } from '../store/blob-store.js';

/** Offset of the property flags in a content header payload (class-id, weight, body-size). */
const PROPS_OFFSET = 12;

/**
 * A published message as the broker keeps it: the content header payload exactly as the publisher
 * sent it (so every property reaches consumers unchanged and is never re-encoded), and the body.
 * Properties are decoded only when routing or a feature needs them; the few the broker reads on
 * every publish (delivery mode, priority, expiration) are found by skipping, not decoding.
 */
export class Message {
  readonly exchange: string;
  readonly routingKey: string;
  /** Content header payload: class-id, weight, body-size, property flags, property list. */
  readonly header: Buffer;
  /** The body in memory; empty when it lives in `blob`. */
  readonly body: Buffer;
  /** A large body kept on disk, streamed to consumers instead of held in memory. */
  readonly blob: Blob | null;
  private props: BasicProperties | undefined;

  constructor(
    exchange: string,
    routingKey: string,
    header: Buffer,
    body: Buffer,
    blob: Blob | null = null,
  ) {
    this.exchange = exchange;
    this.routingKey = routingKey;
    this.header = header;
    this.body = body;
    this.blob = blob;
    this.props = undefined;
  }

  /** Build a message from decoded properties (used by the broker when it originates messages). */
  static create(
    exchange: string,
    routingKey: string,
    properties: BasicProperties,
    body: Buffer,
    blob: Blob | null = null,
  ): Message {
    const size = blob === null ? body.length : blob.size;
    const m = new Message(exchange, routingKey, encodeHeader(properties, size), body, blob);
    m.props = properties;
    return m;
  }

  get bodySize(): number {
    return this.blob === null ? this.body.length : this.blob.size;
  }

  /** Bytes this message holds in memory. */
  get memorySize(): number {
    return this.header.length + this.body.length;
  }

  /** The body as one buffer, read from disk if needed (management only: deliveries stream). */
  bodyBuffer(limit = Infinity): Buffer {
    if (this.blob === null)
      return limit < this.body.length ? this.body.subarray(0, limit) : this.body;
    return this.blob.readAll(Math.min(limit, this.blob.size));
  }

  get properties(): BasicProperties {
    if (this.props === undefined) {
      this.props = decodeBasicProperties(new Reader(this.header, PROPS_OFFSET));
    }
    return this.props;
  }

  /** Properties with header values keeping their wire types, for re-encoding them faithfully. */
  propertiesPreservingTypes(): BasicProperties {
    return withPreservedTypes(() => decodeBasicProperties(new Reader(this.header, PROPS_OFFSET)));
  }

  get propertyFlags(): number {
    return this.header.length >= PROPS_OFFSET + 2 ? this.header.readUInt16BE(PROPS_OFFSET) : 0;
  }

  /** delivery-mode 2. */
  get persistent(): boolean {
    if ((this.propertyFlags & BasicPropertyFlag.DeliveryMode) === 0) return false;
    const at = this.offsetOf(BasicPropertyFlag.DeliveryMode);
    return at >= 0 && this.header[at] === 2;
  }

  /** The priority property, 0 when absent. */
  get priority(): number {
    if ((this.propertyFlags & BasicPropertyFlag.Priority) === 0) return 0;
    const at = this.offsetOf(BasicPropertyFlag.Priority);
    return at >= 0 ? this.header[at]! : 0;
  }

  /** The expiration property as sent, or undefined. */
  get expiration(): string | undefined {
    if ((this.propertyFlags & BasicPropertyFlag.Expiration) === 0) return undefined;
    return this.properties.expiration;
  }

  get hasHeaders(): boolean {
    return (this.propertyFlags & BasicPropertyFlag.Headers) !== 0;
  }

  /** Byte range of the headers table's entries in `header`, or null when absent or empty. */
  headersRange(): [number, number] | null {
    const flags = this.propertyFlags;
    if ((flags & BasicPropertyFlag.Headers) === 0) return null;
    const h = this.header;
    let p = PROPS_OFFSET + 2;
    if ((flags & BasicPropertyFlag.ContentType) !== 0) p += 1 + (h[p] ?? 0);
    if ((flags & BasicPropertyFlag.ContentEncoding) !== 0) p += 1 + (h[p] ?? 0);
    if ((flags & 1) !== 0 || p + 4 > h.length) return [PROPS_OFFSET, h.length];
    const len = h.readUInt32BE(p);
    return len === 0 ? null : [p + 4, Math.min(p + 4 + len, h.length)];
  }

  /**
   * Offset in `header` of a property that comes before correlation-id (delivery mode or
   * priority), found by skipping the ones before it; -1 if the header is malformed.
   */
  private offsetOf(flag: number): number {
    const flags = this.propertyFlags;
    const h = this.header;
    let p = PROPS_OFFSET + 2;
    if ((flags & 1) !== 0) {
      // continuation flag words (none are defined in 0-9-1) are skipped
      while (p + 2 <= h.length && (h.readUInt16BE(p - 2) & 1) !== 0) p += 2;
    }
    if ((flags & BasicPropertyFlag.ContentType) !== 0) p += 1 + (h[p] ?? 0);
    if ((flags & BasicPropertyFlag.ContentEncoding) !== 0) p += 1 + (h[p] ?? 0);
    if ((flags & BasicPropertyFlag.Headers) !== 0) {
      if (p + 4 > h.length) return -1;
      p += 4 + h.readUInt32BE(p);
    }
    if (flag === BasicPropertyFlag.DeliveryMode) return p < h.length ? p : -1;
    if ((flags & BasicPropertyFlag.DeliveryMode) !== 0) p += 1;
    return p < h.length ? p : -1;
  }

  /** A copy with other properties and/or another routing, sharing the body. */
  withProperties(
    properties: BasicProperties,
    exchange = this.exchange,
    routingKey = this.routingKey,
  ): Message {
    return Message.create(exchange, routingKey, properties, this.body, this.blob);
  }
}

function encodeHeader(properties: BasicProperties, bodySize: number): Buffer {
  const w = new Writer(64);
  w.u16(60);
  w.u16(0);
  w.u64(bodySize);
  encodeBasicProperties(w, properties);
  return w.toBuffer();
}
