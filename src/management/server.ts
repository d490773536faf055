import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ListenError } from '../broker/index.js';
import type { Broker, User } from '../broker/index.js';
import { AmqpError } from '../protocol/index.js';
import type { Context } from './context.js';
import { allows, hasManagementTag, makeBodyReader } from './context.js';
import { registerAccess } from './controllers/access.js';
import { registerBindings } from './controllers/bindings.js';
import { registerConnections } from './controllers/connections.js';
import { registerDefinitions } from './controllers/definitions.js';
import { registerExchanges } from './controllers/exchanges.js';
import { nodeName, registerOverview } from './controllers/overview.js';
import { registerQueues } from './controllers/queues.js';
import { HttpError, Reply, sendJson } from './http.js';
import { renderMetrics } from './metrics.js';
import { Router } from './router.js';
import { StatsCollector } from './stats.js';

export interface ManagementOptions {
  /** HTTP port; 0 picks a free one. Default 15672. */
  port?: number;
  /** Interface to listen on; default all interfaces. */
  host?: string;
  /** How often counters are sampled into rates, in ms (default 5000). */
  statsIntervalMs?: number;
  /** Serve /metrics without authentication, as Prometheus scrapers expect (default true). */
  openMetrics?: boolean;
}

const REALM = 'Basic realm="Warren Management"';
const UI_DIR = fileURLToPath(new URL('./ui/', import.meta.url));
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.png': 'image/png',
};

/**
 * The management HTTP server: a RabbitMQ-compatible JSON API under /api, Prometheus metrics at
 * /metrics and the web UI at /. It only reads the broker's state and calls its public methods;
 * the broker knows nothing about it.
 */
export class ManagementServer {
  readonly broker: Broker;
  readonly stats: StatsCollector;
  private readonly options: ManagementOptions;
  private readonly router = new Router();
  private server: Server | null = null;
  private readonly files = new Map<string, Buffer>();

  constructor(broker: Broker, options: ManagementOptions = {}) {
    this.broker = broker;
    this.options = options;
    this.stats = new StatsCollector(broker, options.statsIntervalMs ?? 5000);
    registerOverview(this.router);
    registerConnections(this.router);
    registerExchanges(this.router);
    registerQueues(this.router);
    registerBindings(this.router);
    registerAccess(this.router);
    registerDefinitions(this.router);
  }

