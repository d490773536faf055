import type { Access, Handler } from './context.js';
import { httpErrors } from './http.js';

interface Route {
  readonly method: string;
  readonly segments: readonly string[];
  readonly access: Access;
  readonly handler: Handler;
}

export interface Match {
  readonly handler: Handler;
  readonly access: Access;
  readonly params: Record<string, string>;
}

/**
 * Path routing without a framework: a pattern is a path whose `:name` segments capture one
 * URL-decoded segment each (so the vhost `/`, sent as `%2F`, is one segment).
 */
export class Router {
  private readonly routes: Route[] = [];

  add(method: string, pattern: string, access: Access, handler: Handler): this {
    this.routes.push({ method, segments: split(pattern), access, handler });
    return this;
  }

  get(pattern: string, access: Access, handler: Handler): this {
    return this.add('GET', pattern, access, handler);
  }

  put(pattern: string, access: Access, handler: Handler): this {
    return this.add('PUT', pattern, access, handler);
  }

  post(pattern: string, access: Access, handler: Handler): this {
    return this.add('POST', pattern, access, handler);
  }

  delete(pattern: string, access: Access, handler: Handler): this {
    return this.add('DELETE', pattern, access, handler);
  }

  /** The route for a request; throws 404 for an unknown path, 405 for a known one. */
  match(method: string, rawPath: string): Match {
    const parts = split(rawPath);
    let decoded: string[];
    try {
      decoded = parts.map((p) => decodeURIComponent(p));
    } catch {
      throw httpErrors.badRequest('malformed percent-encoding in the path');
    }
    const allowed = new Set<string>();
    const wanted = method === 'HEAD' ? 'GET' : method;
    for (const r of this.routes) {
      const params = matchSegments(r.segments, decoded);
      if (params === null) continue;
      if (r.method === wanted) return { handler: r.handler, access: r.access, params };
      allowed.add(r.method);
    }
    if (allowed.size === 0) throw httpErrors.notFound();
    if (allowed.has('GET')) allowed.add('HEAD');
    throw httpErrors.methodNotAllowed([...allowed, 'OPTIONS']);
  }
}

function split(path: string): string[] {
  const parts = path.split('/');
  if (parts[0] === '') parts.shift();
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

function matchSegments(
  pattern: readonly string[],
  path: readonly string[],
): Record<string, string> | null {
  if (pattern.length !== path.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.startsWith(':')) params[p.slice(1)] = path[i]!;
    else if (p !== path[i]) return null;
  }
  return params;
}
