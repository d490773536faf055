import type { RemoteRef, Semantics, ServiceContract } from './contract.js';
import type { InstanceEntry, RegistryWatcher } from './registry.js';
import type { RetryOptions } from './retry.js';
import { RpcError, Reason, Status } from './status.js';
import { compareVersions } from './version-range.js';
import type { VersionRange } from './version-range.js';
import type { Names } from './wire.js';

/** A router's call defaults (from bind()). */
export interface RouterDefaults {
  semantics?: Semantics | undefined;
  timeout?: number | undefined;
  retry?: RetryOptions | false | undefined;
}

/** Where one attempt goes. */
export interface Route {
  readonly queue: string;
  readonly epoch: string | undefined;
  readonly instance: string | undefined;
  readonly object: string | undefined;
  /** The server's at-most-once retention (0: none; undefined: unknown). */
  readonly retention: number | undefined;
}

export interface Router {
  readonly label: string;
  readonly service: string;
  /** Where to send, or null when no server is known now. */
  route(instanceAddressed: boolean, pin: string | undefined): Route | null;
  /** Wait up to `ms` for a server; resolves either way. */
  locate(ms: number, signal: AbortSignal | undefined): Promise<void>;
  unreachable(route: Route): void;
  cannotLocate(): RpcError;
  readonly defaults: RouterDefaults;
  /** Where a cancel goes when the call went to a shared queue. */
  readonly cancelKey: string | undefined;
  readonly ref: RemoteRef | undefined;
}

/** Routes calls of a bound service: the shared queue, or one instance's queue. */
export function serviceRouter(
  reg: RegistryWatcher,
  names: Names,
  contract: ServiceContract,
  range: VersionRange,
  o: RouterDefaults,
): Router {
  const name = contract.name;
  let rr = 0;
  const toRoute = (e: InstanceEntry, addressed: boolean): Route => ({
    queue: addressed ? e.ann.instanceQueue : e.ann.queue,
    epoch: addressed ? e.ann.epoch : undefined,
    instance: addressed ? e.ann.instance : undefined,
    object: undefined,
    retention: e.ann.retention,
  });
  return {
    label: name,
    service: name,
    cancelKey: names.cancelKey(name),
    ref: undefined,
    defaults: { semantics: o.semantics, timeout: o.timeout, retry: o.retry },
    route(addressed, pin) {
      const c = reg.candidates(name, range);
      if (c.length === 0) return null;
      if (pin !== undefined) {
        const e = c.find((x) => x.ann.instance === pin);
        return e === undefined ? null : toRoute(e, true);
      }
      const best = c[0]!;
      if (!addressed) return toRoute(best, false);
      let n = 1;
      while (n < c.length && compareVersions(c[n]!.version, best.version) === 0) n++;
      return toRoute(c[rr++ % n]!, true);
    },
    locate: (ms, signal) => reg.locate(name, range, ms, signal).then(() => undefined),
    unreachable(route) {
      if (route.instance !== undefined) {
        reg.forget(name, route.instance, route.epoch);
        return;
      }
      for (const e of reg.all(name))
        if (e.ann.queue === route.queue) reg.forget(name, e.ann.instance);
    },
    cannotLocate() {
      const live = reg.all(name);
      const versions = [...new Set(live.map((e) => e.ann.version))].sort();
      const seen =
        live.length === 0
          ? 'none is running'
          : `running: ${versions.join(', ')} on ${live.length} instance${live.length === 1 ? '' : 's'}`;
      return new RpcError(
        Status.UNAVAILABLE,
        `client cannot locate server: no live instance of service '${name}' with a version in '${range.text}' (${seen}); start a compatible server or bind with a range that includes a running version`,
        { reason: Reason.CannotLocateServer, executed: 'no', rebind: true },
      );
    },
  };
}

/** Routes calls of a remote object: always its host's queue, until the host says it is gone. */
export function objectRouter(ref: RemoteRef, onGone: () => void): Router {
  const route: Route = {
    queue: ref.queue,
    epoch: ref.epoch,
    instance: undefined,
    object: ref.id,
    retention: undefined,
  };
  let gone = false;
  return {
    label: `${ref.iface}#${ref.id}`,
    service: ref.iface,
    cancelKey: undefined,
    ref,
    defaults: {},
    route: () => (gone ? null : route),
    locate: () => Promise.resolve(),
    unreachable: () => {
      gone = true;
      onGone();
    },
    cannotLocate: () =>
      new RpcError(
        Status.NOT_FOUND,
        `remote ${ref.iface} ${ref.id} is gone: its host can no longer be reached`,
        {
          reason: Reason.ObjectGone,
          executed: 'no',
        },
      ),
  };
}

/** For job polls: replies are checked like a call's, nothing is routed. */
export function jobRouter(where: string): Router {
  const r: Router = {
    label: where,
    service: '',
    cancelKey: undefined,
    ref: undefined,
    defaults: {},
    route: () => null,
    locate: () => Promise.resolve(),
    unreachable: () => undefined,
    cannotLocate: () => new RpcError(Status.UNAVAILABLE, where),
  };
  return r;
}
