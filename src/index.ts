/** The embedded API: `import { Broker } from 'ferry'`. */
export { Broker } from './broker/broker.js';
export { DEFAULT_TOPIC_CONFIG } from './broker/config.js';
export type { BrokerOptions, ConsumeOptions, ListenOptions, Listener, PublishOptions } from './broker/broker.js';
export type { ConsumedMessage, MessageStream } from './broker/message-stream.js';
export type * from './broker/types.js';
export { FerryError, ERROR_CODES, isFerryError } from './errors.js';
export type { ErrorCode } from './errors.js';
