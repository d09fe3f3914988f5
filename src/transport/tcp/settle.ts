/**
 * The settle requests of a connection: ACK, NACK, TOUCH and REJECT, each entry handed to the broker.
 * With request id 0 a frame is fire-and-forget: a failed entry is reported as an ERROR with request
 * id 0 and `detail.subscriptionId`. With a request id, one SETTLED reply follows once every entry
 * has settled, with each entry's outcome in order: that is how `msg.reject()` learns that the dead
 * letter is stored and the original settled.
 */
import type { Subscription } from '../../broker/types.js';
import type { Logger } from '../../platform/logger.js';
import { FerryError, isFerryError } from '../../errors.js';
import { FRAME_TYPES, frameTypeName, type Frame } from '../../protocol/frame.js';
import { NACK_DELAY_BACKOFF, type SettleOutcome } from '../../protocol/messages.js';
import type { PayloadReader } from '../../protocol/reader.js';
import { decodeAck, decodeNack } from '../../protocol/codec-subscribe.js';
import { decodeReject, decodeTouch, encodeSettled } from '../../protocol/codec-settle.js';
import type { RequestContext } from './request-context.js';
import type { ServerSubscription } from './server-subscription.js';

type Apply = (subscription: Subscription, sink: ServerSubscription, index: number) => Promise<void>;

/** One decoded settle frame: its subscription, its entries, and how to hand entry `index` to the broker. */
interface SettleBatch {
  subscriptionId: number;
  count: number;
  apply: Apply;
}

/** Decodes one settle frame and hands each entry to the broker. */
export function handleSettle(context: RequestContext, frame: Frame, r: PayloadReader): void {
  const { subscriptionId, count, apply } = decodeSettle(frame, r);
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
      outcomes.push(outcomeOf(context.logger, sink, settled));
    }
  }
  if (run !== null) sink.settleAll(run, runLength);
  if (outcomes !== null) context.run(id, Promise.all(outcomes), (results) => encodeSettled(context.writer, id, results));
}

function decodeSettle(frame: Frame, r: PayloadReader): SettleBatch {
  switch (frame.type) {
    case FRAME_TYPES.ACK: {
      const batch = decodeAck(r);
      return { subscriptionId: batch.subscriptionId, count: batch.partitions.length, apply: (subscription, _sink, i) => subscription.ack(batch.partitions[i]!, batch.offsets[i]!) };
    }
    case FRAME_TYPES.NACK: {
      const batch = decodeNack(r);
      const apply: Apply = (subscription, _sink, i) => {
        const delayMs = batch.delaysMs[i]!;
        return subscription.nack(batch.partitions[i]!, batch.offsets[i]!, delayMs === NACK_DELAY_BACKOFF ? undefined : { delayMs });
      };
      return { subscriptionId: batch.subscriptionId, count: batch.partitions.length, apply };
    }
    case FRAME_TYPES.TOUCH: {
      const batch = decodeTouch(r);
      const apply: Apply = (subscription, sink, i) => {
        if (subscription.touch !== undefined) return subscription.touch(batch.partitions[i]!, batch.offsets[i]!);
        // A stream has no ack timeout: nothing to restart.
        if (sink.group === undefined) return Promise.resolve();
        return Promise.reject(new FerryError('INVALID_ARGUMENT', 'this broker cannot touch deliveries'));
      };
      return { subscriptionId: batch.subscriptionId, count: batch.partitions.length, apply };
    }
    case FRAME_TYPES.REJECT: {
      const batch = decodeReject(r);
      const apply: Apply = (subscription, sink, i) => {
        if (subscription.reject !== undefined) return subscription.reject(batch.partitions[i]!, batch.offsets[i]!, batch.reasons[i]!);
        const why = sink.group === undefined ? 'a stream delivery cannot be rejected (no group, no dead-letter topic)' : 'this broker cannot reject deliveries';
        return Promise.reject(new FerryError('INVALID_ARGUMENT', why));
      };
      return { subscriptionId: batch.subscriptionId, count: batch.partitions.length, apply };
    }
    default:
      throw new FerryError('MALFORMED_FRAME', `${frameTypeName(frame.type)} is not a settle frame`);
  }
}

/** An entry's outcome for the SETTLED reply, once it settles. */
function outcomeOf(logger: Logger, sink: ServerSubscription, settled: Promise<void>): Promise<SettleOutcome> {
  return settled.then(
    () => {
      sink.settled();
      return { code: null, message: '' };
    },
    (error: unknown) => {
      sink.settled();
      return toOutcome(logger, error);
    },
  );
}

function toOutcome(logger: Logger, error: unknown): SettleOutcome {
  if (isFerryError(error)) return { code: error.code, message: error.message };
  logger.error('transport.internal_error', { where: 'settle', error });
  return { code: 'INTERNAL', message: 'internal error' };
}
