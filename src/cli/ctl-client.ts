/** A failure talking to the management API, printed as one line; exit status 1. */
export class CtlError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'CtlError';
    this.code = code;
  }
}

export interface CtlConnection {
  url: string;
  user: string;
  password: string;
}

/**
 * A minimal client of the management HTTP API (RabbitMQ's or Warren's): JSON in and out, basic
 * auth, and errors that say what went wrong and what to check.
 */
export class ManagementClient {
  private readonly base: string;
  private readonly auth: string;

  constructor(conn: CtlConnection) {
    let u: URL;
    try {
      u = new URL(conn.url);
    } catch {
      throw new CtlError(
        'WARREN_ERR_CTL_URL',
        `--url '${conn.url}' is not a URL like http://localhost:15672`,
      );
    }
    this.base = u.toString().replace(/\/+$/, '');
    this.auth = 'Basic ' + Buffer.from(`${conn.user}:${conn.password}`).toString('base64');
  }

  async request(method: string, path: string, body?: unknown): Promise<unknown> {
    const headers: Record<string, string> = { authorization: this.auth };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${this.base}/api${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      const c = (err as { cause?: { code?: string; message?: string } }).cause;
      const cause = c?.code;
      throw new CtlError(
        'WARREN_ERR_CTL_CONNECT',
        cause === 'ECONNREFUSED'
          ? `cannot connect to ${this.base}: connection refused (is Warren running with its management port there? set --url)`
          : `cannot reach ${this.base}: ${c?.message ?? (err as Error).message}`,
      );
    }
    const text = await res.text();
    let data: unknown;
    try {
      data = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw new CtlError(
        'WARREN_ERR_CTL_RESPONSE',
        `${method} ${path}: HTTP ${res.status} with a non-JSON answer (is --url a management API?)`,
      );
    }
    if (!res.ok) {
      const reason =
        data !== null && typeof data === 'object' && 'reason' in data
          ? String(data.reason)
          : `HTTP ${res.status}`;
      const hint =
        res.status === 401
          ? ' (check --user and --password, and that the user has a management tag)'
          : '';
      throw new CtlError(
        'WARREN_ERR_CTL_HTTP',
        `${method} ${path}: ${res.status} ${reason}${hint}`,
      );
    }
    return data;
  }
}

/** A plain-text table: left-aligned text, right-aligned numbers, a header and a rule. */
export function formatTable(rows: Record<string, unknown>[], columns: string[]): string {
  const cells = rows.map((r) => columns.map((c) => cellText(pick(r, c))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const numeric = columns.map(
    (_, i) => rows.length > 0 && rows.every((r) => typeof pick(r, columns[i]!) === 'number'),
  );
  const line = (values: string[]): string =>
    values
      .map((v, i) => (numeric[i] ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return (
    [line(columns), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n') + '\n'
  );
}

function pick(r: Record<string, unknown>, path: string): unknown {
  let v: unknown = r;
  for (const p of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

function cellText(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v === '' ? "''" : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}
