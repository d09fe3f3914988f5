/** Topic and group configuration: the defaults, and the checks every new topic and group passes. */
import { FerryError } from '../errors.js';
import { DEFAULT_SEGMENT_BYTES, DEFAULT_SYNC_INTERVAL_MS, SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN } from '../storage/limits.js';
import { DURABILITY_MODES } from '../storage/types.js';
import { BACKOFF_DELAY_MS_MAX, BACKOFF_STEPS_MAX } from './delivery/backoff.js';
import { DEFAULT_DEDUP_WINDOW_MS } from './dedup.js';
import { NAME_BYTES_MAX } from '../protocol/limits.js';
import { ACK_TIMEOUT_MS_MAX, ACK_TIMEOUT_MS_MIN, DELIVERIES_MAX_LIMIT, PARTITIONS_MAX, REPLICAS_MAX } from './limits.js';
import { checkName } from './names.js';
import type { GroupConfig, TopicConfig } from './types.js';

export const DEFAULT_TOPIC_CONFIG: TopicConfig = {
  partitions: 1,
  durability: 'always',
  syncIntervalMs: DEFAULT_SYNC_INTERVAL_MS,
  retention: {},
  segmentBytes: DEFAULT_SEGMENT_BYTES,
  dedupWindowMs: DEFAULT_DEDUP_WINDOW_MS,
};

/** Group defaults; the dead-letter topic defaults to `<topic>.dlq`. */
export const DEFAULT_GROUP_CONFIG: Omit<GroupConfig, 'deadLetterTopic'> = {
  ackTimeoutMs: 30_000,
  backoffMs: [],
  deliveriesMax: 16,
};
export const DEAD_LETTER_SUFFIX = '.dlq';

/**
 * A new group's configuration: the defaults, the dead-letter topic `<topic>.dlq` unless the caller
 * names one, then what the caller set; every field and name checked. A default dead-letter name
 * that is too long is refused with its own message: the caller can name another.
 */
export function resolveGroupConfig(defaults: Omit<GroupConfig, 'deadLetterTopic'>, topic: string, options: Partial<GroupConfig>): GroupConfig {
  const set = stripUndefined(options);
  const derived = topic + DEAD_LETTER_SUFFIX;
  if (set.deadLetterTopic === undefined && Buffer.byteLength(derived) > NAME_BYTES_MAX) {
    throw new FerryError('INVALID_ARGUMENT', `the default dead-letter topic ${derived} would be longer than ${NAME_BYTES_MAX} bytes: name a deadLetterTopic for this group`);
  }
  return validateGroupConfig({ ...defaults, deadLetterTopic: derived, ...set });
}

/** The fields that are set: a field given as undefined takes its default. */
export function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as Partial<T>;
}

export function validateGroupConfig(config: GroupConfig): GroupConfig {
  const { ackTimeoutMs, backoffMs, deliveriesMax, deadLetterTopic } = config;
  if (!Number.isInteger(ackTimeoutMs) || ackTimeoutMs < ACK_TIMEOUT_MS_MIN || ackTimeoutMs > ACK_TIMEOUT_MS_MAX) {
    throw new FerryError('INVALID_ARGUMENT', `ackTimeoutMs must be an integer from ${ACK_TIMEOUT_MS_MIN} to ${ACK_TIMEOUT_MS_MAX}`);
  }
  if (!Array.isArray(backoffMs) || backoffMs.length > BACKOFF_STEPS_MAX) {
    throw new FerryError('INVALID_ARGUMENT', `backoffMs must be a list of at most ${BACKOFF_STEPS_MAX} delays`);
  }
  for (const delay of backoffMs) {
    if (!Number.isInteger(delay) || delay < 0 || delay > BACKOFF_DELAY_MS_MAX) {
      throw new FerryError('INVALID_ARGUMENT', `each backoffMs delay must be an integer from 0 to ${BACKOFF_DELAY_MS_MAX}`);
    }
  }
  if (!Number.isInteger(deliveriesMax) || deliveriesMax < 1 || deliveriesMax > DELIVERIES_MAX_LIMIT) {
    throw new FerryError('INVALID_ARGUMENT', `deliveriesMax must be an integer from 1 to ${DELIVERIES_MAX_LIMIT}`);
  }
  checkName('dead-letter topic', deadLetterTopic);
  return { ackTimeoutMs, backoffMs: [...backoffMs], deliveriesMax, deadLetterTopic };
}

export function validateTopicConfig(config: TopicConfig): TopicConfig {
  const { partitions, durability, syncIntervalMs, segmentBytes, retention } = config;
  const dedupWindowMs = config.dedupWindowMs ?? DEFAULT_DEDUP_WINDOW_MS;
  if (!Number.isInteger(dedupWindowMs) || dedupWindowMs < 0) {
    throw new FerryError('INVALID_ARGUMENT', 'dedupWindowMs must be a non-negative integer');
  }
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > PARTITIONS_MAX) {
    throw new FerryError('INVALID_ARGUMENT', `partitions must be an integer from 1 to ${PARTITIONS_MAX}`);
  }
  if (!(DURABILITY_MODES as readonly string[]).includes(durability)) {
    throw new FerryError('INVALID_ARGUMENT', `durability must be one of ${DURABILITY_MODES.join(', ')}`);
  }
  if (!Number.isInteger(syncIntervalMs) || syncIntervalMs < 1) {
    throw new FerryError('INVALID_ARGUMENT', 'syncIntervalMs must be a positive integer');
  }
  if (!Number.isInteger(segmentBytes) || segmentBytes < SEGMENT_BYTES_MIN || segmentBytes > SEGMENT_BYTES_MAX) {
    throw new FerryError('INVALID_ARGUMENT', `segmentBytes must be from ${SEGMENT_BYTES_MIN} to ${SEGMENT_BYTES_MAX}`);
  }
  for (const field of ['ageMs', 'bytesMax', 'recordsMax'] as const) {
    const limit = retention?.[field];
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
      throw new FerryError('INVALID_ARGUMENT', `retention.${field} must be a non-negative integer`);
    }
  }
  const replicas = config.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > REPLICAS_MAX) {
    throw new FerryError('INVALID_ARGUMENT', `replicas must be an integer from 1 to ${REPLICAS_MAX}`);
  }
  const minInSync = config.minInSync ?? Math.min(2, replicas);
  if (!Number.isInteger(minInSync) || minInSync < 1 || minInSync > replicas) {
    throw new FerryError('INVALID_ARGUMENT', `minInSync must be an integer from 1 to replicas (${replicas})`);
  }
  return { partitions, durability, syncIntervalMs, segmentBytes, retention: { ...retention }, dedupWindowMs, replicas, minInSync };
}
