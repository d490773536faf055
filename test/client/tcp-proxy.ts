import { createServer, connect as netConnect } from 'node:net';
import type { Server, Socket } from 'node:net';

/**
 * A TCP proxy on an ephemeral port in front of a broker, to break connections the way a network
 * does: `cut()` resets every proxied connection, `freeze()` stops forwarding bytes without
 * closing anything (a silent peer, for heartbeat detection).
 */
export class TcpProxy {
  private server: Server | null = null;
  private readonly pairs = new Set<[Socket, Socket]>();
  private frozen = false;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async start(): Promise<this> {
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const addr = this.server.address();
    this.port = typeof addr === 'object' && addr !== null ? addr.port : 0;
    return this;
  }

  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  /** Connections currently proxied. */
  get size(): number {
    return this.pairs.size;
  }

  private accept(client: Socket): void {
    const upstream = netConnect(this.targetPort, this.targetHost);
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const forward = (from: Socket, to: Socket): void => {
      from.on('data', (chunk: Buffer) => {
        if (!this.frozen && !to.destroyed) to.write(chunk);
      });
    };
    forward(client, upstream);
    forward(upstream, client);
    const close = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', close);
    upstream.on('close', close);
    client.on('error', close);
    upstream.on('error', close);
  }

  /** Reset every connection through the proxy (new ones are accepted). */
  cut(): void {
    for (const [a, b] of this.pairs) {
      a.resetAndDestroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  /** Stop forwarding bytes on existing connections, without closing them. */
  freeze(): void {
    this.frozen = true;
  }

  unfreeze(): void {
    this.frozen = false;
  }

  async stop(): Promise<void> {
    this.cut();
    const s = this.server;
    this.server = null;
    if (s !== null) await new Promise<void>((r) => s.close(() => r()));
  }
}
