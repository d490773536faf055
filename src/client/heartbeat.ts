import type { FrameOutput } from './frame-output.js';

/**
 * Heartbeats of one session. Every half interval it sends a heartbeat frame if nothing else went
 * out, and counts half intervals in which nothing came in: after two whole intervals of silence
 * the peer is considered gone (the spec's rule; a dead TCP path may otherwise go unnoticed for
 * many minutes).
 */
export class Heartbeat {
  /** Something arrived since the last check. */
  received = false;
  private timer: NodeJS.Timeout | null = null;
  private missed = 0;

  constructor(
    private readonly output: FrameOutput,
    private readonly onSilent: (seconds: number) => void,
  ) {}

  start(seconds: number): void {
    this.stop();
    if (seconds === 0) return;
    this.output.sentSinceBeat = true;
    this.received = true;
    this.missed = 0;
    this.timer = setInterval(() => this.check(seconds), seconds * 500);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private check(seconds: number): void {
    if (!this.output.sentSinceBeat) this.output.sendHeartbeat();
    this.output.sentSinceBeat = false;
    if (this.received) this.missed = 0;
    else if (++this.missed >= 4) {
      this.stop();
      this.onSilent(seconds * 2);
      return;
    }
    this.received = false;
  }
}
