import { expect, it } from 'vitest';
import { describeBrokers, until } from '../client/brokers.js';
import { Reason, Status, isRemoteProxy, remote } from '../../src/rpc/index.js';
import type { Implementation, RemoteProxy, ServiceServer } from '../../src/rpc/index.js';
import { H } from '../../src/rpc/wire.js';
import { Counter, Counters } from './contracts.js';
import { world } from './helpers.js';

interface Made {
  disposed: number;
}

/** A counters server; `made` counts objects it created and objects collected (disposed). */
function countersImpl(made: Made): Implementation<typeof Counters> {
  return {
    create({ start }) {
      let n = start;
      return remote(Counter, {
        increment: (by) => (n += by),
        value: () => n,
        [Symbol.asyncDispose]: () => {
          made.disposed++;
          return Promise.resolve();
        },
      });
    },
    read: ({ counter }) => counter.value(),
    async callback({ counter, by }) {
      await counter.increment(by);
      return counter.value();
    },
  };
}

/** The holders the host lists for one object (reference listing). */
function holders(server: ServiceServer, id: string): string[] {
  return [...(server.objects.get(id)?.holders.keys() ?? [])].filter(
    (h) => !h.startsWith('transit:'),
  );
}

/**
 * Remote objects: pass-by-reference, typed proxies, leases renewed at half-lease, release on
 * dispose, collection on lease expiry, idempotent reference listing. On every broker.
 */
