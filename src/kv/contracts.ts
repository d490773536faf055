import { defineService, s } from '../rpc/index.js';

/**
 * The control plane between the key-value processes, as typed RPC services (warren/rpc). Requests,
 * replication and gossip are plain AMQP messages (messages.ts); what is here is rare and benefits
 * from deadlines, validation and instance addressing.
 */

const memberRow = s.object({
  id: s.string(),
  inbox: s.string(),
  state: s.enum(['joining', 'ready', 'not-ready', 'left']),
  hb: s.int({ min: 0 }),
  /** The seed's shouldExportData: this worker exports its data to the one registering. */
  export: s.boolean(),
});

const watermarks = s.array(s.tuple([s.string(), s.number({ min: 0 })]));

/** Served by the load balancer (instance 'lb'). */
export const LbService = defineService({
  name: 'warren-kv-lb',
  version: '1.0.0',
  methods: {
    /**
     * The seed's worker registration: the reply is its registry (MSG_WORKER_REGISTRY_START,
     * one MSG_WORKER_ENTRY per worker with shouldExportData, MSG_WORKER_REGISTRY_END).
     */
    register: {
      args: s.object({
        id: s.string({ min: 1, max: 200 }),
        inbox: s.string({ min: 1 }),
        /**
         * Absent (or joining) for a new worker. A worker that served a load balancer which has
         * since been replaced registers again with its state and heartbeat, and takes no export.
         */
        state: s.enum(['joining', 'ready', 'not-ready']).optional(),
        hb: s.int({ min: 0 }).optional(),
      }),
      result: s.object({ workers: s.array(memberRow) }),
      timeout: 10_000,
    },
    /** MSG_WORKER_READY / MSG_WORKER_NOT_READY. */
    setState: {
      args: s.object({
        id: s.string(),
        state: s.enum(['ready', 'not-ready']),
        hb: s.int({ min: 0 }),
      }),
      result: s.boolean(),
      timeout: 10_000,
    },
    /** A worker that stops says so: it is unregistered at once. */
    leave: { args: s.object({ id: s.string() }), result: s.void(), timeout: 10_000 },
    /** Counters and memory; with `gc`, after a garbage collection (needs node --expose-gc). */
    stats: {
      args: s.object({ gc: s.boolean().optional() }),
      result: s.object({
        heapUsed: s.number(),
        heapTotal: s.number(),
        rss: s.number(),
        external: s.number(),
        arrayBuffers: s.number(),
        gcRan: s.boolean(),
        connections: s.int(),
        inflight: s.int(),
        parked: s.int(),
        /** Entries in the read-your-writes barriers of all connections (one per worker seen). */
        barrierEntries: s.int(),
        members: s.int(),
        removedMembers: s.int(),
        ring: s.array(s.string()),
        requests: s.int(),
        retries: s.int(),
        timers: s.int(),
      }),
      timeout: 30_000,
    },
  },
});

/** Served by every worker, its instance id being the worker id. */
export const WorkerService = defineService({
  name: 'warren-kv-worker',
  version: '1.0.0',
  methods: {
    /**
     * A full export for a joining worker (the seed's MSG_DATA_EXPORT_START / ENTRY / END, here a
     * stream of records sent with warren/transfer, pulled by the joiner). `watermarks` says how
     * far the export holds each worker's stream of writes.
     */
    export: {
      args: s.object({ to: s.string() }),
      result: s.object({ offer: s.unknown(), entries: s.int(), watermarks }),
      timeout: 60_000,
    },
    /** Anti-entropy, step 1: the bucket digests and how far this replica holds each stream. */
    digest: {
      args: s.object({ from: s.string() }),
      result: s.object({ digest: s.bytes(), watermarks, state: s.string() }),
      timeout: 10_000,
    },
    /**
     * Anti-entropy, step 2: the caller's versions of some buckets. The reply offers the entries
     * the caller lacks (a transfer, null if none) and lists the keys wanted back (keyLen, key).
     */
    reconcile: {
      args: s.object({ buckets: s.array(s.int({ min: 0 })), summary: s.bytes() }),
      result: s.object({ offer: s.unknown(), give: s.int(), want: s.bytes() }),
      timeout: 30_000,
    },
    /** Anti-entropy, step 3: entries the callee asked for, as a transfer to pull. */
    push: { args: s.object({ offer: s.unknown() }), result: s.int(), timeout: 120_000 },
    /** What this replica holds, for operators and tests; `keys` are looked up. */
    status: {
      args: s.object({ keys: s.array(s.bytes()).optional() }),
      result: s.object({
        id: s.string(),
        state: s.string(),
        live: s.int(),
        dead: s.int(),
        bytes: s.number(),
        digest: s.string(),
        served: s.object({ put: s.int(), get: s.int(), del: s.int(), behind: s.int() }),
        repaired: s.int(),
        exported: s.int(),
        imported: s.int(),
        members: s.array(s.tuple([s.string(), s.string(), s.boolean()])),
        lookups: s.array(
          s
            .object({
              value: s.bytes().nullable(),
              hlc: s.number(),
              origin: s.string(),
              seq: s.number(),
            })
            .nullable(),
        ),
      }),
      timeout: 10_000,
    },
  },
});

/** Names of the queues and exchange of one key-value cluster. */
export function kvNames(namespace: string) {
  return {
    rpc: `${namespace}.rpc`,
    lbInbox: `${namespace}.lb`,
    inbox: (id: string) => `${namespace}.inbox.${id}`,
    replica: (id: string) => `${namespace}.replica.${id}`,
    replicate: `${namespace}.replicate`,
    /** Fanout to every worker's inbox: a (new) load balancer says it is there. */
    announce: `${namespace}.announce`,
  };
}
export type KvNames = ReturnType<typeof kvNames>;

export const DEFAULT_NAMESPACE = 'warren.kv';
