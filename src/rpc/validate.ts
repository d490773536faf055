import type { StandardSchemaV1 } from './standard-schema.js';
import { RpcError, Status, formatIssues } from './status.js';
import type { Issue } from './status.js';

export type Validated<T> = { ok: true; value: T } | { ok: false; issues: Issue[] };

/**
 * Run any Standard Schema. Most validators answer synchronously; the promise is only awaited
 * when the schema returns one.
 */
export function runSchema<T>(
  schema: StandardSchemaV1<unknown, T>,
  value: unknown,
): Validated<T> | Promise<Validated<T>> {
  const r = schema['~standard'].validate(value);
  if (r instanceof Promise) return r.then(toValidated);
  return toValidated(r);
}

function toValidated<T>(r: StandardSchemaV1.Result<T>): Validated<T> {
  if (r.issues === undefined) return { ok: true, value: r.value };
  return { ok: false, issues: r.issues.map(toIssue) };
}

function toIssue(i: StandardSchemaV1.Issue): Issue {
  const path: (string | number)[] = [];
  for (const seg of i.path ?? []) {
    const key = typeof seg === 'object' && seg !== null ? seg.key : seg;
    path.push(typeof key === 'number' ? key : String(key));
  }
  return { path, message: i.message };
}

/** An INVALID_ARGUMENT (or, for results, INTERNAL) error that names every failing field. */
export function schemaError(
  status: Status,
  reason: string,
  what: string,
  root: string,
  issues: Issue[],
): RpcError {
  return new RpcError(status, `${what}: ${formatIssues(issues, root)}`, {
    reason,
    issues,
    executed: status === Status.INVALID_ARGUMENT ? 'no' : 'yes',
  });
}
