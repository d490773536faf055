/** What `warren bench` runs: PerfTest-style knobs for publishers, consumers and queues. */
export interface LoadOptions {
  /** amqp:// URL of the broker under test. */
  url: string;
  publishers: number;
  consumers: number;
  /** Queues declared for the run; publisher i and consumer i use queue i mod queues. */
  queues: number;
  /** Body size in bytes; bodies of 8 bytes or more carry a send timestamp for latency. */
  size: number;
  /** Publishes awaiting a confirm per publisher; 0 publishes without confirm mode. */
  confirm: number;
  /** delivery_mode 2 (the queues are then declared durable). */
  persistent: boolean;
  /** basic.qos per consumer; 0 means unlimited. */
  prefetch: number;
  /** manual: each message is acked (the client coalesces in-order acks); auto: no-ack consume. */
  ack: AckMode;
  /** Measured seconds (after the warm-up). */
  duration: number;
  /** Seconds run before measuring starts (JIT, connection ramp-up). */
  warmup: number;
  /** Messages per second per publisher; 0 is as fast as possible. */
  rate: number;
  /** Messages each publisher sends before it stops; 0 is no limit (the duration decides). */
  messages: number;
  /** Publish to this exchange instead of straight to the queues (the queues are bound to it). */
  exchange: string;
  exchangeType: 'direct' | 'fanout' | 'topic';
  /** Declare queues durable even with transient messages. */
  durable: boolean;
  /** Name of the queue (with one queue) or name prefix of the queues declared for the run. */
  queuePrefix: string;
  /** Leave the queues (and exchange) in place after the run instead of deleting them. */
  keepQueues: boolean;
  /** Worker threads for the publishers and consumers; 0 runs them on the main thread. */
  threads: number;
  /** Process whose RSS and CPU to report; null finds the listener of the URL's port if it can. */
  brokerPid: number | null;
  /** Print a progress line every second. */
  progress: boolean;
}

export type AckMode = 'manual' | 'auto';

export const LOAD_DEFAULTS: Omit<LoadOptions, 'queuePrefix'> = {
  url: 'amqp://guest:guest@127.0.0.1:5672',
  publishers: 1,
  consumers: 1,
  queues: 1,
  size: 16,
  confirm: 0,
  persistent: false,
  prefetch: 1000,
  ack: 'manual',
  duration: 10,
  warmup: 1,
  rate: 0,
  messages: 0,
  exchange: '',
  exchangeType: 'direct',
  durable: false,
  keepQueues: false,
  threads: -1,
  brokerPid: null,
  progress: false,
};

/** Options with defaults for what is not given; `threads: -1` means one thread per agent, max 2. */
export function loadOptions(o: Partial<LoadOptions>): LoadOptions {
  const merged = {
    ...LOAD_DEFAULTS,
    queuePrefix: `warren-bench-${process.pid}-${Date.now().toString(36)}`,
    ...o,
  };
  if (merged.threads < 0) merged.threads = Math.min(2, merged.publishers + merged.consumers);
  return merged;
}
