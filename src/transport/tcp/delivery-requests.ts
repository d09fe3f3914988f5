/**
 * The reliable-delivery requests of a connection: the settle frames (ACK, NACK, TOUCH, REJECT) and
 * the queue-group administration frames (LIST_GROUPS, DESCRIBE_GROUP, RESET_GROUP, REDRIVE). Each
 * frame becomes broker calls; the connection (connection.ts) owns the socket, the writer and the
 * error path.
 *
 * A settle frame with request id 0 is fire-and-forget: a failed entry is reported as an ERROR with
 * request id 0 and `detail.subscriptionId`. With a request id, one SETTLED reply follows once every
 * entry has settled, with each entry's outcome in order: that is how `msg.reject()` learns that the
 * dead letter is stored and the original settled.
 */
import type { BrokerApi, Subscription } from '../../broker/types.js';
import type { Logger } from '../../platform/logger.js';
import { FerryError, isFerryError } from '../../errors.js';
import { FRAME_TYPES, frameTypeName, type Frame } from '../../protocol/frame.js';
import { NACK_DELAY_BACKOFF, type SettleOutcome } from '../../protocol/messages.js';
import type { PayloadReader } from '../../protocol/reader.js';
import type { FrameWriter } from '../../protocol/writer.js';
import { decodeAck, decodeNack } from '../../protocol/codec-subscribe.js';
import { decodeReject, decodeTouch, encodeSettled } from '../../protocol/codec-settle.js';
import {
  decodeDescribeGroup,
  decodeListGroups,
  decodeRedrive,
  decodeResetGroup,
  encodeGroupInfo,
  encodeGroupList,
  encodeRedriveOk,
} from '../../protocol/codec-groups.js';
import type { ServerSubscription } from './server-subscription.js';

/** What these handlers need from their connection. */
export interface RequestContext {
  readonly broker: BrokerApi;
  readonly writer: FrameWriter;
  readonly logger: Logger;
  /** Runs an async broker call and writes its reply, or an ERROR, when it settles. */
  run<T>(id: number, pending: Promise<T>, reply: (value: T) => void): void;
  /** A reply was written synchronously: flush it this turn. */
  replied(): void;
  /** The open subscription with this wire id, or UNKNOWN_SUBSCRIPTION. */
  sinkFor(wireId: number): ServerSubscription;
}

type Apply = (subscription: Subscription, sink: ServerSubscription, index: number) => Promise<void>;

