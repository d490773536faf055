import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { connect } from 'amqplib';
import type { ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker, ConfigError } from '../../src/broker/index.js';
import type { TlsOptions } from '../../src/broker/index.js';
import { startTestBroker, waitFor } from '../helpers/broker.js';
import type { TestBroker } from '../helpers/broker.js';
import { startBackground } from '../interop/foreign/foreign.js';
import { makeTestCerts } from './certs.js';
import type { TestCerts } from './certs.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');

interface ClientTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  servername?: string;
}

function amqps(port: number, tls: ClientTls): Promise<ChannelModel> {
  return connect(`amqps://guest:guest@127.0.0.1:${port}`, { ...tls, timeout: 10_000 });
}

/** Declare, publish and get over the connection: the AMQP session really works. */
async function roundTrip(conn: ChannelModel): Promise<string> {
  const ch = await conn.createChannel();
  const { queue } = await ch.assertQueue('', { exclusive: true });
  ch.sendToQueue(queue, Buffer.from('over tls'));
  const m = await waitFor(
    async () => (await ch.get(queue, { noAck: true })) || null,
    'the message back',
  );
  await conn.close();
  return m.content.toString();
}

/** The error a refused connection attempt rejected with. */
async function refusal(attempt: Promise<ChannelModel>): Promise<Error & { code?: string }> {
  try {
    const conn = await attempt;
    await conn.close();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('the connection was accepted');
}

describe('TLS (amqps)', () => {
  let certs: TestCerts;
  const brokers: TestBroker[] = [];

  async function tlsBroker(extra: Partial<TlsOptions> = {}): Promise<TestBroker> {
    const b = await startTestBroker({
      tls: { port: 0, cert: certs.serverCertFile, key: certs.serverKeyFile, ...extra },
    });
    brokers.push(b);
    return b;
  }

  beforeAll(async () => {
    certs = await makeTestCerts();
  });
  afterAll(async () => {
    for (const b of brokers) await b.stop();
    certs.remove();
  });

  it('serves AMQP over TLS beside the plain listener to a client that trusts its CA', async () => {
    const b = await tlsBroker();
    expect(b.broker.tlsPort).toBeGreaterThan(0);
    expect(b.broker.tlsPort).not.toBe(b.port);
    const conn = await amqps(b.broker.tlsPort, { ca: certs.ca });
    const served = [...b.broker.connections];
    expect(served).toHaveLength(1);
    expect((served[0]!.transport as unknown as TLSSocket).encrypted).toBe(true);
    expect(await roundTrip(conn)).toBe('over tls');
    // The certificate names localhost as well as 127.0.0.1.
    expect(
      await roundTrip(await amqps(b.broker.tlsPort, { ca: certs.ca, servername: 'localhost' })),
    ).toBe('over tls');
    expect(await roundTrip(await connect(b.url))).toBe('over tls');
  });

  it('a client that does not trust the certificate, or the name in it, refuses the broker', async () => {
    const b = await tlsBroker();
    const untrusted = await refusal(amqps(b.broker.tlsPort, {}));
    expect(untrusted.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    const otherCa = await refusal(amqps(b.broker.tlsPort, { ca: certs.rogueCa }));
    expect(otherCa.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    const wrongName = await refusal(
      amqps(b.broker.tlsPort, { ca: certs.ca, servername: 'broker.example.com' }),
    );
    expect(wrongName.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    await waitFor(() => b.broker.connections.size === 0, 'no connection left');
  });

  it('verifyPeer + failIfNoPeerCert: only clients with a trusted certificate get in', async () => {
    const b = await tlsBroker({ ca: certs.caFile, verifyPeer: true, failIfNoPeerCert: true });
    const port = b.broker.tlsPort;
    const trusted = await amqps(port, {
      ca: certs.ca,
      cert: certs.clientCert,
      key: certs.clientKey,
    });
    expect(await roundTrip(trusted)).toBe('over tls');
    await refusal(amqps(port, { ca: certs.ca }));
    await refusal(
      amqps(port, { ca: certs.ca, cert: certs.rogueClientCert, key: certs.rogueClientKey }),
    );
    await waitFor(() => b.broker.connections.size === 0, 'no connection left');
  });

  it('verifyPeer alone: no certificate is fine, an untrusted one is refused', async () => {
    const b = await tlsBroker({ ca: certs.caFile, verifyPeer: true });
    const port = b.broker.tlsPort;
    expect(await roundTrip(await amqps(port, { ca: certs.ca }))).toBe('over tls');
    expect(
      await roundTrip(
        await amqps(port, { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey }),
      ),
    ).toBe('over tls');
    let attached = 0;
    const attach = b.broker.attach.bind(b.broker);
    b.broker.attach = (t) => {
      attached++;
      return attach(t);
    };
    await refusal(
      amqps(port, { ca: certs.ca, cert: certs.rogueClientCert, key: certs.rogueClientKey }),
    );
    // The TLS handshake completed (rejectUnauthorized is off), but no AMQP connection was made.
    expect(attached).toBe(0);
  });

  it('an unreadable certificate or a bad TLS setting stops start() with an error that says which', async () => {
    const missing = new Broker({
      port: 0,
      host: '127.0.0.1',
      dataDir: null,
      logLevel: 'silent',
      tls: { port: 0, cert: join(certs.dir, 'nope.pem'), key: certs.serverKeyFile },
    });
    const err = await missing.start().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain('nope.pem');
    expect((err as Error).message).toContain('--tls-cert');
    expect(missing.port).toBe(0);
    expect(
      () => new Broker({ tls: { cert: 'c', key: 'k', failIfNoPeerCert: true }, dataDir: null }),
    ).toThrow(/failIfNoPeerCert needs tls.verifyPeer/);
    const swapped = new Broker({
      port: 0,
      host: '127.0.0.1',
      dataDir: null,
      logLevel: 'silent',
      tls: { port: 0, cert: certs.serverKeyFile, key: certs.serverCertFile },
    });
    await expect(swapped.start()).rejects.toThrow(/cannot use the TLS certificate/);
  });

  it('warren start --tls-* flags and the config file tls keys serve amqps', async () => {
    const work = mkdtempSync(join(tmpdir(), 'warren-tls-cli-'));
    const config = join(work, 'warren.json');
    writeFileSync(config, JSON.stringify({ tls: { port: 0, key: certs.serverKeyFile } }));
    const child = startBackground(
      process.execPath,
      [
        CLI,
        'start',
        '--port',
        '0',
        '--no-management',
        '--data-dir',
        join(work, 'data'),
        '--config',
        config,
        '--tls-cert',
        certs.serverCertFile,
        '--tls-ca',
        certs.caFile,
        '--tls-verify-peer',
      ],
      { cwd: work, timeoutMs: 60_000 },
    );
    try {
      const line = await waitFor(
        () => /^tls listening (\d+)$/m.exec(child.output()) ?? child.exited(),
        'the tls listening line',
        20_000,
      );
      expect(line, child.output()).not.toBe(true);
      const port = Number((line as RegExpExecArray)[1]);
      expect(child.output()).toContain(`amqps://localhost:${port}`);
      const conn = await amqps(port, {
        ca: certs.ca,
        cert: certs.clientCert,
        key: certs.clientKey,
      });
      expect(await roundTrip(conn)).toBe('over tls');
      await refusal(
        amqps(port, { ca: certs.ca, cert: certs.rogueClientCert, key: certs.rogueClientKey }),
      );
    } finally {
      await child.stop();
      rmSync(work, { recursive: true, force: true });
    }
  });
});
