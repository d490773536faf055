import amqplib from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startManagedBroker, waitUntil } from './helpers.js';
import type { ManagedBroker } from './helpers.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * A strict reader of the Prometheus text format (0.0.4): every family has HELP and TYPE before
 * its samples, names and labels are well formed, values are numbers. Throws on anything else.
 */
function parsePrometheus(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const helped = new Set<string>();
  const samples: Sample[] = [];
  const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const sampleRe = new RegExp(`^(${NAME})(\\{(.*)\\})? (\\S+)$`);
  const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
  expect(text.endsWith('\n')).toBe(true);
  for (const line of text.slice(0, -1).split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line)) !== null) {
      if (helped.has(m[1]!)) throw new Error(`second HELP for ${m[1]}`);
      helped.add(m[1]!);
      continue;
    }
    if (
      (m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|summary|histogram|untyped)$`).exec(
        line,
      )) !== null
    ) {
      if (!helped.has(m[1]!)) throw new Error(`TYPE before HELP for ${m[1]}`);
      types.set(m[1]!, m[2]!);
      continue;
    }
    m = sampleRe.exec(line);
    if (m === null) throw new Error(`not a valid exposition line: ${JSON.stringify(line)}`);
    const name = m[1]!;
    const family = types.has(name) ? name : name.replace(/_(sum|count|bucket)$/, '');
    if (!types.has(family)) throw new Error(`sample ${name} without a TYPE line`);
    const labels: Record<string, string> = {};
    if (m[3] !== undefined && m[3] !== '') {
      labelRe.lastIndex = 0;
      const body = m[3];
      while (labelRe.lastIndex < body.length) {
        const l = labelRe.exec(body);
        if (l === null) throw new Error(`bad labels in ${JSON.stringify(line)}`);
        labels[l[1]!] = l[2]!.replace(/\\"/g, '"').replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      }
    }
    const raw = m[4]!;
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    if (Number.isNaN(value) && raw !== 'NaN')
      throw new Error(`bad value in ${JSON.stringify(line)}`);
    samples.push({ name, labels, value });
  }
  return { types, samples };
}

let w: ManagedBroker;
beforeAll(async () => {
  w = await startManagedBroker();
});
afterAll(async () => {
  await w.stop();
});

async function scrape(): Promise<{ types: Map<string, string>; samples: Sample[]; res: Response }> {
  const res = await fetch(`${w.http}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return { ...parsePrometheus(await res.text()), res };
}

const value = (
  samples: Sample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined =>
  samples.find(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  )?.value;

describe('/metrics', () => {
  it('is valid Prometheus text with queue depths, connections, memory, disk and confirm latency', async () => {
    const conn = await amqplib.connect(w.url);
    const ch = await conn.createConfirmChannel();
    // A queue name that needs escaping in a label value.
    const name = 'metric "q"\\1';
    await ch.assertQueue(name, { durable: false });
    for (let i = 0; i < 7; i++) ch.sendToQueue(name, Buffer.from('m'));
    await ch.waitForConfirms();
    const { types, samples } = await waitUntil(async () => {
      const s = await scrape();
      return (value(s.samples, 'warren_confirm_latency_seconds_count') ?? 0) > 0 ? s : undefined;
    }, 'a confirm latency observation');
    expect(value(samples, 'warren_queue_messages_ready', { vhost: '/', queue: name })).toBe(7);
    expect(value(samples, 'warren_queue_messages_published_total', { queue: name })).toBe(7);
    expect(value(samples, 'warren_connections')).toBe(1);
    expect(value(samples, 'warren_channels')).toBe(1);
    expect(value(samples, 'warren_messages_published_total')).toBe(7);
    expect(value(samples, 'warren_messages_confirmed_total')).toBe(7);
    expect(value(samples, 'warren_process_resident_memory_bytes')).toBeGreaterThan(1_000_000);
    expect(value(samples, 'warren_disk_free_bytes')).toBeGreaterThan(0);
    expect(value(samples, 'warren_queue_memory_bytes', { queue: name })).toBeGreaterThan(0);
    expect(value(samples, 'warren_confirm_latency_seconds_sum')).toBeGreaterThanOrEqual(0);
    expect(types.get('warren_confirm_latency_seconds')).toBe('summary');
    expect(types.get('warren_messages_published_total')).toBe('counter');
    expect(types.get('warren_queue_messages_ready')).toBe('gauge');
    const rate = await waitUntil(async () => {
      for (let i = 0; i < 20; i++) ch.sendToQueue(name, Buffer.from('m'));
      await ch.waitForConfirms();
      const s = await scrape();
      const v = value(s.samples, 'warren_message_rate_per_second', { kind: 'publish' }) ?? 0;
      return v > 0 ? v : undefined;
    }, 'a publish rate in metrics');
    expect(rate).toBeGreaterThan(0);
    await conn.close();
  });

  it('rejects malformed exposition text (the reader is strict)', () => {
    expect(() => parsePrometheus('x 1\n')).toThrow(/without a TYPE/);
    expect(() => parsePrometheus('# HELP x h\n# TYPE x gauge\nx{a="b} 1\n')).toThrow();
    expect(() => parsePrometheus('# HELP x h\n# TYPE x gauge\nx one\n')).toThrow(/bad value/);
  });
});
