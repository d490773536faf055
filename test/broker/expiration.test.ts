import { describe, expect, it } from 'vitest';
import { MAX_EXPIRY_MS, parseExpiration } from '../../src/broker/queue-features.js';

describe('parseExpiration', () => {
  it('reads plain digits, leading zeros and a leading plus as milliseconds', () => {
    expect(parseExpiration('0')).toBe(0);
    expect(parseExpiration('30000')).toBe(30_000);
    expect(parseExpiration('000123')).toBe(123);
    expect(parseExpiration('+42')).toBe(42);
    expect(parseExpiration(String(MAX_EXPIRY_MS))).toBe(MAX_EXPIRY_MS);
  });

  it("refuses what RabbitMQ refuses, in RabbitMQ's words", () => {
    expect(parseExpiration('')).toBe("invalid expiration '': no_integer");
    expect(parseExpiration('abc')).toBe("invalid expiration 'abc': no_integer");
    expect(parseExpiration('10s')).toBe('invalid expiration \'10s\': {leftover_string,"s"}');
    expect(parseExpiration('-1')).toBe("invalid expiration '-1': {value_negative,-1}");
    expect(parseExpiration(String(MAX_EXPIRY_MS + 1))).toBe(
      `invalid expiration '${MAX_EXPIRY_MS + 1}': {value_too_large,${MAX_EXPIRY_MS + 1}}`,
    );
    // Past twelve digits the slow path decides, with exact integers.
    // (Erlang's ~p breaks the term after its first element when it would pass column 80.)
    expect(parseExpiration('99999999999999999999')).toBe(
      "invalid expiration '99999999999999999999': {value_too_large,\n" +
        `${' '.repeat(44)}99999999999999999999}`,
    );
  });
});
