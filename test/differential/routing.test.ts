import { differentialSuite } from './harness.js';

differentialSuite('differential: routing', (scenario) => {
  scenario('direct exchange routes by exact key, to every matching queue once', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.confirmChannel(conn);
    const x = ctx.x('direct');
    const [q1, q2, q3] = [ctx.q('d1'), ctx.q('d2'), ctx.q('d3')];
    await ch.assertExchange(x, 'direct', { durable: false });
    for (const q of [q1, q2, q3]) await ch.assertQueue(q, { durable: false });
    await ch.bindQueue(q1, x, 'k1');
    await ch.bindQueue(q2, x, 'k2');
    await ch.bindQueue(q3, x, 'k1');
    await ch.bindQueue(q3, x, 'k2');
    for (const key of ['k1', 'k2', 'k3', 'K1', '']) {
      await ctx.publish(ch, `publish ${key}`, x, key, `m-${key}`, { mandatory: true });
    }
    await ctx.drain(ch, q1, 'q1');
    await ctx.drain(ch, q2, 'q2');
    await ctx.drain(ch, q3, 'q3');
  });

  scenario('fanout exchange ignores routing and binding keys', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.confirmChannel(conn);
    const x = ctx.x('fanout');
    const [q1, q2] = [ctx.q('f1'), ctx.q('f2')];
    await ch.assertExchange(x, 'fanout', { durable: false });
    await ch.assertQueue(q1, { durable: false });
    await ch.assertQueue(q2, { durable: false });
    await ch.bindQueue(q1, x, '');
    await ch.bindQueue(q2, x, 'whatever');
    await ch.bindQueue(q2, x, 'another');
    await ctx.publish(ch, 'publish a', x, 'a', 'one', { mandatory: true });
    await ctx.publish(ch, 'publish empty', x, '', 'two', { mandatory: true });
    await ctx.drain(ch, q1, 'q1');
    await ctx.drain(ch, q2, 'q2');
    await ch.unbindQueue(q1, x, '');
    await ch.unbindQueue(q2, x, 'whatever');
    await ch.unbindQueue(q2, x, 'another');
    await ctx.publish(ch, 'publish after unbind', x, 'a', 'three', { mandatory: true });
  });

  scenario('topic exchange: wildcard and empty-word edge cases', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.confirmChannel(conn);
    const x = ctx.x('topic');
    await ch.assertExchange(x, 'topic', { durable: false });
    const patterns = [
      '#',
      '*',
      '#.#',
      'a.#.b',
      'a..b',
      '',
      'a.*',
      '*.b',
      'a.#',
      '#.b',
      '*.*',
      'a.*.#',
      '#.*',
      '*.#.*',
      'a',
      '.',
      'a.',
    ];
    const queues = new Map<string, string>();
    for (const [i, p] of patterns.entries()) {
      const q = ctx.q(`t${i}`);
      queues.set(p, q);
      await ch.assertQueue(q, { durable: false });
      await ch.bindQueue(q, x, p);
    }
    const keys = [
      '',
      'a',
      'b',
      'a.b',
      'a..b',
      'a.x.b',
      'a.x.y.b',
      '.',
      'a.',
      '.b',
      'x.a.b',
      'a.b.c',
    ];
    for (const key of keys) {
      await ctx.publish(ch, `publish '${key}'`, x, key, `<${key}>`, { mandatory: true });
    }
    for (const [p, q] of queues) await ctx.drain(ch, q, `binding '${p}'`);
  });

  scenario('topic exchange: unbinding one of overlapping patterns', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.confirmChannel(conn);
    const x = ctx.x('topic2');
    const q = ctx.q('t');
    await ch.assertExchange(x, 'topic', { durable: false });
    await ch.assertQueue(q, { durable: false });
    await ch.bindQueue(q, x, 'a.*');
    await ch.bindQueue(q, x, 'a.#');
    await ch.bindQueue(q, x, '#');
    await ctx.publish(ch, 'p1', x, 'a.b', 'one');
    await ch.unbindQueue(q, x, '#');
    await ctx.publish(ch, 'p2', x, 'z', 'two', { mandatory: true });
    await ctx.publish(ch, 'p3', x, 'a.b.c', 'three', { mandatory: true });
    await ch.unbindQueue(q, x, 'a.#');
    await ctx.publish(ch, 'p4', x, 'a.b.c', 'four', { mandatory: true });
    await ctx.publish(ch, 'p5', x, 'a.b', 'five', { mandatory: true });
    await ctx.drain(ch, q, 'q');
  });

  scenario('headers exchange: x-match all / any, x- keys, void values', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.confirmChannel(conn);
    const x = ctx.x('headers');
    await ch.assertExchange(x, 'headers', { durable: false });
    const bindings: [string, Record<string, unknown>][] = [
      ['all', { 'x-match': 'all', a: 'one', b: 'two' }],
      ['any', { 'x-match': 'any', a: 'one', b: 'two' }],
      ['default-all', { a: 'one', b: 'two' }],
      ['all-with-x-key', { 'x-match': 'all', a: 'one', 'x-extra': 'ignored' }],
      ['any-only-x-key', { 'x-match': 'any', 'x-extra': 'ignored' }],
      ['void', { 'x-match': 'all', present: null }],
      ['empty', {}],
      ['number', { n: 42 }],
      ['bool', { flag: true }],
    ];
    const queues: [string, string][] = [];
    for (const [name, args] of bindings) {
      const q = ctx.q(`h-${name}`);
      queues.push([name, q]);
      await ch.assertQueue(q, { durable: false });
      await ch.bindQueue(q, x, 'key-is-ignored', args);
    }
    const messages: [string, Record<string, unknown> | undefined][] = [
      ['no-headers', undefined],
      ['a', { a: 'one' }],
      ['a+b', { a: 'one', b: 'two' }],
      ['a+b-wrong', { a: 'one', b: 'three' }],
      ['b', { b: 'two' }],
      ['x-extra', { 'x-extra': 'ignored', a: 'one' }],
      ['present-with-value', { present: 'anything' }],
      ['present-void', { present: null }],
      ['n-42', { n: 42 }],
      ['n-42-long', { n: { '!': 'long', value: 42 } }],
      ['n-42-float', { n: { '!': 'double', value: 42 } }],
      ['n-string', { n: '42' }],
      ['flag', { flag: true }],
      ['flag-false', { flag: false }],
    ];
    for (const [name, headers] of messages) {
      await ctx.publish(ch, `publish ${name}`, x, '', name, {
        mandatory: true,
        ...(headers === undefined ? {} : { headers }),
      });
    }
    for (const [name, q] of queues) await ctx.drain(ch, q, `binding ${name}`);
  });

  scenario('headers exchange: invalid x-match is refused on bind', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.channel(conn);
    const x = ctx.x('headers-bad');
    const q = ctx.q('hb');
    await ch.assertExchange(x, 'headers', { durable: false });
    await ch.assertQueue(q, { durable: false });
    await ctx.attempt('bind x-match=some', () => ch.bindQueue(q, x, '', { 'x-match': 'some' }));
    // 70000 and true go on the wire as 'signedint' and 'bool', types Warren can name.
    for (const mode of [70_000, true]) {
      const c = await ctx.channel(conn, `ch ${String(mode)}`);
      await ctx.attempt(`bind x-match=${String(mode)}`, () =>
        c.bindQueue(q, x, '', { 'x-match': mode }),
      );
    }
    const ok = await ctx.channel(conn, 'ch ok');
    for (const mode of ['all', 'any', 'all-with-x', 'any-with-x']) {
      await ctx.attempt(`bind x-match=${mode}`, () =>
        ok.bindQueue(q, x, mode, { 'x-match': mode }),
      );
    }
  });

  scenario('exchange-to-exchange bindings, including a cycle', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.confirmChannel(conn);
    const [x1, x2, x3] = [ctx.x('e1'), ctx.x('e2'), ctx.x('e3')];
    const [q1, q2, q3] = [ctx.q('e1'), ctx.q('e2'), ctx.q('e3')];
    await ch.assertExchange(x1, 'direct', { durable: false });
    await ch.assertExchange(x2, 'fanout', { durable: false });
    await ch.assertExchange(x3, 'topic', { durable: false });
    for (const q of [q1, q2, q3]) await ch.assertQueue(q, { durable: false });
    await ch.bindExchange(x2, x1, 'k');
    await ch.bindExchange(x3, x2, '');
    await ch.bindExchange(x1, x3, '#');
    await ch.bindQueue(q1, x1, 'k');
    await ch.bindQueue(q2, x2, '');
    await ch.bindQueue(q3, x3, 'k.#');
    await ch.bindQueue(q3, x3, 'k');
    await ctx.publish(ch, 'to x1 k', x1, 'k', 'x1-k', { mandatory: true });
    await ctx.publish(ch, 'to x1 other', x1, 'other', 'x1-other', { mandatory: true });
    await ctx.publish(ch, 'to x2 k.z', x2, 'k.z', 'x2-kz', { mandatory: true });
    await ctx.publish(ch, 'to x3 z', x3, 'z', 'x3-z', { mandatory: true });
    await ctx.drain(ch, q1, 'q1');
    await ctx.drain(ch, q2, 'q2');
    await ctx.drain(ch, q3, 'q3');
    await ch.unbindExchange(x2, x1, 'k');
    await ctx.publish(ch, 'to x1 k after unbind', x1, 'k', 'x1-k-2', { mandatory: true });
    await ctx.drain(ch, q1, 'q1 after');
    await ctx.drain(ch, q2, 'q2 after');
    await ctx.drain(ch, q3, 'q3 after');
    await ctx.attempt('bind missing source', () => ch.bindExchange(x1, ctx.x('missing'), ''));
  });

  scenario('exchange-to-exchange bind errors', async (ctx) => {
    const conn = await ctx.connect();
    const x = ctx.x('e2e-errors');
    const ch = await ctx.channel(conn, 'ch1');
    await ch.assertExchange(x, 'fanout', { durable: false });
    await ctx.attempt('bind missing destination', () => ch.bindExchange(ctx.x('nope'), x, ''));
    const ch2 = await ctx.channel(conn, 'ch2');
    await ctx.attempt('bind from default exchange', () => ch2.bindExchange(x, '', 'k'));
    const ch3 = await ctx.channel(conn, 'ch3');
    await ctx.attempt('bind to default exchange', () => ch3.bindExchange('', x, 'k'));
    const ch4 = await ctx.channel(conn, 'ch4');
    await ctx.attempt('unbind missing binding', () => ch4.unbindExchange(x, 'amq.fanout', 'k'));
  });

  scenario('default exchange routes by queue name and refuses bindings', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.confirmChannel(conn, 'ch1');
    const q = ctx.q('default');
    await ch.assertQueue(q, { durable: false });
    await ctx.publish(ch, 'to queue', '', q, 'direct-to-queue', { mandatory: true });
    await ctx.publish(ch, 'to missing', '', ctx.q('missing'), 'lost', { mandatory: true });
    await ctx.drain(ch, q, 'q');
    await ctx.attempt('bind to default exchange', () => ch.bindQueue(q, '', 'k'));
    const ch2 = await ctx.channel(conn, 'ch2');
    await ctx.attempt('unbind from default exchange', () => ch2.unbindQueue(q, '', q));
    const ch3 = await ctx.channel(conn, 'ch3');
    await ctx.attempt('check default exchange', () => ch3.checkExchange(''));
  });

  scenario('bindings with the same key and different arguments are distinct', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.confirmChannel(conn);
    const x = ctx.x('args');
    const q = ctx.q('args');
    await ch.assertExchange(x, 'direct', { durable: false });
    await ch.assertQueue(q, { durable: false });
    await ch.bindQueue(q, x, 'k', { variant: 'one' });
    await ch.bindQueue(q, x, 'k', { variant: 'two' });
    await ch.bindQueue(q, x, 'k', { variant: 'two' });
    await ctx.publish(ch, 'two bindings', x, 'k', 'a', { mandatory: true });
    await ch.unbindQueue(q, x, 'k', { variant: 'one' });
    await ctx.publish(ch, 'one binding left', x, 'k', 'b', { mandatory: true });
    await ch.unbindQueue(q, x, 'k', { variant: 'three' });
    await ch.unbindQueue(q, x, 'k');
    await ctx.publish(ch, 'still bound', x, 'k', 'c', { mandatory: true });
    await ch.unbindQueue(q, x, 'k', { variant: 'two' });
    await ctx.publish(ch, 'unbound', x, 'k', 'd', { mandatory: true });
    await ctx.drain(ch, q, 'q');
  });

  scenario('alternate exchange takes unroutable messages', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.confirmChannel(conn);
    const x = ctx.x('with-ae');
    const ae = ctx.x('ae');
    const [q, aq] = [ctx.q('main'), ctx.q('alt')];
    await ch.assertExchange(ae, 'fanout', { durable: false });
    await ch.assertExchange(x, 'direct', { durable: false, alternateExchange: ae });
    await ch.assertQueue(q, { durable: false });
    await ch.assertQueue(aq, { durable: false });
    await ch.bindQueue(q, x, 'routed');
    await ch.bindQueue(aq, ae, '');
    await ctx.publish(ch, 'routed', x, 'routed', 'r', { mandatory: true });
    await ctx.publish(ch, 'unroutable', x, 'nowhere', 'u', { mandatory: true });
    await ctx.drain(ch, q, 'main');
    await ctx.drain(ch, aq, 'alternate');
    await ch.unbindQueue(aq, ae, '');
    await ctx.publish(ch, 'ae also unroutable', x, 'nowhere', 'u2', { mandatory: true });
    const x2 = ctx.x('with-missing-ae');
    await ch.assertExchange(x2, 'direct', { durable: false, alternateExchange: ctx.x('gone') });
    await ctx.publish(ch, 'missing ae', x2, 'nowhere', 'u3', { mandatory: true });
  });

  scenario('sender-selected distribution: CC and BCC headers', async (ctx) => {
    const conn = await ctx.connect();
    const ch = await ctx.confirmChannel(conn);
    const x = ctx.x('cc');
    const [qa, qb, qc] = [ctx.q('cc-a'), ctx.q('cc-b'), ctx.q('cc-c')];
    await ch.assertExchange(x, 'direct', { durable: false });
    for (const [q, key] of [
      [qa, 'a'],
      [qb, 'b'],
      [qc, 'c'],
    ] as const) {
      await ch.assertQueue(q, { durable: false });
      await ch.bindQueue(q, x, key);
    }
    await ctx.publish(ch, 'to a, cc b, bcc c', x, 'a', 'one', {
      mandatory: true,
      CC: 'b',
      BCC: ['c'],
      headers: { keep: 'me' },
    });
    await ctx.publish(ch, 'to nowhere, cc a', x, 'nowhere', 'two', { mandatory: true, CC: ['a'] });
    await ctx.publish(ch, 'to nowhere, bcc nowhere', x, 'nowhere', 'three', {
      mandatory: true,
      BCC: 'nowhere-either',
    });
    for (const [label, q] of [
      ['a', qa],
      ['b', qb],
      ['c', qc],
    ] as const) {
      const got = [];
      for (;;) {
        const m = await ch.get(q, { noAck: true });
        if (m === false) break;
        got.push({ body: m.content.toString(), headers: m.properties.headers });
      }
      ctx.see(label, got);
    }
  });

  scenario('queue.bind and unbind errors', async (ctx) => {
    const conn = await ctx.connect();
    const q = ctx.q('bind-errors');
    const x = ctx.x('bind-errors');
    let ch = await ctx.channel(conn, 'ch1');
    await ch.assertQueue(q, { durable: false });
    await ch.assertExchange(x, 'direct', { durable: false });
    await ctx.attempt('bind missing exchange', () => ch.bindQueue(q, ctx.x('none'), 'k'));
    ch = await ctx.channel(conn, 'ch2');
    await ctx.attempt('bind missing queue', () => ch.bindQueue(ctx.q('none'), x, 'k'));
    ch = await ctx.channel(conn, 'ch3');
    await ctx.attempt('bind both missing', () => ch.bindQueue(ctx.q('none'), ctx.x('none'), 'k'));
    ch = await ctx.channel(conn, 'ch4');
    await ctx.attempt('unbind never bound', () => ch.unbindQueue(q, x, 'never'));
    await ctx.attempt('unbind missing queue', () => ch.unbindQueue(ctx.q('none'), x, 'k'));
    ch = await ctx.channel(conn, 'ch5');
    await ctx.attempt('unbind missing exchange', () => ch.unbindQueue(q, ctx.x('none'), 'k'));
  });
});
