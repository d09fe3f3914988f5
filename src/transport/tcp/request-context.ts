/** What the request handlers of a connection (session.ts, topics.ts, publish.ts, subscriptions.ts, settle.ts, groups.ts) use of it. */
import type { BrokerApi } from '../../broker/types.js';
import type { Logger } from '../../platform/logger.js';
import type { PayloadReader } from '../../protocol/reader.js';
import type { FrameWriter } from '../../protocol/writer.js';
import type { ServerSubscription } from './server-subscription.js';

export interface RequestContext {
  /** What requests go to: the broker itself, or the guard's view of it for the logged-in user. */
  readonly broker: BrokerApi;
  readonly writer: FrameWriter;
  /** The connection's one payload reader: reset per frame. */
  readonly reader: PayloadReader;
  readonly logger: Logger;
  /** The socket closed: nothing more is written. */
  readonly closed: boolean;
  /** Runs an async broker call and writes its reply, or an ERROR, when it settles. */
  run<T>(id: number, pending: Promise<T>, reply: (value: T) => void): void;
  /** A reply was written synchronously: flush it this turn. */
  replied(): void;
  /** Reports a failed request: fatal errors close the connection, others become an ERROR frame. */
  requestFailed(id: number, error: unknown): void;
  /** Broker calls handed off and answered: reading pauses while inFlightRequestsMax are pending. */
  requestsStarted(count: number): void;
  requestsFinished(count: number): void;
  /** The open subscription with this wire id, or UNKNOWN_SUBSCRIPTION. */
  sinkFor(wireId: number): ServerSubscription;
}
