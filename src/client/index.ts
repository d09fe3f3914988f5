/**
 * The Ferry client SDK (`import { connect } from 'ferry/client'`). It depends only on the wire
 * protocol (src/protocol) and Node built-ins.
 */
export { connect, FerryClient, PREFETCH_DEFAULT, PREFETCH_MAX, type TopicInfo, type TopicOptions } from './client.js';
export type { ConnectOptions, ReconnectOptions, RetryPublishesOptions, TlsOptions } from './options.js';
export type { BrokerInfo, ClusterMetadata, TopicLeader } from './metadata.js';
export type { BrokerStatus, ClusterStatus } from './cluster-status.js';
export type { ClusterChangeResult, ReplicaMove } from '../protocol/codec-cluster-change.js';
export type { LogVerification, ReplicaVerification, TopicVerification } from './verify.js';
export { REDRIVE_CHUNK_MESSAGES, type GroupInfo, type RedriveOptions, type RedriveResult } from './groups.js';
export type { BatchMessage, PublishOptions, PublishResult } from './publish.js';
export { Subscription, type SubscribeOptions, type StartFrom, type SubscriptionMovedEvent } from './subscription.js';
export { UdpPublisher, UDP_SEND_QUEUE_MAX, type UdpPublishOptions, type UdpPublisherOptions } from './udp.js';
export { Message, REJECT_REASON_DEFAULT, type NackOptions } from './message.js';
export { FerryError, isFerryError, ERROR_CODES, type ErrorCode } from '../errors.js';
