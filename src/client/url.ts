import { ClientError, ClientErrorCode } from './errors.js';
import type { ConnectOptions, TlsOptions } from './options.js';

/**
 * Parse an AMQP URI the way RabbitMQ's clients do (https://www.rabbitmq.com/docs/uri-spec and
 * uri-query-parameters): `amqp[s]://user:pass@host:port/vhost?heartbeat=10&frame_max=131072`.
 * User, password and vhost are percent-decoded (`%2F` is the vhost `/`); a missing or empty path
 * means the default vhost `/`. Only what the URI states is returned, so explicit options can
 * override it field by field.
 */
export function parseAmqpUrl(url: string): ConnectOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalidUrl(url, 'it is not a URL');
  }
  const scheme = u.protocol;
  if (scheme !== 'amqp:' && scheme !== 'amqps:') {
    throw invalidUrl(url, `the scheme must be amqp:// or amqps://, not ${scheme}//`);
  }
  const out: ConnectOptions = {};
  const secure = scheme === 'amqps:';
  if (u.hostname !== '') out.hostname = stripBrackets(u.hostname);
  if (u.port !== '') out.port = Number(u.port);
  if (u.username !== '') out.username = decode(url, u.username, 'user name');
  if (u.password !== '') out.password = decode(url, u.password, 'password');
  const path = u.pathname;
  if (path !== '' && path !== '/') {
    const raw = path.slice(1);
    if (raw.includes('/')) {
      throw invalidUrl(url, `the vhost '${raw}' contains '/'; write it percent-encoded (%2F)`);
    }
    out.vhost = decode(url, raw, 'vhost');
  }
  const tls: TlsOptions = {};
  let tlsSet = false;
  for (const [key, value] of u.searchParams) {
    switch (key) {
      case 'heartbeat':
        out.heartbeat = intParam(url, key, value, 0, 65535);
        break;
      case 'frame_max':
        out.frameMax = intParam(url, key, value, 0, 0xffff_ffff);
        break;
      case 'channel_max':
        out.channelMax = intParam(url, key, value, 0, 65535);
        break;
      case 'connection_timeout':
        out.connectTimeout = intParam(url, key, value, 0, 0x7fff_ffff);
        break;
      case 'auth_mechanism':
        if (value !== 'PLAIN' && value !== 'AMQPLAIN') {
          throw invalidUrl(url, `auth_mechanism must be PLAIN or AMQPLAIN, not '${value}'`);
        }
        out.authMechanism = value;
        break;
      case 'cacertfile':
        tls.caFile = value;
        tlsSet = true;
        break;
      case 'certfile':
        tls.certFile = value;
        tlsSet = true;
        break;
      case 'keyfile':
        tls.keyFile = value;
        tlsSet = true;
        break;
      case 'verify':
        if (value !== 'verify_peer' && value !== 'verify_none') {
          throw invalidUrl(url, `verify must be verify_peer or verify_none, not '${value}'`);
        }
        tls.rejectUnauthorized = value === 'verify_peer';
        tlsSet = true;
        break;
      case 'server_name_indication':
        // RabbitMQ's `disable` turns SNI off; anything else names the server.
        if (value !== 'disable') tls.servername = value;
        tlsSet = true;
        break;
      default:
        // Unknown parameters are ignored, as RabbitMQ's clients do, so URLs stay portable.
        break;
    }
  }
  if (secure) out.tls = tlsSet ? tls : true;
  else if (tlsSet) {
    throw invalidUrl(url, 'TLS parameters need the amqps:// scheme');
  }
  return out;
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function decode(url: string, s: string, what: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw invalidUrl(url, `the ${what} is not valid percent-encoding`);
  }
}

function intParam(url: string, key: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (value === '' || !Number.isInteger(n) || n < min || n > max) {
    throw invalidUrl(url, `${key} must be an integer from ${min} to ${max}, not '${value}'`);
  }
  return n;
}

function invalidUrl(url: string, why: string): ClientError {
  return new ClientError(
    ClientErrorCode.InvalidUrl,
    `cannot use the AMQP URL '${redact(url)}': ${why}`,
  );
}

/** The URL with its password hidden, for messages and logs. */
export function redact(url: string): string {
  return url.replace(/^(amqps?:\/\/[^:@/]*:)[^@/]*@/i, '$1***@');
}
