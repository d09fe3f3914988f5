/**
 * `verifyTopic`: the topic's leader compares every replica with its own logs below the high
 * watermark, by digests, and names the first differing range per replica (docs/CLUSTERING.md,
 * "Replica digests"); a replica that differs is taken out of the in-sync set and repaired.
 */
import { FRAME_TYPES } from '../protocol/frame.js';
import { decodeTopicVerifyOk, encodeTopicVerify, type TopicVerification } from '../protocol/codec-digest.js';
import type { ClientConnection } from './connection.js';

export type { LogVerification, ReplicaVerification, TopicVerification } from '../protocol/codec-digest.js';

export function requestVerify(connection: ClientConnection, topic: string): Promise<TopicVerification> {
  return connection.request((w, id) => encodeTopicVerify(w, id, topic), FRAME_TYPES.TOPIC_VERIFY_OK, decodeTopicVerifyOk);
}
