/**
 * warren/kv: the load-balanced, replicated key-value service of seed 002, built on Warren's
 * client, RPC and transfer layers. `warren kv lb|worker|client|bench` runs it; the same pieces
 * are here for embedding and tests.
 */
export { LoadBalancer, DEFAULT_KV_PORT, DEFAULT_KV_AMQP_PORT } from './load-balancer.js';
export type { LoadBalancerOptions } from './load-balancer.js';
export { Worker } from './worker.js';
export { WorkerStoppedError } from './worker-stopped-error.js';
export type { WorkerOptions } from './worker.js';
export { KvClient, KvError, KvErrorCode } from './kv-client.js';
export type { KvClientOptions, KvClientEvents } from './kv-client.js';
export { runKvBench, formatKvBench } from './bench.js';
export type { KvBenchOptions, KvBenchResult, LatencyMs } from './bench.js';
export { LbService, WorkerService, kvNames, DEFAULT_NAMESPACE } from './contracts.js';
export {
  MsgType,
  Result,
  ErrorCode,
  FrameReader,
  MAX_PAYLOAD,
  MAX_PUT_PAYLOAD,
  MAX_KEY,
  decodeRequest,
  decodeServerMessage,
  encodePut,
  encodeKeyRequest,
  encodeKeyResponse,
  encodeGetResponse,
  encodeError,
  typeName,
} from './protocol.js';
export type { ClientRequest, FrameError, ServerMessage } from './protocol.js';
export { KvStore, BUCKETS, newer } from './store.js';
export { HybridClock } from './hlc.js';
export { Watermarks } from './watermarks.js';
export { Membership, MemberState } from './membership.js';
export type { GossipTable, MemberInfo } from './membership.js';
export { WorkerRing } from './worker-ring.js';
