/**
 * PUBLISH on a connection: consecutive PUBLISH frames for one topic become one broker.publish call
 * (one storage batch), and each frame gets its own PUBLISH_OK from the results.
 */
import type { PublishMessage, PublishResult } from '../../broker/types.js';
import { FerryError, isFerryError } from '../../errors.js';
import { required } from '../../broker/forwarding.js';
import { decodePublish, encodePublishOkFrom } from '../../protocol/codec-publish.js';
import { FRAME_TYPES, type Frame } from '../../protocol/frame.js';
import { PublishScanner } from '../../protocol/publish-scan.js';
import { ADMISSION_CEILINGS, PUBLISH_VALIDATION_CODES } from '../../broker/limits.js';
import type { RequestContext } from './request-context.js';

/** Messages merged into one broker.publish call from consecutive PUBLISH frames: one storage batch's worth. */
const COALESCE_MESSAGES_MAX = 10_000;

/**
 * A PUBLISH frame larger than this is scanned as it arrives (protocol/publish-scan.ts): it could
 * hold a message over the record limit, which is then refused at its length field, its bytes
 * dropped as they arrive instead of assembled only to be refused. A smaller frame cannot hold one.
 */
const PUBLISH_SCANNED_BYTES_MIN = ADMISSION_CEILINGS.recordBytesMax;

/**
 * A PUBLISH refused part-way by its scanner (a message past the limits) with more than this of its
 * frame still to come closes the connection once the ERROR is flushed, its rest left unread: reading
 * up to 16 MiB only to drop it costs the broker's thread as much as a publish of that size (socket
 * reads, their buffers, their garbage) and an attacker can repeat it at no cost of its own. A
 * smaller rest is skipped as it arrives and the connection kept.
 */
export const REFUSED_REST_READ_BYTES_MAX = 1024 * 1024;

/** Does a refused PUBLISH with `restBytes` of its frame still to come close its connection (REFUSED_REST_READ_BYTES_MAX)? */
export function closesUnread(refusal: FerryError, restBytes: number): boolean {
  // A retryable refusal (RATE_LIMITED at the header) is skipped whatever its size: the client is to try again on this connection.
  return !refusal.retryable && restBytes > REFUSED_REST_READ_BYTES_MAX;
}

/** The scanner of a PUBLISH payload of `payloadBytes`, or null when it needs none. */
export function publishScanner(payloadBytes: number): PublishScanner | null {
  return payloadBytes > PUBLISH_SCANNED_BYTES_MIN ? new PublishScanner(ADMISSION_CEILINGS) : null;
}

/** Handles the run of PUBLISH frames starting at `start`; returns the index after it. */
export function handlePublishRun(context: RequestContext, frames: Frame[], start: number): number {
  let topic: string | null = null;
  let asBroker = false;
  let requestIds: number[] = [];
  let counts: number[] = [];
  let messages: PublishMessage[] = [];
  let shared = false;
  let i = start;
  for (; i < frames.length && frames[i]!.type === FRAME_TYPES.PUBLISH && frames[i]!.refused === undefined; i++) {
    const frame = frames[i]!;
    let request;
    try {
      request = decodePublish(context.reader.reset(frame.payload));
    } catch (error) {
      if (topic !== null) publish(context, topic, requestIds, counts, messages, asBroker);
      context.requestFailed(frame.requestId, error);
      return frames.length;
    }
    const requestAsBroker = request.asBroker === true;
    if (topic !== null && (request.topic !== topic || requestAsBroker !== asBroker || messages.length + request.messages.length > COALESCE_MESSAGES_MAX)) {
      publish(context, topic, requestIds, counts, messages, asBroker);
      requestIds = [];
      counts = [];
      topic = null;
    }
    if (topic === null) {
      topic = request.topic;
      asBroker = requestAsBroker;
      messages = request.messages;
      shared = true;
    } else {
      if (shared) {
        messages = messages.slice();
        shared = false;
      }
      for (const message of request.messages) messages.push(message);
    }
    requestIds.push(frame.requestId);
    counts.push(request.messages.length);
  }
  if (topic !== null) publish(context, topic, requestIds, counts, messages, asBroker);
  return i;
}

function publish(context: RequestContext, topic: string, requestIds: number[], counts: number[], messages: PublishMessage[], asBroker: boolean): void {
  context.requestsStarted(requestIds.length);
  let pending: Promise<PublishResult[]>;
  try {
    pending = asBroker ? required(context.broker, 'publishAsBroker')(topic, messages) : context.broker.publish(topic, messages);
  } catch (error) {
    pending = Promise.reject(error);
  }
  pending.then(
    (results) => published(context, requestIds, counts, results),
    (error: unknown) => publishFailed(context, topic, requestIds, counts, messages, asBroker, error),
  );
}

function published(context: RequestContext, requestIds: number[], counts: number[], results: PublishResult[]): void {
  context.requestsFinished(requestIds.length);
  if (context.closed) return;
  let start = 0;
  for (let i = 0; i < requestIds.length; i++) {
    const count = counts[i]!;
    if (start + count > results.length) {
      context.requestFailed(requestIds[i]!, new FerryError('INTERNAL', 'the broker returned fewer results than messages'));
    } else {
      encodePublishOkFrom(context.writer, requestIds[i]!, results, start, count);
    }
    start += count;
  }
  context.replied();
}

function publishFailed(context: RequestContext, topic: string, requestIds: number[], counts: number[], messages: PublishMessage[], asBroker: boolean, error: unknown): void {
  context.requestsFinished(requestIds.length);
  if (context.closed) return;
  if (requestIds.length > 1 && isFerryError(error) && PUBLISH_VALIDATION_CODES.has(error.code)) {
    // One request's message spoiled a coalesced call that wrote nothing: retry each request alone
    // so that only the offending request fails.
    let start = 0;
    for (let i = 0; i < requestIds.length; i++) {
      publish(context, topic, [requestIds[i]!], [counts[i]!], messages.slice(start, start + counts[i]!), asBroker);
      start += counts[i]!;
    }
    return;
  }
  for (const id of requestIds) context.requestFailed(id, error);
}
