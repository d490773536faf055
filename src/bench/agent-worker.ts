import { parentPort, workerData } from 'node:worker_threads';
import { AgentGroup, SharedState } from './agent.js';
import type { AgentSpec } from './agent.js';

/** Worker-thread entry of `warren bench`: runs a group of agents on the main thread's signal. */
export interface AgentWorkerData {
  specs: AgentSpec[];
  shared: SharedArrayBuffer;
  agents: number;
}

export type ToWorker = { type: 'start' } | { type: 'stop' };
export type FromWorker =
  | { type: 'ready' }
  | { type: 'results'; results: Awaited<ReturnType<AgentGroup['stop']>> }
  | { type: 'error'; message: string };

const port = parentPort;
if (port !== null) {
  const data = workerData as AgentWorkerData;
  const group = new AgentGroup(data.specs, new SharedState(data.agents, data.shared));
  const send = (m: FromWorker): void => port.postMessage(m);
  port.on('message', (m: ToWorker) => {
    if (m.type === 'start') group.start();
    else {
      group.stop().then(
        (results) => {
          send({ type: 'results', results });
          port.close();
        },
        (err: unknown) => send({ type: 'error', message: String(err) }),
      );
    }
  });
  group.connect().then(
    () => send({ type: 'ready' }),
    (err: unknown) =>
      send({ type: 'error', message: err instanceof Error ? err.message : String(err) }),
  );
}
