import { Duplex } from 'node:stream';

/**
 * One end of an in-process byte pipe. What is written to one end is read from the other, with
 * the same backpressure as a socket: a write that the peer has not read yet holds its callback
 * until the peer's reader asks for more, so `write()` returns false and 'drain' follows.
 */
class PipeEnd extends Duplex {
  peer: PipeEnd | null = null;
  /** The write callback held while the peer's readable buffer is full. */
  private blocked: (() => void) | null = null;

  constructor() {
    // allowHalfOpen false: when the peer ends, this end ends too, like a closed socket.
    super({
      allowHalfOpen: false,
      readableHighWaterMark: 256 * 1024,
      writableHighWaterMark: 256 * 1024,
    });
  }

  override _write(
    chunk: Buffer,
    _enc: BufferEncoding,
    callback: (err?: Error | null) => void,
  ): void {
    const peer = this.peer;
    if (peer === null || peer.destroyed) {
      callback();
      return;
    }
    if (peer.push(chunk)) callback();
    else peer.blocked = callback;
  }

  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    callback: (err?: Error | null) => void,
  ): void {
    const peer = this.peer;
    if (peer === null || peer.destroyed) {
      callback();
      return;
    }
    const data = chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk));
    if (peer.push(data)) callback();
    else peer.blocked = callback;
  }

  override _read(): void {
    const cb = this.blocked;
    if (cb !== null) {
      this.blocked = null;
      cb();
    }
  }

  override _final(callback: (err?: Error | null) => void): void {
    const peer = this.peer;
    if (peer !== null && !peer.destroyed) peer.push(null);
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const peer = this.peer;
    this.peer = null;
    const cb = this.blocked;
    this.blocked = null;
    cb?.();
    if (peer !== null) {
      peer.peer = null;
      // The other side sees the pipe close, as a socket's peer would.
      if (!peer.destroyed) peer.destroy();
    }
    callback(err);
  }
}

/** Two connected in-process duplex streams. */
export function createDuplexPair(): [Duplex, Duplex] {
  const a = new PipeEnd();
  const b = new PipeEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
