import type { AnyMethod } from '../protocol/index.js';
import type { Disarm } from './call-options.js';
import type { Message } from './message.js';

function noop(): void {}

/**
 * One synchronous request of a channel, from the call until its reply (or until the channel is
 * ready to send it). A call that timed out or was aborted is settled but stays queued, so that the
 * broker's reply, when it comes, is matched to it and not to the next request.
 */
export class Call {
  readonly method: AnyMethod;
  /** The reply expected; `alt` is the other possible one (basic.get: get-ok or get-empty). */
  readonly reply: number;
  readonly alt: number;
  /** Safe to send again on a new connection when the reply never came. */
  readonly retry: boolean;
  /** Runs when the reply arrives, even if the caller gave up (e.g. to record topology). */
  readonly onOk: ((m: AnyMethod) => void) | null;
  settled = false;
  disarm: Disarm = noop;
  resolve: (m: AnyMethod | Message | null) => void = noop;
  reject: (err: Error) => void = noop;

  constructor(
    method: AnyMethod,
    reply: number,
    alt: number,
    retry: boolean,
    onOk: ((m: AnyMethod) => void) | null,
  ) {
    this.method = method;
    this.reply = reply;
    this.alt = alt;
    this.retry = retry;
    this.onOk = onOk;
  }

  succeed(value: AnyMethod | Message | null): void {
    if (this.settled) return;
    this.settled = true;
    this.disarm();
    this.resolve(value);
  }

  fail(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.disarm();
    this.reject(err);
  }
}
