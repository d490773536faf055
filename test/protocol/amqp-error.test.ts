import { describe, expect, it } from 'vitest';
import { AmqpError, amqpErrors } from '../../src/protocol/amqp-error.js';
import { ReplyCode, replyCodeIsHard } from '../../src/protocol/generated/constants.js';
import { Reader } from '../../src/protocol/reader.js';
import { Writer } from '../../src/protocol/writer.js';
import { rawSpec } from './spec-model.js';

describe('AmqpError', () => {
  it("carries the reply code, RabbitMQ's reply text and a stable code", () => {
    const err = new AmqpError(ReplyCode.NotFound, "no queue 'q' in vhost '/'", {
      classId: 50,
      methodId: 10,
    });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('AmqpError');
    expect(err.replyCode).toBe(404);
    expect(err.replyText).toBe("NOT_FOUND - no queue 'q' in vhost '/'");
    expect(err.message).toBe(err.replyText);
    expect(err.code).toBe('AMQP_NOT_FOUND');
    expect([err.classId, err.methodId]).toEqual([50, 10]);
    expect(err.closesConnection).toBe(false);
  });

  it('closes the connection exactly for the hard errors of the spec', () => {
    const replyConstants = rawSpec.constants.filter((c) => c.class !== undefined);
    expect(replyConstants.length).toBeGreaterThan(10);
    for (const c of replyConstants) {
      const hard = c.class === 'hard-error';
      expect(replyCodeIsHard(c.value), c.name).toBe(hard);
      const err = new AmqpError(c.value, 'x');
      expect(err.closesConnection, c.name).toBe(hard);
      expect(err.code).toBe(`AMQP_${c.name.replace(/-/g, '_')}`);
    }
    expect(amqpErrors.frameError('x').closesConnection).toBe(true);
    expect(amqpErrors.preconditionFailed('x').closesConnection).toBe(false);
    expect(
      new AmqpError(ReplyCode.NotFound, 'x', { closesConnection: true }).closesConnection,
    ).toBe(true);
  });

  it('keeps the reply text within a short string, even with multi-byte characters', () => {
    for (const detail of ['x'.repeat(1000), 'é'.repeat(400), '€'.repeat(300)]) {
      const err = new AmqpError(ReplyCode.PreconditionFailed, detail);
      expect(Buffer.byteLength(err.replyText)).toBeLessThanOrEqual(255);
      expect(err.replyText.startsWith('PRECONDITION_FAILED - ')).toBe(true);
      const w = new Writer(16);
      w.shortstr(err.replyText);
      expect(new Reader(w.toBuffer()).shortstr()).toBe(err.replyText);
    }
  });

  it('fromClose keeps the peer text verbatim; withMethod attributes an error once', () => {
    const received = AmqpError.fromClose(
      406,
      'PRECONDITION_FAILED - inequivalent arg',
      50,
      10,
      false,
    );
    expect(received.replyText).toBe('PRECONDITION_FAILED - inequivalent arg');
    expect(received.message).toBe(received.replyText);
    expect([received.classId, received.methodId, received.closesConnection]).toEqual([
      50,
      10,
      false,
    ]);

    const low = new AmqpError(ReplyCode.FrameError, 'cannot decode');
    const attributed = low.withMethod(60, 40);
    expect([attributed.classId, attributed.methodId]).toEqual([60, 40]);
    expect(attributed.replyText).toBe(low.replyText);
    expect(attributed.replyCode).toBe(501);
    expect(attributed.closesConnection).toBe(true);
    expect(attributed.withMethod(10, 10)).toBe(attributed);
  });
});
