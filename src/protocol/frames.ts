import { FRAME_OVERHEAD, FrameType } from './generated/constants.js';
import { encodeMethod } from './generated/methods.js';
import type { AnyMethod } from './generated/methods.js';
import { decodeBasicProperties, encodeBasicProperties } from './generated/properties.js';
import type { BasicProperties } from './generated/properties.js';
import { Reader } from './reader.js';
import type { Writer } from './writer.js';

/** Append a complete method frame. */
export function writeMethodFrame(w: Writer, channel: number, m: AnyMethod): void {
  const start = w.startFrame(FrameType.Method, channel);
  encodeMethod(w, m);
  w.endFrame(start);
}

/** Append a content header frame for the basic class. */
export function writeHeaderFrame(
  w: Writer,
  channel: number,
  bodySize: number,
  properties: BasicProperties,
): void {
  const start = w.startFrame(FrameType.Header, channel);
  w.u16(60);
  w.u16(0);
  w.u64(bodySize);
  encodeBasicProperties(w, properties);
  w.endFrame(start);
}

/** Append body frames, none larger than frameMax (0 means unlimited). */
export function writeBodyFrames(
  w: Writer,
  channel: number,
  body: Uint8Array,
  frameMax: number,
): void {
  const maxPayload = frameMax === 0 ? body.length : frameMax - FRAME_OVERHEAD;
  for (let off = 0; off < body.length; off += maxPayload) {
    const chunk = body.subarray(off, Math.min(off + maxPayload, body.length));
    const start = w.startFrame(FrameType.Body, channel);
    w.bytes(chunk);
    w.endFrame(start);
  }
}

export function writeHeartbeatFrame(w: Writer): void {
  const start = w.startFrame(FrameType.Heartbeat, 0);
  w.endFrame(start);
}

/** The fixed part of a content header frame's payload. */
export interface ContentHeader {
  classId: number;
  bodySize: number;
  /** Offset in the payload where the property flags start. */
  propertiesOffset: number;
}

/** Read class-id, weight and body size; the property list is left for lazy decoding. */
export function readContentHeader(r: Reader): ContentHeader {
  const classId = r.u16();
  r.u16(); // weight, unused in 0-9-1
  const bodySize = r.u64();
  return { classId, bodySize, propertiesOffset: r.pos };
}

/** Decode a full content header payload. */
export function decodeContentHeader(payload: Buffer): ContentHeader & {
  properties: BasicProperties;
} {
  const r = new Reader(payload);
  const h = readContentHeader(r);
  return { ...h, properties: decodeBasicProperties(r) };
}
