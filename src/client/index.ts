export { connect } from './connect.js';
export { startBroker, inProcessTransport } from './embedded.js';
export type { EmbeddableBroker } from './embedded.js';
export { Connection, ConnectionState } from './connection.js';
export type { ConnectionEvents, ReconnectingInfo } from './connection.js';
export { Channel, DEFAULT_CONFIRM_WINDOW, DEFAULT_ITERATOR_PREFETCH } from './channel.js';
export type {
  ChannelOptions,
  ConfirmOptions,
  DeleteQueueOptions,
  ExchangeOptions,
  ExchangeType,
  GetOptions,
  QueueInfo,
  QueueOptions,
} from './channel.js';
export { ChannelState } from './channel-core.js';
export type { ChannelEvents } from './channel-core.js';
export { Consumer } from './consumer.js';
export type { ConsumeOptions, ConsumerEnd, MessageHandler } from './consumer.js';
export { Message } from './message.js';
export type {
  Body,
  MessageProperties,
  NackOptions,
  PublishOptions,
  ReturnedMessage,
} from './message.js';
export { MessageQueue } from './message-queue.js';
export type { MessageQueueOptions, NotifyOptions, TakeOptions } from './message-queue.js';
export { WorkQueue } from './patterns/work-queue.js';
export type { WorkerOptions } from './patterns/work-queue.js';
export { Fanout, Router } from './patterns/pub-sub.js';
export type { ExchangeHelperOptions, SubscribeOptions, Subscription } from './patterns/pub-sub.js';
export type { Handler } from './patterns/acking-handler.js';
export { RpcClient, RpcServer, DIRECT_REPLY_TO, RPC_ERROR_HEADER } from './patterns/rpc.js';
export type { RpcCallOptions, RpcReply, RpcServerOptions } from './patterns/rpc.js';
export { ClientError, ClientErrorCode, isAmqpError } from './errors.js';
export type { WarrenError } from './errors.js';
export { AmqpError } from '../protocol/index.js';
export type { FieldTable, FieldValue } from '../protocol/index.js';
export { parseAmqpUrl } from './url.js';
export type { ConnectOptions, ReconnectOptions, TlsOptions, UnconfirmedPolicy } from './options.js';
export type { CallOptions } from './call-options.js';
