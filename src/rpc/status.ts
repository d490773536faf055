/**
 * Status codes of RPC replies. The numbers are the ones gRPC uses, so their meaning is already
 * familiar: a reply with status 0 carries a result, any other status an error.
 */
export const Status = {
  OK: 0,
  /** The caller cancelled the call (its AbortSignal fired). */
  CANCELLED: 1,
  /** The handler failed with an error that carried no status. */
  UNKNOWN: 2,
  /** The arguments did not pass the method's schema; the error names the field. */
  INVALID_ARGUMENT: 3,
  /** The deadline passed before a reply. The server may still have executed the call. */
  DEADLINE_EXCEEDED: 4,
  /** No such method, remote object or job. */
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  /** The server refused the call for lack of room (at-most-once table, job table); not executed. */
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  /** Refused because the request belongs to an older incarnation (server epoch or client conversation): rebind. */
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  /** A broken invariant: a malformed message, a result that fails its schema. */
  INTERNAL: 13,
  /** No server can take the call now (none found, instance gone, shutting down). */
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type Status = (typeof Status)[keyof typeof Status];
export type StatusName = keyof typeof Status;

const NAMES: readonly StatusName[] = Object.keys(Status) as StatusName[];

/** The name of a status number (`UNKNOWN` for numbers outside the table). */
export function statusName(status: number): StatusName {
  return NAMES[status] ?? 'UNKNOWN';
}

export function isStatus(n: unknown): n is Status {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n < NAMES.length;
}

/**
 * Why an error happened, more precisely than its status: stable strings the application can
 * branch on (`err.reason === Reason.StaleEpoch`).
 */
export const Reason = {
  /** bind() or a call found no live server of the service whose version matches the range. */
  CannotLocateServer: 'CANNOT_LOCATE_SERVER',
  /** The request was stamped with an epoch of a server incarnation that has since restarted. */
  StaleEpoch: 'STALE_EPOCH',
  /** The request came from a client conversation older than one the server has already seen. */
  StaleConversation: 'STALE_CONVERSATION',
  /** The instance an at-most-once call was addressed to disappeared before replying. */
  InstanceGone: 'INSTANCE_GONE',
  /** Arguments failed the method's schema (server side). */
  InvalidArguments: 'INVALID_ARGUMENTS',
  /** The result failed the method's schema (client side). */
  InvalidResult: 'INVALID_RESULT',
  /** A value could not be encoded (a function, a symbol, a cycle). */
  Unencodable: 'UNENCODABLE',
  /** A message did not follow the wire format. */
  Malformed: 'MALFORMED',
  /** The method is not in the service's contract on the server. */
  UnknownMethod: 'UNKNOWN_METHOD',
  /** A remote object was collected (its leases expired or were released) or its host restarted. */
  ObjectGone: 'OBJECT_GONE',
  UnknownJob: 'UNKNOWN_JOB',
  /** The at-most-once table or job table is full. */
  TableFull: 'TABLE_FULL',
  /** Retries stopped because the client's retry budget is spent. */
  RetryBudget: 'RETRY_BUDGET_EXHAUSTED',
  /** The server is shutting down and took no new calls. */
  ShuttingDown: 'SHUTTING_DOWN',
  /** The handler threw. */
  HandlerFailed: 'HANDLER_FAILED',
  /** The connection dropped and the call could not be retried safely. */
  ConnectionLost: 'CONNECTION_LOST',
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];

/** One schema violation: where (`path`, e.g. `['items', 2, 'price']`) and what. */
export interface Issue {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/** Whether the call ran on the server: known not to, known to, or unknown. */
export type Executed = 'no' | 'yes' | 'unknown';

export interface RpcErrorOptions {
  reason?: string | undefined;
  issues?: readonly Issue[] | undefined;
  details?: unknown;
  /** The client should look the service up again before the next call (epoch changed, instance gone). */
  rebind?: boolean | undefined;
  executed?: Executed | undefined;
  cause?: unknown;
}

/**
 * The one error type of RPC, on both sides. A handler throws it to choose the status the caller
 * sees; the caller gets it for every failure, remote or local. `code` is stable
 * (`WARREN_ERR_RPC_<STATUS>`), `reason` narrows it down (see `Reason`).
 */
export class RpcError extends Error {
  readonly status: Status;
  readonly code: `WARREN_ERR_RPC_${StatusName}`;
  readonly reason: string | undefined;
  /** Schema violations, each naming its field. */
  readonly issues: readonly Issue[];
  /** Application data sent with the error (any encodable value). */
  readonly details: unknown;
  readonly rebind: boolean;
  /** Whether the server executed the call. 'no' means a retry cannot run it twice. */
  readonly executed: Executed;

  constructor(status: Status, message: string, options: RpcErrorOptions = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'RpcError';
    this.status = status;
    this.code = `WARREN_ERR_RPC_${statusName(status)}`;
    this.reason = options.reason;
    this.issues = options.issues ?? [];
    this.details = options.details;
    this.rebind = options.rebind ?? false;
    this.executed = options.executed ?? 'unknown';
  }

  get statusName(): StatusName {
    return statusName(this.status);
  }
}

export function isRpcError(err: unknown): err is RpcError {
  return err instanceof RpcError;
}

/** Format issues as `a.b[2]: message; c: message`. */
export function formatIssues(issues: readonly Issue[], root: string): string {
  return issues.map((i) => `${formatPath(root, i.path)}: ${i.message}`).join('; ');
}

export function formatPath(root: string, path: readonly (string | number)[]): string {
  let s = root;
  for (const p of path) {
    if (typeof p === 'number') s += `[${p}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(p)) s += s === '' ? p : `.${p}`;
    else s += `[${JSON.stringify(p)}]`;
  }
  return s === '' ? '(value)' : s;
}
