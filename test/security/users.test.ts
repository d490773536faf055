import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker, UserTag, checkPassword, createLogger } from '../../src/broker/index.js';
import type { BrokerOptions } from '../../src/broker/index.js';
import { describeError } from '../differential/harness.js';
import { startTestBroker } from '../helpers/broker.js';
import type { TestBroker } from '../helpers/broker.js';

/**
 * An address of this machine that is not loopback. Connecting to it from itself gives the broker
 * a non-loopback peer address without a second machine (127.0.0.2 would not do: RabbitMQ and
 * Warren count all of 127/8 as loopback).
 */
function externalAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new Error(
    'this machine has no non-loopback IPv4 address to connect from; the loopback-user test ' +
      'needs one (any interface that is up, e.g. eth0)',
  );
}

/** Connect (amqplib) from `from` and report how it went: 'connected' or the broker's reply. */
async function attempt(url: string, from: string): Promise<unknown> {
  try {
    const options = { localAddress: from } as Parameters<typeof connect>[1];
    const conn = await connect(url, options);
    await conn.close();
    return 'connected';
  } catch (err) {
    return describeError(err);
  }
}

const REFUSED = {
  code: 403,
  text: 'ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.',
};

describe('loopback users', () => {
  const brokers: TestBroker[] = [];
  let ip: string;
  let logs: string[];

  async function broker(options: BrokerOptions = {}): Promise<TestBroker> {
    const b = await startTestBroker({
      host: '0.0.0.0',
      logger: createLogger('info', (line) => logs.push(line)),
      ...options,
    });
    b.broker.users.addUser('remote', 'remote-secret', [UserTag.Management]);
    b.broker.users.setPermission('/', 'remote', { configure: '.*', write: '.*', read: '.*' });
    brokers.push(b);
    return b;
  }

  beforeAll(() => {
    ip = externalAddress();
    logs = [];
  });
  afterAll(async () => {
    for (const b of brokers) await b.stop();
  });

  it('guest connects from loopback only; other users from anywhere', async () => {
    const b = await broker();
    const guestRemote = await attempt(`amqp://guest:guest@${ip}:${b.port}`, ip);
    expect(guestRemote).toEqual(REFUSED);
    // The log says why, and what to do about it.
    expect(logs.join('')).toMatch(/user 'guest' can only connect via localhost/);
    expect(logs.join('')).toContain('warren ctl add-user');
    // The broker saw the external address, not loopback.
    expect(logs.join('')).toContain(`${ip}:`);
    expect(await attempt(`amqp://guest:guest@127.0.0.1:${b.port}`, '127.0.0.1')).toBe('connected');
    expect(await attempt(`amqp://remote:remote-secret@${ip}:${b.port}`, ip)).toBe('connected');
    const conn = await connect(`amqp://remote:remote-secret@${ip}:${b.port}`, {
      localAddress: ip,
    } as Parameters<typeof connect>[1]);
    const peer = [...b.broker.connections][0]!.remoteAddress;
    await conn.close();
    expect(peer.replace(/^::ffff:/, '')).toBe(ip);
  });

  it('loopbackUsers: [] lets guest in from anywhere; a listed user is held to loopback', async () => {
    const open = await broker({ loopbackUsers: [] });
    expect(await attempt(`amqp://guest:guest@${ip}:${open.port}`, ip)).toBe('connected');
    const strict = await broker({ loopbackUsers: ['guest', 'remote'] });
    expect(await attempt(`amqp://remote:remote-secret@${ip}:${strict.port}`, ip)).toEqual(REFUSED);
  });
});

describe('users at rest', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'warren-users-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Every byte under the data directory, concatenated. */
  function everything(root: string): Buffer {
    const parts: Buffer[] = [];
    const walk = (d: string): void => {
      for (const name of readdirSync(d)) {
        const p = join(d, name);
        if (statSync(p).isDirectory()) walk(p);
        else parts.push(readFileSync(p));
      }
    };
    walk(root);
    return Buffer.concat(parts);
  }

  it('keeps salted hashes only, never a password, and they survive a restart', async () => {
    const dataDir = join(dir, 'data');
    const lines: string[] = [];
    const logger = createLogger('info', (l) => lines.push(l));
    const password = 'correct horse battery staple';
    let b = new Broker({ port: 0, host: '127.0.0.1', dataDir, logger });
    await b.start();
    b.users.addUser('alice', password, [UserTag.Administrator, UserTag.Monitoring]);
    b.users.addUser('bob', password, [UserTag.Management]);
    b.users.setPermission('/', 'alice', { configure: '^a', write: '.*', read: '.*' });
    const [alice, bob] = [b.users.getUser('alice')!, b.users.getUser('bob')!];
    // Same password, different salts: different hashes, both verifying.
    expect(alice.passwordHash).not.toBe(bob.passwordHash);
    expect(checkPassword(password, alice.passwordHash)).toBe(true);
    expect(checkPassword(password, bob.passwordHash)).toBe(true);
    expect(checkPassword('wrong', alice.passwordHash)).toBe(false);
    await b.stop();

    const bytes = everything(dataDir);
    expect(bytes.length).toBeGreaterThan(0);
    for (const secret of [password, 'guest\u0000guest']) {
      expect(bytes.includes(Buffer.from(secret, 'utf8')), `'${secret}' on disk`).toBe(false);
      expect(bytes.includes(Buffer.from(secret, 'utf16le'))).toBe(false);
    }
    expect(bytes.includes(Buffer.from(alice.passwordHash))).toBe(true);

    // The first run told the operator how to let clients on other machines in.
    const firstRun = lines.join('');
    expect(firstRun).toMatch(/first run: created the default user 'guest'.*localhost only/);
    expect(firstRun).toContain('warren ctl add-user');
    expect(firstRun).toContain('"defaultUser"');

    lines.length = 0;
    b = new Broker({ port: 0, host: '127.0.0.1', dataDir, logger });
    await b.start();
    try {
      expect(lines.join('')).not.toContain('first run');
      expect(b.users.getUser('alice')?.tags).toEqual([UserTag.Administrator, UserTag.Monitoring]);
      expect(b.users.getPermission('/', 'alice')).toEqual({
        configure: '^a',
        write: '.*',
        read: '.*',
      });
      const conn = await connect(
        `amqp://alice:${encodeURIComponent(password)}@127.0.0.1:${b.port}`,
      );
      await conn.close();
      expect(await attempt(`amqp://alice:nope@127.0.0.1:${b.port}`, '127.0.0.1')).toEqual(REFUSED);
    } finally {
      await b.stop();
    }
  });

  it('with defaultUser false, the first run says that no user exists and how to add one', async () => {
    const lines: string[] = [];
    const b = new Broker({
      port: null,
      dataDir: join(dir, 'no-default'),
      defaultUser: false,
      logger: createLogger('info', (l) => lines.push(l)),
    });
    await b.start();
    await b.stop();
    expect(b.users.listUsers()).toEqual([]);
    expect(lines.join('')).toMatch(/first run: no users exist.*warren ctl add-user/);
  });
});
