/**
 * Applies a batch of settles (acks, nacks, rejects, touches) to one broker subscription and
 * reports, per entry, what could not be applied. Shared by the Consume stream and the unary
 * Ack/Nack/Reject/Touch calls, so both settle exactly alike. Entries start in order (acks,
 * nacks, rejects, touches) within the same turn; the result waits for all of them, so it is
 * durable when it resolves (acks journaled per the topic's mode, rejects stored in the
 * dead-letter topic).
 */
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { Logger } from '../../platform/logger.js';
import { FerryError, isFerryError } from '../../errors.js';
import type { Subscription } from '../../broker/types.js';
import { SettleAction, type NackEntry, type Position, type RejectEntry, type SettleFailureSchema } from '../../generated/ferry/v1/messages_pb.js';
import { errorDetail, statusForFerryCode } from './errors.js';
import { REJECT_REASON_CHARS_MAX, SETTLE_ENTRIES_MAX } from './limits.js';
import { toSafeNumber } from './convert.js';

export type SettleFailureInit = MessageInitShape<typeof SettleFailureSchema>;

export interface SettleBatch {
  acks: readonly Position[];
  nacks: readonly NackEntry[];
  rejects: readonly RejectEntry[];
  touches: readonly Position[];
}

export function settleCount(batch: SettleBatch): number {
  return batch.acks.length + batch.nacks.length + batch.rejects.length + batch.touches.length;
}

/** Whole-request checks: too many entries is INVALID_ARGUMENT for the call, not per entry. */
export function checkSettleBatch(batch: SettleBatch): void {
  checkSettleCount(settleCount(batch));
}

/** checkSettleBatch for a batch of `count` entries. */
export function checkSettleCount(count: number): void {
  if (count > SETTLE_ENTRIES_MAX) {
    throw new FerryError('INVALID_ARGUMENT', `a request settles at most ${SETTLE_ENTRIES_MAX} messages`);
  }
}

/** Resolves with the entries that failed (empty: all applied); never rejects. */
export function applySettles(subscription: Subscription, batch: SettleBatch, logger: Logger): Promise<SettleFailureInit[]> {
  const failures: SettleFailureInit[] = [];
  const pending: Promise<void>[] = [];
  const run = (action: SettleAction, partition: number, offsetValue: bigint, apply: (offset: number) => Promise<void> | void): void => {
    const fail = (error: unknown): void => {
      failures.push(settleFailure(action, partition, offsetValue, error, logger));
    };
    try {
      const result = apply(toSafeNumber(offsetValue, 'offset'));
      if (result !== undefined) pending.push(result.catch(fail));
    } catch (error) {
      fail(error);
    }
  };
  for (const { partition, offset } of batch.acks) {
    run(SettleAction.ACK, partition, offset, (at) => subscription.ack(partition, at));
  }
  for (const { partition, offset, delayMs } of batch.nacks) {
    run(SettleAction.NACK, partition, offset, (at) => subscription.nack(partition, at, delayMs === undefined ? {} : { delayMs }));
  }
  for (const { partition, offset, reason } of batch.rejects) {
    run(SettleAction.REJECT, partition, offset, (at) => {
      if (subscription.reject === undefined) throw new FerryError('INVALID_ARGUMENT', 'a stream subscription has nothing to reject (use a group)');
      return subscription.reject(partition, at, reason.length <= REJECT_REASON_CHARS_MAX ? reason : reason.slice(0, REJECT_REASON_CHARS_MAX));
    });
  }
  for (const { partition, offset } of batch.touches) {
    // Streams have no ack timeout: touching is a no-op there, as on the TCP protocol.
    run(SettleAction.TOUCH, partition, offset, (at) => subscription.touch?.(partition, at));
  }
  if (pending.length === 0) return Promise.resolve(failures);
  return Promise.all(pending).then(() => failures);
}

/**
 * applySettles for a request of acks only (ack-request-codec.ts): the same outcome, with one
 * reaction per distinct promise instead of one per ack — a group journals the acks of a turn as
 * one record and answers them with one promise, so a run of acks that share it fails or succeeds
 * together (the TCP port's settle.ts does the same).
 */
export function applyAcks(subscription: Subscription, partitions: readonly number[], offsets: readonly number[], logger: Logger): Promise<SettleFailureInit[]> {
  const failures: SettleFailureInit[] = [];
  const pending: Promise<void>[] = [];
  const fail = (index: number, error: unknown): void => {
    failures.push(settleFailure(SettleAction.ACK, partitions[index]!, BigInt(offsets[index]!), error, logger));
  };
  const watch = (shared: Promise<void>, start: number, end: number): void => {
    pending.push(
      shared.catch((error: unknown) => {
        for (let i = start; i < end; i++) fail(i, error);
      }),
    );
  };
  let run: Promise<void> | null = null;
  let runStart = 0;
  for (let i = 0; i < partitions.length; i++) {
    let settled: Promise<void>;
    try {
      settled = subscription.ack(partitions[i]!, offsets[i]!);
    } catch (error) {
      if (run !== null) watch(run, runStart, i);
      run = null;
      fail(i, error);
      continue;
    }
    if (settled === run) continue;
    if (run !== null) watch(run, runStart, i);
    run = settled;
    runStart = i;
  }
  if (run !== null) watch(run, runStart, partitions.length);
  if (pending.length === 0) return Promise.resolve(failures);
  if (pending.length === 1) return pending[0]!.then(() => failures);
  return Promise.all(pending).then(() => failures);
}

function settleFailure(action: SettleAction, partition: number, offset: bigint, error: unknown, logger: Logger): SettleFailureInit {
  let ferry: FerryError;
  if (isFerryError(error)) {
    ferry = error;
  } else {
    logger.error('grpc.settle_failed', { action: SettleAction[action], partition, offset: String(offset), error });
    ferry = new FerryError('INTERNAL', 'internal error');
  }
  return { action, partition, offset, error: errorDetail(ferry), statusCode: statusForFerryCode(ferry.code), message: ferry.message };
}
