import { decodeBasicProperties } from '../protocol/index.js';
import type {
  BasicDeliver,
  BasicGetOk,
  BasicProperties,
  BasicReturn,
  Reader,
} from '../protocol/index.js';
import type { Call } from './call.js';

export const ContentKind = { None: 0, Deliver: 1, Get: 2, Return: 3 } as const;
export type ContentKind = (typeof ContentKind)[keyof typeof ContentKind];

const EMPTY = Buffer.alloc(0);

/**
 * The content-bearing method a channel is receiving (basic.deliver, get-ok or return) and its
 * header and body frames. The body is copied once, from the frames into a buffer of the announced
 * size, so that a message never pins the (larger) network chunk it arrived in.
 */
export class ContentAssembler {
  kind: ContentKind = ContentKind.None;
  deliver: BasicDeliver | null = null;
  getOk: BasicGetOk | null = null;
  /** The basic.get request the get-ok answers. */
  getCall: Call | null = null;
  returned: BasicReturn | null = null;
  properties: BasicProperties | null = null;
  body: Buffer | null = null;
  private received = 0;

  get busy(): boolean {
    return this.kind !== ContentKind.None;
  }

  /**
   * A content header. Returns true when the content is complete (empty body); false when
   * the header does not belong here (no method before it).
   */
  header(r: Reader): boolean | null {
    if (this.kind === ContentKind.None || this.properties !== null) return null;
    r.u16(); // class-id
    r.u16(); // weight
    const size = r.u64();
    this.properties = decodeBasicProperties(r);
    this.received = 0;
    this.body = size === 0 ? EMPTY : Buffer.allocUnsafe(size);
    return size === 0;
  }

  /** A body frame. Returns true when the body is complete; null when it does not fit. */
  bodyFrame(payload: Buffer): boolean | null {
    const body = this.body;
    if (body === null || body === EMPTY || this.received + payload.length > body.length) {
      return null;
    }
    payload.copy(body, this.received);
    this.received += payload.length;
    return this.received === body.length;
  }

  reset(): void {
    this.kind = ContentKind.None;
    this.deliver = null;
    this.getOk = null;
    this.getCall = null;
    this.returned = null;
    this.properties = null;
    this.body = null;
    this.received = 0;
  }
}
