export { Broker, ListenError, ConfigError } from './broker/index.js';
export type { BrokerOptions } from './broker/index.js';
export { AmqpError } from './protocol/index.js';
export { VERSION } from './version.js';
export {
  connect,
  startBroker,
  Connection,
  Channel,
  Consumer,
  Message,
  MessageQueue,
  ClientError,
  ClientErrorCode,
} from './client/index.js';
export type {
  ConnectOptions,
  ChannelOptions,
  ConsumeOptions,
  PublishOptions,
  QueueOptions,
  ExchangeOptions,
} from './client/index.js';
