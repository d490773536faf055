/**
 * Micro-benchmarks of the hot paths: frame parsing, method encoding, topic routing and the
 * queue's ring buffer.
 *
 *   npm run bench:micro [-- <filter>]      (filter: a substring of the case names)
 *
 * Numbers are per operation on one core; compare runs on the same machine only.
 */
import { measure, report } from './harness.js';
import type { MicroCase } from './harness.js';
import { frameParseCases } from './frame-parse.js';
import { methodEncodeCases } from './method-encode.js';
import { ringBufferCases } from './ring-buffer.js';
import { topicRoutingCases } from './topic-routing.js';

const filter = process.argv[2] ?? '';
const cases: MicroCase[] = [
  ...frameParseCases(),
  ...methodEncodeCases(),
  ...topicRoutingCases(),
  ...ringBufferCases(),
].filter((c) => c.name.includes(filter));
process.stdout.write(`micro-benchmarks: ${cases.length} cases, node ${process.version}\n`);
report(cases.map((c) => measure(c)));
