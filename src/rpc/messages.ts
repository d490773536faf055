import { RpcError, Reason, Status, isStatus, statusName } from './status.js';
import type { Executed, Issue } from './status.js';

/**
 * The body of an error reply (status != 0), encoded like any value:
 * `{ "message": string, "reason"?: string, "issues"?: [{ "path": [...], "message": string }],
 *    "details"?: any, "executed"?: "no" | "yes" | "unknown", "rebind"?: boolean }`.
 */
export interface ErrorBody {
  message: string;
  reason?: string;
  issues?: Issue[];
  details?: unknown;
  executed?: Executed;
  rebind?: boolean;
}

export function errorBody(err: RpcError): ErrorBody {
  const b: ErrorBody = { message: err.message, executed: err.executed };
  if (err.reason !== undefined) b.reason = err.reason;
  if (err.issues.length > 0)
    b.issues = err.issues.map((i) => ({ path: [...i.path], message: i.message }));
  if (err.details !== undefined) b.details = err.details;
  if (err.rebind) b.rebind = true;
  return b;
}

/** The error a reply with `status` and decoded `body` stands for. */
export function errorFromReply(status: number, body: unknown, where: string): RpcError {
  const s = isStatus(status) ? status : Status.UNKNOWN;
  const b = (typeof body === 'object' && body !== null ? body : {}) as Partial<ErrorBody>;
  const message = typeof b.message === 'string' ? b.message : `${statusName(s)} from ${where}`;
  const issues = Array.isArray(b.issues)
    ? b.issues
        .filter(
          (i): i is Issue => typeof i === 'object' && i !== null && typeof i.message === 'string',
        )
        .map((i) => ({ path: Array.isArray(i.path) ? i.path : [], message: i.message }))
    : undefined;
  const executed =
    b.executed === 'no' || b.executed === 'yes' || b.executed === 'unknown'
      ? b.executed
      : 'unknown';
  return new RpcError(s, message, {
    reason: typeof b.reason === 'string' ? b.reason : undefined,
    issues,
    details: b.details,
    executed,
    rebind: b.rebind === true,
  });
}

/** Whatever a handler threw, as the error its caller gets. */
export function toRpcError(
  err: unknown,
  signal: { readonly aborted: boolean; readonly reason: unknown } | undefined,
): RpcError {
  if (err instanceof RpcError) return err;
  if (signal?.aborted === true) {
    const r: unknown = signal.reason;
    if (r instanceof RpcError) return r;
    return new RpcError(Status.CANCELLED, 'the call was cancelled', { executed: 'unknown' });
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return new RpcError(Status.UNKNOWN, `${e.name}: ${e.message}`, {
    reason: Reason.HandlerFailed,
    executed: 'yes',
  });
}