  async start(): Promise<this> {
    if (this.server !== null) return this;
    const port = this.options.port ?? 15672;
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => this.fail(res, err));
    });
    server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(
          err.code === 'EADDRINUSE'
            ? new ListenError(
                'WARREN_ERR_PORT_IN_USE',
                `management port ${port} is already in use (is RabbitMQ's management plugin or another Warren running?); choose another with --management-port`,
              )
            : new ListenError(
                'WARREN_ERR_LISTEN',
                `cannot listen on management port ${port}: ${err.message}`,
              ),
        );
      });
      server.listen({ port, host: this.options.host }, () => resolve());
    });
    this.server = server;
    this.stats.start();
    this.broker.logger.info(`management API and web UI on ${this.url}`);
    return this;
  }

  async stop(): Promise<void> {
    this.stats.stop();
    const server = this.server;
    this.server = null;
    if (server === null) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  /** The port actually bound (useful with port 0). */
  get port(): number {
    const addr = this.server?.address();
    return addr !== null && typeof addr === 'object' ? addr.port : 0;
  }

  get url(): string {
    const host = this.options.host;
    const shown =
      host === undefined || host === '0.0.0.0' || host === '::'
        ? 'localhost'
        : host.includes(':')
          ? `[${host}]`
          : host;
    return `http://${shown}:${this.port}/`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path === '/api' || path.startsWith('/api/')) {
      await this.api(req, res, method, url);
      return;
    }
    if (path === '/metrics') {
      if (this.options.openMetrics === false) this.authenticate(req);
      const text = renderMetrics(this.broker, this.stats);
      res.writeHead(200, {
        'content-type': 'text/plain; version=0.0.4; charset=utf-8',
        'content-length': Buffer.byteLength(text),
      });
      res.end(method === 'HEAD' ? undefined : text);
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') {
      throw new HttpError(405, 'method_not_allowed', 'Method Not Allowed', { allow: 'GET, HEAD' });
    }
    await this.serveFile(res, path === '/' ? 'index.html' : path.slice(1), method === 'HEAD');
  }

  private async api(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    url: URL,
  ): Promise<void> {
    if (method === 'OPTIONS') {
      res.writeHead(204, { allow: 'GET, HEAD, PUT, POST, DELETE, OPTIONS' });
      res.end();
      return;
    }
    const user = this.authenticate(req);
    const match = this.router.match(method, url.pathname);
    if (!allows(user, match.access)) {
      throw new HttpError(
        401,
        'not_authorised',
        match.access === 'administrator'
          ? 'Not administrator user'
          : match.access === 'monitoring'
            ? 'Not monitor user'
            : 'Not management user',
      );
    }
    const ctx: Context = {
      req,
      res,
      broker: this.broker,
      stats: this.stats,
      user,
      params: match.params,
      query: url.searchParams,
      node: nodeName(this.broker),
      body: makeBodyReader(req),
    };
    const result: unknown = await match.handler(ctx);
    const head = method === 'HEAD';
    if (result instanceof Reply) {
      sendJson(res, result.status, head ? undefined : result.body, result.headers);
    } else if (result === undefined) {
      sendJson(res, 204, undefined);
    } else {
      sendJson(res, 200, head ? undefined : result);
    }
  }

  /** HTTP basic auth against the broker's users; only users with a management tag get in. */
  private authenticate(req: IncomingMessage): User {
    const header = req.headers.authorization ?? '';
    const m = /^Basic\s+(\S+)$/i.exec(header);
    // Browsers show their own login dialog on a WWW-Authenticate challenge; the web UI has a form.
    const challenge: Record<string, string> =
      req.headers['x-requested-with'] === 'XMLHttpRequest' ? {} : { 'www-authenticate': REALM };
    if (m === null) throw new HttpError(401, 'not_authorized', 'Login failed', challenge);
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const name = colon < 0 ? decoded : decoded.slice(0, colon);
    const password = colon < 0 ? '' : decoded.slice(colon + 1);
    const user = this.broker.users.authenticate(name, password);
    if (user === undefined) throw new HttpError(401, 'not_authorized', 'Login failed', challenge);
    if (this.broker.config.loopbackUsers.includes(name) && !isLoopback(req.socket.remoteAddress)) {
      throw new HttpError(
        401,
        'not_authorised',
        `user '${name}' can only log in via localhost`,
        challenge,
      );
    }
    if (!hasManagementTag(user)) {
      throw new HttpError(401, 'not_authorised', 'Not management user', challenge);
    }
    return user;
  }

  private async serveFile(res: ServerResponse, name: string, head: boolean): Promise<void> {
    // The UI is a flat directory: anything else (including ../) is simply not there.
    if (!/^[\w-]+(\.[\w-]+)*$/.test(name)) throw new HttpError(404, 'not_found', 'Not Found');
    let data = this.files.get(name);
    if (data === undefined) {
      try {
        data = await readFile(join(UI_DIR, name));
      } catch {
        throw new HttpError(404, 'not_found', 'Not Found');
      }
      this.files.set(name, data);
    }
    res.writeHead(200, {
      'content-type': CONTENT_TYPES[extname(name)] ?? 'application/octet-stream',
      'content-length': data.length,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    });
    res.end(head ? undefined : data);
  }

  private fail(res: ServerResponse, err: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof HttpError) {
      sendJson(res, err.status, { error: err.error, reason: err.message }, err.headers);
      return;
    }
    if (err instanceof AmqpError) {
      const [status, error] = amqpStatus(err.replyCode);
      // RabbitMQ's HTTP reasons drop the reply-code name for precondition failures.
      const reason = status === 404 ? err.replyText : err.replyText.replace(/^[A-Z_]+ - /, '');
      sendJson(res, status, { error, reason });
      return;
    }
    this.broker.logger.error(
      `management: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
    sendJson(res, 500, { error: 'internal_error', reason: 'internal error; see the broker log' });
  }
}

function amqpStatus(replyCode: number): [number, string] {
  switch (replyCode) {
    case 404:
      return [404, 'not_found'];
    case 403:
      return [401, 'not_authorised'];
    default:
      return [400, 'bad_request'];
  }
}

function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

/** Start the management HTTP server for a broker (e.g. one created with `new Broker(...)`). */
export async function startManagement(
  broker: Broker,
  options: ManagementOptions = {},
): Promise<ManagementServer> {
  return new ManagementServer(broker, options).start();
}
