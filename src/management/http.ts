import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * An error answered as JSON in RabbitMQ's shape: `{"error": "...", "reason": "..."}`. Handlers
 * throw these; the server turns anything else into a 500 with a logged stack.
 */
export class HttpError extends Error {
  readonly status: number;
  readonly error: string;
  readonly headers: Record<string, string>;

  constructor(status: number, error: string, reason: string, headers: Record<string, string> = {}) {
    super(reason);
    this.name = 'HttpError';
    this.status = status;
    this.error = error;
    this.headers = headers;
  }
}

export const httpErrors = {
  notFound: (): HttpError => new HttpError(404, 'Object Not Found', 'Not Found'),
  badRequest: (reason: string): HttpError => new HttpError(400, 'bad_request', reason),
  /** Authenticated, but this user may not do this (RabbitMQ answers 401 here too). */
  forbidden: (reason = 'Access refused.'): HttpError =>
    new HttpError(401, 'not_authorised', reason),
  methodNotAllowed: (allow: string[]): HttpError =>
    new HttpError(405, 'method_not_allowed', 'Method Not Allowed', { allow: allow.join(', ') }),
};

/** A non-200 answer from a handler: 201 Created, 204 No Content, or a status with a body. */
export class Reply {
  constructor(
    readonly status: number,
    readonly body: unknown = undefined,
    readonly headers: Record<string, string> = {},
  ) {}

  static created(location?: string): Reply {
    return new Reply(201, undefined, location === undefined ? {} : { location });
  }

  static noContent(): Reply {
    return new Reply(204);
  }
}

/** Largest request body accepted (definitions of a big broker fit; a runaway upload does not). */
const MAX_BODY = 64 * 1024 * 1024;

export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new HttpError(413, 'bad_request', `request body larger than ${MAX_BODY} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** The body as a JSON object; an empty body is `{}`. Anything else is a 400. */
export async function readJsonObject(req: IncomingMessage): Promise<Record<string, unknown>> {
  const raw = await readBody(req);
  if (raw.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    throw httpErrors.badRequest('not_json');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw httpErrors.badRequest('the request body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    ...(text === '' ? {} : { 'content-type': 'application/json' }),
    'cache-control': 'no-cache',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

// ---------------------------------------------------------------- body field readers

export function optString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw httpErrors.badRequest(`'${key}' must be a string`);
  return v;
}

export function optBoolean(body: Record<string, unknown>, key: string): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'boolean') return v;
  // RabbitMQ's UI form posts "true"/"false" strings; accept them.
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw httpErrors.badRequest(`'${key}' must be true or false`);
}

export function optInteger(
  body: Record<string, unknown>,
  key: string,
  min: number,
  max: number,
): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw httpErrors.badRequest(`'${key}' must be an integer from ${min} to ${max}`);
  }
  return n;
}

export function optObject(
  body: Record<string, unknown>,
  key: string,
): Record<string, unknown> | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) {
    throw httpErrors.badRequest(`'${key}' must be a JSON object`);
  }
  return v as Record<string, unknown>;
}
