// A Warren broker in a child process, built from dist/, for the tests that kill it or measure it.
//
//   node [--expose-gc] broker-child.mjs '<BrokerOptions as JSON>'
//
// Prints `listening <port>` once it accepts connections. Reads commands from stdin, one per line:
//   stats  -> one line `stats {json}`: heap and RSS (after a full GC when --expose-gc is on),
//             the memory budget in use, the active alarms, and per-queue ready/tail counts
//   stop   -> a clean shutdown, then exit 0
import { createInterface } from 'node:readline';
import { Broker } from '../../dist/broker/index.js';

const options = JSON.parse(process.argv[2] ?? '{}');
const broker = new Broker({ port: 0, host: '127.0.0.1', ...options });
await broker.start();
process.stdout.write(`listening ${broker.port}\n`);

function stats() {
  if (typeof globalThis.gc === 'function') {
    globalThis.gc();
    globalThis.gc();
  }
  const mem = process.memoryUsage();
  const queues = {};
  for (const v of broker.vhosts.values()) {
    for (const q of v.queues.values()) {
      let tail = 0;
      for (const lane of q.lanes) tail += lane.tailCount;
      queues[q.name] = { messages: q.messageCount, tail, memoryBytes: q.memoryBytes };
    }
  }
  return {
    heapUsed: mem.heapUsed,
    rss: mem.rss,
    external: mem.external,
    arrayBuffers: mem.arrayBuffers,
    budgetUsed: broker.budget.used,
    alarms: [...broker.alarms],
    queues,
  };
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const cmd = line.trim();
  if (cmd === 'stats') {
    process.stdout.write(`stats ${JSON.stringify(stats())}\n`);
  } else if (cmd === 'stop') {
    lines.close();
    void broker.stop().then(() => process.exit(0));
  }
});
