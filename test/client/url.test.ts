import { describe, expect, it } from 'vitest';
import { ClientError, parseAmqpUrl } from '../../src/client/index.js';
import { resolveOptions } from '../../src/client/options.js';

describe('AMQP URL parsing', () => {
  it('reads user, password, host, port and vhost, percent-decoded', () => {
    expect(parseAmqpUrl('amqp://user%40corp:p%3Ass%2Fw@broker.example:5673/my%2Fvhost')).toEqual({
      hostname: 'broker.example',
      port: 5673,
      username: 'user@corp',
      password: 'p:ss/w',
      vhost: 'my/vhost',
    });
  });

  it('takes the default vhost for an empty path or "/", and "%2F" as "/"', () => {
    expect(resolveOptions({ url: 'amqp://host' }).vhost).toBe('/');
    expect(resolveOptions({ url: 'amqp://host/' }).vhost).toBe('/');
    expect(resolveOptions({ url: 'amqp://host/%2F' }).vhost).toBe('/');
    expect(resolveOptions({ url: 'amqp://host/prod' }).vhost).toBe('prod');
  });

  it('fills RabbitMQ defaults: guest/guest, localhost, 5672 or 5671 for amqps', () => {
    const plain = resolveOptions({ url: 'amqp://' });
    expect([plain.hostname, plain.port, plain.username, plain.password, plain.tls]).toEqual([
      'localhost',
      5672,
      'guest',
      'guest',
      null,
    ]);
    const secure = resolveOptions({ url: 'amqps://rabbit.example' });
    expect(secure.port).toBe(5671);
    expect(secure.tls).toEqual({});
    expect(secure.target).toBe("amqps://rabbit.example:5671 (vhost '/')");
  });

  it('reads IPv6 hosts', () => {
    expect(parseAmqpUrl('amqp://[::1]:5672').hostname).toBe('::1');
    expect(resolveOptions({ url: 'amqp://[::1]' }).target).toBe("amqp://[::1]:5672 (vhost '/')");
  });

  it('reads the query parameters RabbitMQ clients support', () => {
    expect(
      parseAmqpUrl(
        'amqp://h?heartbeat=10&frame_max=65536&channel_max=100&connection_timeout=2500&auth_mechanism=AMQPLAIN&unknown=1',
      ),
    ).toEqual({
      hostname: 'h',
      heartbeat: 10,
      frameMax: 65536,
      channelMax: 100,
      connectTimeout: 2500,
      authMechanism: 'AMQPLAIN',
    });
  });

  it('reads TLS parameters for amqps', () => {
    expect(
      parseAmqpUrl(
        'amqps://h?cacertfile=/etc/ca.pem&certfile=/etc/c.pem&keyfile=/etc/k.pem&verify=verify_none&server_name_indication=rabbit.internal',
      ).tls,
    ).toEqual({
      caFile: '/etc/ca.pem',
      certFile: '/etc/c.pem',
      keyFile: '/etc/k.pem',
      rejectUnauthorized: false,
      servername: 'rabbit.internal',
    });
    expect(parseAmqpUrl('amqps://h?verify=verify_peer').tls).toEqual({ rejectUnauthorized: true });
  });

  it('lets explicit options override the URL', () => {
    const o = resolveOptions({
      url: 'amqp://a:b@h:1/v?heartbeat=5',
      port: 2,
      heartbeat: 0,
      vhost: 'w',
    });
    expect([o.hostname, o.port, o.username, o.heartbeat, o.vhost]).toEqual(['h', 2, 'a', 0, 'w']);
  });

  it('refuses bad URLs with WARREN_ERR_INVALID_URL and hides the password', () => {
    const cases = [
      'http://h',
      'not a url',
      'amqp://h/a/b',
      'amqp://h?heartbeat=-1',
      'amqp://h?frame_max=abc',
      'amqp://h?auth_mechanism=EXTERNAL',
      'amqp://h?verify=maybe',
      'amqp://h?cacertfile=/x.pem',
    ];
    for (const url of cases) {
      let err: unknown;
      try {
        parseAmqpUrl(url);
      } catch (e) {
        err = e;
      }
      expect(err, url).toBeInstanceOf(ClientError);
      expect((err as ClientError).code).toBe('WARREN_ERR_INVALID_URL');
    }
    try {
      parseAmqpUrl('amqp://user:secret@h/a/b');
    } catch (e) {
      expect((e as Error).message).not.toContain('secret');
      expect((e as Error).message).toContain('user:***@h');
    }
  });

  it('validates option values', () => {
    expect(() => resolveOptions({ frameMax: 100 })).toThrow(/frameMax/);
    expect(() => resolveOptions({ port: 70000 })).toThrow(/port/);
    expect(() => resolveOptions({ reconnect: { initialDelay: 10, maxDelay: 5 } })).toThrow(
      /reconnect/,
    );
  });
});
