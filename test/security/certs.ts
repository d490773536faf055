import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../helpers/processes.js';

/** PEM files made for one test run: a CA, a server and a client it signed, and a stranger's. */
export interface TestCerts {
  dir: string;
  /** Paths, for the broker's options and the CLI's flags. */
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  /** Contents, for clients. */
  ca: Buffer;
  clientCert: Buffer;
  clientKey: Buffer;
  /** A CA nobody trusts, and a client certificate it signed. */
  rogueCa: Buffer;
  rogueClientCert: Buffer;
  rogueClientKey: Buffer;
  remove(): void;
}

const OPENSSL = 'openssl';

async function openssl(dir: string, args: string[]): Promise<void> {
  const r = await run(OPENSSL, args, { cwd: dir, timeoutMs: 30_000 });
  if (r.code !== 0) {
    throw new Error(`openssl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  }
}

/** A P-256 key and a certificate signed by `ca` (or self-signed as a CA when `ca` is null). */
async function issue(
  dir: string,
  name: string,
  subject: string,
  ca: string | null,
  extensions: string,
): Promise<void> {
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  if (ca === null) {
    await openssl(dir, [
      'req',
      '-x509',
      ...key,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-subj',
      subject,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    return;
  }
  writeFileSync(join(dir, `${name}.ext`), extensions);
  await openssl(dir, [
    'req',
    ...key,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    subject,
  ]);
  await openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-set_serial',
    String(Date.now()),
    '-days',
    '2',
    '-out',
    `${name}.pem`,
    '-extfile',
    `${name}.ext`,
  ]);
}

/** Generate everything with the `openssl` command (Debian's openssl package). */
export async function makeTestCerts(): Promise<TestCerts> {
  const dir = mkdtempSync(join(tmpdir(), 'warren-tls-'));
  await issue(dir, 'ca', '/CN=Warren test CA', null, '');
  await issue(
    dir,
    'server',
    '/CN=localhost',
    'ca',
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n',
  );
  await issue(dir, 'client', '/CN=warren-test-client', 'ca', 'extendedKeyUsage=clientAuth\n');
  await issue(dir, 'rogue-ca', '/CN=Somebody else', null, '');
  await issue(
    dir,
    'rogue-client',
    '/CN=warren-test-client',
    'rogue-ca',
    'extendedKeyUsage=clientAuth\n',
  );
  const read = (f: string): Buffer => readFileSync(join(dir, f));
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    serverCertFile: join(dir, 'server.pem'),
    serverKeyFile: join(dir, 'server.key'),
    ca: read('ca.pem'),
    clientCert: read('client.pem'),
    clientKey: read('client.key'),
    rogueCa: read('rogue-ca.pem'),
    rogueClientCert: read('rogue-client.pem'),
    rogueClientKey: read('rogue-client.key'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
