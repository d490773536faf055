/**
 * A management client as busy as several open web UI tabs: it fetches what the UI refreshes
 * (overview, queues, connections, channels, exchanges) from a management HTTP API, one request
 * after another with a pause between rounds, until stopped. RabbitMQ's and Warren's APIs answer
 * the same paths.
 */
import { sleep } from './clock.js';

const PATHS = [
  '/api/overview',
  '/api/queues',
  '/api/connections',
  '/api/channels',
  '/api/exchanges',
];

export interface Poller {
  /** Stop after the request in progress. */
  stop(): Promise<void>;
  /** Requests answered and failed so far. */
  counts(): { requests: number; failures: number };
}

export function pollManagement(baseUrl: string, pauseMs: number, user = 'guest:guest'): Poller {
  const auth = `Basic ${Buffer.from(user).toString('base64')}`;
  let stopping = false;
  let requests = 0;
  let failures = 0;
  const loop = (async () => {
    while (!stopping) {
      for (const path of PATHS) {
        if (stopping) break;
        try {
          const res = await fetch(baseUrl + path, {
            headers: { authorization: auth },
            signal: AbortSignal.timeout(10_000),
          });
          await res.arrayBuffer();
          if (res.ok) requests++;
          else failures++;
        } catch {
          failures++;
        }
      }
      await sleep(pauseMs);
    }
  })();
  return {
    async stop() {
      stopping = true;
      await loop;
    },
    counts: () => ({ requests, failures }),
  };
}
