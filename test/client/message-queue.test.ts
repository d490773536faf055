import { expect, it } from 'vitest';
import { ClientError } from '../../src/client/index.js';
import type { Message } from '../../src/client/index.js';
import { countBecomes, describeBrokers, until } from './brokers.js';

describeBrokers('message-queue API (put / get / poll / notify)', (target) => {
  it('put appends; poll takes without waiting and answers null when empty', async () => {
    const t = target();
    const conn = await t.connect();
    const q = await conn.queue(t.name('q'));
    expect(await q.poll()).toBeNull();
    await q.put('first');
    await q.put(Buffer.from('second'), { headers: { n: 2 } });
    expect(await q.size()).toBe(2);
    const a = await q.poll();
    const b = await q.poll();
    expect([a?.text(), b?.text()]).toEqual(['first', 'second']);
    expect(b?.properties.headers).toEqual({ n: 2 });
    expect(await q.poll()).toBeNull();
    a!.ack();
    b!.ack();
    expect(await q.size()).toBe(0);
  });

  it('get blocks until a message is put, from another connection', async () => {
    const t = target();
    const name = t.name('q');
    const consumerSide = await (await t.connect()).queue(name);
    const producerSide = await (await t.connect()).queue(name);
    let got: Message | null = null;
    const waiting = consumerSide.get({ timeout: 20_000 }).then((m) => (got = m));
    // Still waiting after a round trip to the broker: nothing was there.
    expect(await consumerSide.size()).toBe(0);
    expect(got).toBeNull();
    await producerSide.put('hello');
    await waiting;
    expect(got!.text()).toBe('hello');
    got!.ack();
    expect(await countBecomes(producerSide.channel, name, 0)).toBe(0);
  });

  it('acknowledgement is explicit: an unacked message goes back when its handle closes', async () => {
    const t = target();
    const name = t.name('q');
    const conn = await t.connect();
    const q1 = await conn.queue(name);
    await q1.put('keep me');
    const m = await q1.get();
    expect(m.text()).toBe('keep me');
    await q1.close();
    const q2 = await conn.queue(name);
    const again = await q2.get({ timeout: 10_000 });
    expect(again.text()).toBe('keep me');
    expect(again.redelivered).toBe(true);
    again.ack();
    expect(await q2.poll()).toBeNull();
  });

  it('get times out or aborts without losing a message put afterwards', async () => {
    const t = target();
    const conn = await t.connect();
    const q = await conn.queue(t.name('q'));
    const timedOut = await q.get({ timeout: 50 }).catch((e: unknown) => e);
    expect(timedOut).toBeInstanceOf(ClientError);
    expect((timedOut as ClientError).code).toBe('WARREN_ERR_TIMEOUT');
    const ac = new AbortController();
    const aborted = q.get({ signal: ac.signal }).catch((e: unknown) => e);
    ac.abort();
    expect(((await aborted) as ClientError).code).toBe('WARREN_ERR_ABORTED');
    await q.put('later');
    const m = await q.get({ timeout: 10_000 });
    expect(m.text()).toBe('later');
    m.ack();
  });

  it('concurrent gets each receive a different message', async () => {
    const t = target();
    const conn = await t.connect();
    const name = t.name('q');
    const q = await conn.queue(name);
    const gets = [
      q.get({ timeout: 20_000 }),
      q.get({ timeout: 20_000 }),
      q.get({ timeout: 20_000 }),
    ];
    const producer = await (await t.connect()).queue(name);
    for (const s of ['a', 'b', 'c']) await producer.put(s);
    const got = await Promise.all(gets);
    expect(got.map((m) => m.text()).sort()).toEqual(['a', 'b', 'c']);
    for (const m of got) m.ack();
    expect(await countBecomes(producer.channel, name, 0)).toBe(0);
  });

  it('get with noAck settles on receipt', async () => {
    const t = target();
    const conn = await t.connect();
    const q = await conn.queue(t.name('q'));
    const waiting = q.get({ noAck: true, timeout: 20_000 });
    await q.put('x');
    const m = await waiting;
    expect(m.settled).toBe(true);
    await q.close();
    const again = await conn.queue(q.name);
    expect(await again.poll()).toBeNull();
  });

  it('notify calls the handler as messages arrive, at most prefetch unacked at a time', async () => {
    const t = target();
    const conn = await t.connect();
    const q = await conn.queue(t.name('q'));
    for (let i = 0; i < 6; i++) await q.put(`m${i}`);
    const held: Message[] = [];
    const sub = await q.notify((m) => void held.push(m), { prefetch: 2 });
    await until(() => held.length === 2, 'two notifications');
    // The broker has the rest: the handler is not called again until something is acked.
    expect(await countBecomes(q.channel, q.name, 4)).toBe(4);
    expect(held.length).toBe(2);
    held[0]!.ack();
    held[1]!.ack();
    await until(() => held.length === 4, 'two more');
    for (const m of held.slice(2)) m.ack();
    await until(() => held.length === 6, 'the last two');
    expect(held.map((m) => m.text())).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
    for (const m of held.slice(4)) m.ack();
    await sub.cancel();
    await q.put('after cancel');
    expect(await countBecomes(q.channel, q.name, 1)).toBe(1);
    expect(held.length).toBe(6);
  });

  it('purges and deletes', async () => {
    const t = target();
    const conn = await t.connect();
    const q = await conn.queue(t.name('q'));
    await q.put('1');
    await q.put('2');
    expect(await q.purge()).toBe(2);
    await q.put('3');
    expect(await q.delete()).toBe(1);
  });
});