describeBrokers('rpc: remote objects', (target) => {
  it('a handler returns a reference; the client gets a typed proxy whose calls reach the object', async () => {
    const w = world(target());
    const made = { disposed: 0 };
    const server = await (
      await w.endpoint()
    ).serve(Counters, countersImpl(made), { objectLease: 2000 });
    const counters = await (await w.endpoint()).bind(Counters);
    const c = await counters.create({ start: 10 });
    expect(isRemoteProxy(c, Counter)).toBe(true);
    expect(await c.increment(5)).toBe(15);
    expect(await c.increment(1)).toBe(16);
    expect(await c.value()).toBe(16);
    // Arguments are still validated, on the object's side.
    await expect(c.increment(1.5)).rejects.toMatchObject({ status: Status.INVALID_ARGUMENT });
    // Two objects are two states: pass-by-reference, not a copy.
    const d = await counters.create({ start: 0 });
    expect(await d.increment(1)).toBe(1);
    expect(await c.value()).toBe(16);
    expect(server.objects.size).toBe(2);
    // A reference passed back as an argument reaches the same object.
    expect(await counters.read({ counter: c })).toBe(16);
  });

  it('`await using` releases the object and the server collects it', async () => {
    const w = world(target());
    const made = { disposed: 0 };
    const server = await (
      await w.endpoint()
    ).serve(Counters, countersImpl(made), { objectLease: 2000 });
    const client = await w.endpoint();
    const counters = await client.bind(Counters);
    let ref: RemoteProxy<typeof Counter>['$ref'];
    {
      await using c = await counters.create({ start: 1 });
      ref = c.$ref;
      await until(
        () => holders(server, ref.id).length === 1,
        'the client to list itself as holder',
      );
      expect(holders(server, ref.id)).toEqual([client.leases.holder]);
      expect(await c.value()).toBe(1);
    }
    // Released on leaving the block; the transit lease is the only thing left, and it ends too.
    await until(() => server.objects.get(ref.id) === undefined, 'the object to be collected');
    expect(made.disposed).toBe(1);
    expect(server.objects.collected).toBe(1);
    const stale = client.proxy(ref, Counter);
    await expect(stale.value()).rejects.toMatchObject({
      status: Status.NOT_FOUND,
      reason: Reason.ObjectGone,
    });
  });

  it('keeps an object alive past its lease while a client holds it: renewals at half-lease', async () => {
    const w = world(target());
    const made = { disposed: 0 };
    const lease = 400;
    const server = await (
      await w.endpoint()
    ).serve(Counters, countersImpl(made), { objectLease: lease });
    const counters = await (await w.endpoint()).bind(Counters);
    const c = await counters.create({ start: 7 });
    const id = c.$ref.id;
    await until(() => holders(server, id).length === 1, 'the first lease');
    // Watch the listed expiry move forward several times: each renewal extends it.
    const expiries = new Set<number>();
    await until(() => {
      const h = server.objects.get(id)?.holders.get(holders(server, id)[0] ?? '');
      if (h !== undefined) expiries.add(h);
      return expiries.size >= 4;
    }, 'four renewals');
    expect(made.disposed).toBe(0);
    expect(await c.value()).toBe(7);
    await c.$release();
    await until(() => made.disposed === 1, 'collection after release');
  });

  it('collects an object whose client died when its lease expires', async () => {
    const w = world(target());
    const made = { disposed: 0 };
    const server = await (
      await w.endpoint()
    ).serve(Counters, countersImpl(made), { objectLease: 500 });
    const doomed = await w.endpoint({ reconnect: false });
    const counters = await doomed.bind(Counters);
    const c = await counters.create({ start: 3 });
    await until(() => holders(server, c.$ref.id).length === 1, 'the lease');
    await doomed.connection.close(); // dies without releasing anything
    await until(() => made.disposed === 1, 'the lease to run out and the object to be collected');
    expect(server.objects.size).toBe(0);
  });

  it('reference listing: repeated lease and release messages are idempotent', async () => {
    const w = world(target());
    const made = { disposed: 0 };
    const server = await (
      await w.endpoint()
    ).serve(Counters, countersImpl(made), { objectLease: 60_000 });
    const a = await (await w.endpoint()).bind(Counters);
    const b = await w.endpoint();
    const c = await a.create({ start: 0 });
    const id = c.$ref.id;
    const raw = await (await target().connect()).channel();
    const send = async (op: 'lease' | 'release', holder: string) => {
      await raw.publish('', c.$ref.queue, JSON.stringify({ holder, objects: [id] }), {
        headers: { [H.version]: 1, [H.op]: op, [H.epoch]: c.$ref.epoch },
      });
    };
    for (let i = 0; i < 3; i++) await send('lease', 'other-holder');
    await until(() => holders(server, id).length === 2, 'two holders');
    expect(holders(server, id)).toContain('other-holder');
    for (let i = 0; i < 3; i++) await send('release', 'other-holder');
    await until(() => holders(server, id).length === 1, 'one holder left');
    expect(made.disposed).toBe(0);
    expect(await c.value()).toBe(0);
    // Another process holding a proxy of the same object is a second listing.
    const copy = b.proxy(c.$ref, Counter);
    await until(() => holders(server, id).length === 2, "the second process's listing");
    await c.$release();
    await c.$release();
    await until(() => holders(server, id).length === 1, 'the first release');
    expect(await copy.increment(2)).toBe(2);
    await copy.$release();
    await until(() => made.disposed === 1, 'collection after the last release');
  });

  it('a holder learns from its next renewal that the host no longer has the object', async () => {
    const w = world(target());
    const made = { disposed: 0 };
    const server = await (
      await w.endpoint()
    ).serve(Counters, countersImpl(made), {
      objectLease: 400,
    });
    const client = await w.endpoint();
    const c = await (await client.bind(Counters)).create({ start: 1 });
    await until(() => holders(server, c.$ref.id).length === 1, 'the lease');
    // Someone releases on the holder's behalf: the object goes while the proxy still exists.
    const raw = await (await target().connect()).channel();
    await raw.publish(
      '',
      c.$ref.queue,
      JSON.stringify({ holder: client.leases.holder, objects: [c.$ref.id] }),
      { headers: { [H.version]: 1, [H.op]: 'release', [H.epoch]: c.$ref.epoch } },
    );
    await until(() => made.disposed === 1, 'the collection');
    await until(() => !client.leases.isHeld(c.$ref), 'the renewal to come back with "missing"');
    await expect(c.value()).rejects.toMatchObject({
      status: Status.NOT_FOUND,
      reason: Reason.ObjectGone,
    });
  });

  it('passes a client-side object by reference: the server calls back into it', async () => {
    const w = world(target());
    const serverEp = await w.endpoint();
    await serverEp.serve(Counters, countersImpl({ disposed: 0 }));
    const client = await w.endpoint();
    const counters = await client.bind(Counters);
    let n = 100;
    const local = remote(Counter, { increment: (by) => (n += by), value: () => n });
    expect(await counters.callback({ counter: local, by: 5 })).toBe(105);
    expect(await counters.callback({ counter: local, by: 1 })).toBe(106);
    expect(n).toBe(106);
    // The client hosts it now, and lists the server as a holder (the server's proxy leased it).
    const host = await client.objectHost();
    const [id] = host.objects.ids();
    expect(host.objects.ids()).toHaveLength(1);
    await until(
      () => holders(host, id!).includes(serverEp.leases.holder),
      'the server to list itself',
    );
  });
});
