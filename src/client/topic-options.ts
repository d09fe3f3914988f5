/** The settings of a new topic as the client takes them, checked before they are sent. */
import { FerryError } from '../errors.js';
import type { WireDurability, WireRetention, WireTopicConfig } from '../protocol/messages.js';

export interface TopicOptions {
  partitions?: number;
  durability?: WireDurability;
  syncIntervalMs?: number;
  retention?: WireRetention;
  segmentBytes?: number;
  /** How long the broker remembers a message id (exactly-once publish); default 2 minutes. */
  dedupWindowMs?: number;
  /** Cluster mode: brokers holding a copy of the topic (default 1). More than the live brokers is NOT_ENOUGH_REPLICAS. */
  replicas?: number;
  /** Cluster mode: replicas that must be in sync for a publish to be confirmed. */
  minInSync?: number;
}

/** Replicas (and minInSync) at most: CREATE_TOPIC carries each as a u8. */
export const REPLICAS_MAX = 255;

function checkCount(name: string, value: number | undefined): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < 1 || value > REPLICAS_MAX) {
    throw new FerryError('INVALID_ARGUMENT', `${name} must be an integer from 1 to ${REPLICAS_MAX}, got ${String(value)}`);
  }
}

/** CREATE_TOPIC's settings for `options`; replicas and minInSync are checked here, the rest by the broker. */
export function topicConfig(options: TopicOptions): Partial<WireTopicConfig> {
  checkCount('replicas', options.replicas);
  checkCount('minInSync', options.minInSync);
  if (options.replicas !== undefined && options.minInSync !== undefined && options.minInSync > options.replicas) {
    throw new FerryError('INVALID_ARGUMENT', `minInSync (${options.minInSync}) cannot exceed replicas (${options.replicas})`);
  }
  return { ...options };
}
