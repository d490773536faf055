/**
 * warren/rpc: typed RPC over AMQP, through Warren or RabbitMQ (it uses only the client).
 *
 *   const Calc = defineService({ name: 'calc', version: '1.0.0', methods: {
 *     add: { args: s.object({ a: s.number(), b: s.number() }), result: s.number() },
 *   }});
 *   await serve(conn, Calc, { add: ({ a, b }) => a + b });
 *   const calc = await bind(conn, Calc);          // any server with a version in ^1.0.0
 *   await calc.add({ a: 1, b: 2 });                // 3
 *
 * The wire format (so other languages can call and serve) is in docs/rpc-wire-format.md.
 */
export {
  defineService,
  defineInterface,
  remote,
  isRemoteProxy,
  isRemoteObject,
} from './contract.js';
export type {
  BindingInfo,
  CallContext,
  CallOptions,
  Contract,
  Implementation,
  InterfaceContract,
  MethodSpec,
  MethodStub,
  Methods,
  RemoteObject,
  RemoteProxy,
  RemoteRef,
  Semantics,
  ServiceClient,
  ServiceContract,
} from './contract.js';
export { s, Schema, OptionalSchema } from './schema.js';
export type { Infer, ObjectInput, ObjectOutput } from './schema.js';
export type { StandardSchemaV1, InputOf, OutputOf } from './standard-schema.js';
export { RpcEndpoint, rpcEndpoint, bind, serve } from './endpoint.js';
export type { BindOptions, ClientFaults, EndpointOptions, LargeBodyOptions } from './endpoint.js';
export { ServiceServer } from './server.js';
export type { ServeOptions, ServerFaults } from './server.js';
export { DeferredCall, Job } from './calls.js';
export type { CallState, JobStatus, JobWaitOptions } from './calls.js';
export { RpcError, Reason, Status, isRpcError, statusName } from './status.js';
export type { Executed, Issue, StatusName } from './status.js';
export { RetryBudget, DEFAULT_RETRY } from './retry.js';
export type { RetryBudgetOptions, RetryOptions, RetryPolicy } from './retry.js';
export { VersionRange, parseVersion, compareVersions } from './version-range.js';
export type { Version } from './version-range.js';
export { encodeValue, decodeValue } from './codec.js';
export type { BodyCarrier } from './large-bodies.js';
export { CONTENT_TYPE, DEFAULT_NAMESPACE, WIRE_VERSION } from './wire.js';
