import type { FieldTable, FieldValue } from '../client/index.js';

/** Everything on the wire that a program in another language needs; docs/rpc-wire-format.md. */
export const WIRE_VERSION = 1;
export const CONTENT_TYPE = 'application/vnd.warren.rpc+json';
export const REGISTRY_CONTENT_TYPE = 'application/json';
export const DEFAULT_NAMESPACE = 'warren.rpc';

export const H = {
  version: 'x-rpc-v',
  op: 'x-rpc-op',
  service: 'x-rpc-service',
  method: 'x-rpc-method',
  timeout: 'x-rpc-timeout',
  epoch: 'x-rpc-epoch',
  client: 'x-rpc-client',
  conversation: 'x-rpc-conversation',
  seq: 'x-rpc-seq',
  floor: 'x-rpc-floor',
  attempt: 'x-rpc-attempt',
  object: 'x-rpc-object',
  job: 'x-rpc-job',
  jobId: 'x-rpc-job-id',
  jobState: 'x-rpc-job-state',
  status: 'x-rpc-status',
  instance: 'x-rpc-instance',
  transfer: 'x-rpc-transfer',
} as const;

/** What a message on an instance queue asks for (`x-rpc-op`; absent means `call`). */
export const Op = {
  Call: 'call',
  Cancel: 'cancel',
  Query: 'query',
  Announce: 'announce',
  Withdraw: 'withdraw',
  Lease: 'lease',
  Release: 'release',
  JobPoll: 'job-poll',
  JobCancel: 'job-cancel',
} as const;
export type Op = (typeof Op)[keyof typeof Op];

export const JobState = { Running: 'running', Done: 'done' } as const;
export type JobState = (typeof JobState)[keyof typeof JobState];

/** Names derived from the namespace (the registry exchange's name). */
export interface Names {
  readonly exchange: string;
  serviceQueue(service: string, version: string): string;
  instanceQueue(service: string, version: string, instance: string): string;
  announceKey(service: string): string;
  queryKey(service: string): string;
  cancelKey(service: string): string;
}

export function names(namespace: string): Names {
  return {
    exchange: namespace,
    serviceQueue: (s, v) => `${namespace}.svc.${s}@${v}`,
    instanceQueue: (s, v, i) => `${namespace}.inst.${s}@${v}.${i}`,
    announceKey: (s) => `announce.${s}`,
    queryKey: (s) => `query.${s}`,
    cancelKey: (s) => `cancel.${s}`,
  };
}

/** Queues idle (no consumer, no use) this long are deleted by the broker (x-expires). */
export const QUEUE_EXPIRES = 60_000;

export function str(h: FieldTable | undefined, k: string): string | undefined {
  const v = h?.[k];
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array)
    return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8');
  return undefined;
}

export function int(h: FieldTable | undefined, k: string): number | undefined {
  const v: FieldValue = h?.[k];
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
  return undefined;
}

/** The announcement a server instance publishes (JSON body of `announce`). */
export interface Announcement {
  service: string;
  version: string;
  instance: string;
  epoch: string;
  /** The queue all instances of this service and version consume (competing consumers). */
  queue: string;
  /** This instance's own queue: instance-addressed calls, cancels, leases, job polls. */
  instanceQueue: string;
  /** Milliseconds the announcement stays valid; the server renews it at a third of that. */
  lease: number;
  /** How long the server remembers at-most-once calls (0: it does not support at-most-once). */
  retention: number;
  methods: string[];
}

export function parseAnnouncement(x: unknown): Announcement | null {
  if (typeof x !== 'object' || x === null) return null;
  const a = x as Record<string, unknown>;
  const strings = ['service', 'version', 'instance', 'epoch', 'queue', 'instanceQueue'] as const;
  for (const k of strings) if (typeof a[k] !== 'string') return null;
  if (typeof a.lease !== 'number' || !(a.lease > 0)) return null;
  const methods = Array.isArray(a.methods) ? a.methods.filter((m) => typeof m === 'string') : [];
  return {
    service: a.service as string,
    version: a.version as string,
    instance: a.instance as string,
    epoch: a.epoch as string,
    queue: a.queue as string,
    instanceQueue: a.instanceQueue as string,
    lease: a.lease,
    retention: typeof a.retention === 'number' ? a.retention : 0,
    methods,
  };
}
