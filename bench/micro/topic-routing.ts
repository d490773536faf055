import type { Binding as BindingType } from '../../src/broker/binding.js';
import { Binding } from '../../src/broker/binding.js';
import { TopicExchange } from '../../src/broker/exchange/topic-exchange.js';
import type { Message } from '../../src/broker/message.js';
import type { Queue } from '../../src/broker/queue.js';
import { consume } from './harness.js';
import type { MicroCase } from './harness.js';

/**
 * Topic routing with many bindings: `bindings` patterns over a vocabulary of region.service.level
 * keys (exact keys, '*' and '#' patterns mixed), routed with keys that match a few of them.
 */
export function topicRoutingCases(): MicroCase[] {
  const cases: MicroCase[] = [];
  for (const count of [100, 10_000]) {
    const ex = new TopicExchange('/', `bench-${count}`, {
      durable: false,
      autoDelete: false,
      internal: false,
      arguments: {},
    });
    for (let i = 0; i < count; i++) {
      const region = `r${i % 50}`;
      const service = `s${Math.floor(i / 50) % 40}`;
      const pattern =
        i % 10 === 0
          ? `${region}.*.error`
          : i % 10 === 1
            ? `${region}.#`
            : `${region}.${service}.info`;
      const q = { name: `q${i}` } as unknown as Queue;
      ex.addBinding(new Binding(ex, q, 'queue', pattern, {}));
    }
    const keys = Array.from(
      { length: 256 },
      (_, i) => `r${i % 50}.s${i % 40}.${i % 3 === 0 ? 'error' : 'info'}`,
    );
    const out: BindingType[] = [];
    const message = null as unknown as Message;
    cases.push({
      name: `topic route, ${count.toLocaleString('en-US')} bindings`,
      ops: keys.length,
      run: () => {
        for (const k of keys) {
          ex.match(message, k, out);
          consume(out.length);
          out.length = 0;
        }
      },
    });
  }
  return cases;
}