/** Decodes one settle frame and hands each entry to the broker. */
export function handleSettle(context: RequestContext, frame: Frame, r: PayloadReader): void {
  let subscriptionId: number;
  let count: number;
  let apply: Apply;
  switch (frame.type) {
    case FRAME_TYPES.ACK: {
      const batch = decodeAck(r);
      subscriptionId = batch.subscriptionId;
      count = batch.partitions.length;
      apply = (subscription, _sink, i) => subscription.ack(batch.partitions[i]!, batch.offsets[i]!);
      break;
    }
    case FRAME_TYPES.NACK: {
      const batch = decodeNack(r);
      subscriptionId = batch.subscriptionId;
      count = batch.partitions.length;
      apply = (subscription, _sink, i) => {
        const delayMs = batch.delaysMs[i]!;
        return subscription.nack(batch.partitions[i]!, batch.offsets[i]!, delayMs === NACK_DELAY_BACKOFF ? undefined : { delayMs });
      };
      break;
    }
    case FRAME_TYPES.TOUCH: {
      const batch = decodeTouch(r);
      subscriptionId = batch.subscriptionId;
      count = batch.partitions.length;
      apply = (subscription, sink, i) => {
        if (subscription.touch !== undefined) return subscription.touch(batch.partitions[i]!, batch.offsets[i]!);
        // A stream has no ack timeout: nothing to restart.
        if (sink.group === undefined) return Promise.resolve();
        return Promise.reject(new FerryError('INVALID_ARGUMENT', 'this broker cannot touch deliveries'));
      };
      break;
    }
    case FRAME_TYPES.REJECT: {
      const batch = decodeReject(r);
      subscriptionId = batch.subscriptionId;
      count = batch.partitions.length;
      apply = (subscription, sink, i) => {
        if (subscription.reject !== undefined) return subscription.reject(batch.partitions[i]!, batch.offsets[i]!, batch.reasons[i]!);
        const why = sink.group === undefined ? 'a stream delivery cannot be rejected (no group, no dead-letter topic)' : 'this broker cannot reject deliveries';
        return Promise.reject(new FerryError('INVALID_ARGUMENT', why));
      };
      break;
    }
    default:
      throw new FerryError('MALFORMED_FRAME', `${frameTypeName(frame.type)} is not a settle frame`);
  }
  const sink = context.sinkFor(subscriptionId);
  const subscription = sink.subscription!;
  // A settled delivery frees its place under the credit cap (a TOUCH settles nothing).
  if (frame.type !== FRAME_TYPES.TOUCH) sink.acknowledged += count;
  const id = frame.requestId;
  const outcomes: Array<Promise<SettleOutcome>> | null = id === 0 ? null : [];
  // Without a request id, consecutive entries that share one promise (a group journals the acks of
  // a tick as one record) get one reaction between them instead of one each.
  let run: Promise<void> | null = null;
  let runLength = 0;
  for (let i = 0; i < count; i++) {
    sink.settling++;
    let settled: Promise<void>;
    try {
      settled = apply(subscription, sink, i);
    } catch (error) {
      settled = Promise.reject(error);
    }
    if (outcomes === null) {
      if (settled === run) {
        runLength++;
        continue;
      }
      if (run !== null) sink.settleAll(run, runLength);
      run = settled;
      runLength = 1;
    } else {
      outcomes.push(
        settled.then(
          () => {
            sink.settled();
            return { code: null, message: '' };
          },
          (error: unknown) => {
            sink.settled();
            return toOutcome(context.logger, error);
          },
        ),
      );
    }
  }
  if (run !== null) sink.settleAll(run, runLength);
  if (outcomes !== null) context.run(id, Promise.all(outcomes), (results) => encodeSettled(context.writer, id, results));
}

function toOutcome(logger: Logger, error: unknown): SettleOutcome {
  if (isFerryError(error)) return { code: error.code, message: error.message };
  logger.error('transport.internal_error', { where: 'settle', error });
  return { code: 'INTERNAL', message: 'internal error' };
}

/** LIST_GROUPS, DESCRIBE_GROUP, RESET_GROUP and REDRIVE. */
export function handleGroupRequest(context: RequestContext, frame: Frame, r: PayloadReader): void {
  const { broker, writer } = context;
  const id = frame.requestId;
  switch (frame.type) {
    case FRAME_TYPES.LIST_GROUPS: {
      const topic = decodeListGroups(r);
      encodeGroupList(writer, id, supported(broker.listGroups, 'list groups').call(broker, topic));
      context.replied();
      return;
    }
    case FRAME_TYPES.DESCRIBE_GROUP: {
      const { topic, group } = decodeDescribeGroup(r);
      encodeGroupInfo(writer, id, supported(broker.describeGroup, 'describe groups').call(broker, topic, group));
      context.replied();
      return;
    }
    case FRAME_TYPES.RESET_GROUP: {
      const { topic, group, to } = decodeResetGroup(r);
      const reset = supported(broker.resetGroup, 'reset groups');
      context.run(id, reset.call(broker, topic, group, to), (info) => encodeGroupInfo(writer, id, info));
      return;
    }
    case FRAME_TYPES.REDRIVE: {
      const { topic, ...options } = decodeRedrive(r);
      const redrive = supported(broker.redrive, 'redrive dead letters');
      context.run(id, redrive.call(broker, topic, options), (ok) => encodeRedriveOk(writer, id, ok));
      return;
    }
    default:
      throw new FerryError('MALFORMED_FRAME', `${frameTypeName(frame.type)} is not a group request`);
  }
}

/** The broker method, or INVALID_ARGUMENT when this BrokerApi does not offer it (they are optional). */
function supported<F>(method: F | undefined, what: string): F {
  if (method === undefined) throw new FerryError('INVALID_ARGUMENT', `this broker cannot ${what}`);
  return method;
}
