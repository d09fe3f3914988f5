/**
 * The frame: the unit both peers exchange. Every frame is a fixed 14-byte big-endian header and a
 * payload whose layout depends on the frame type (codec-*.ts). docs/PROTOCOL.md documents every
 * byte; test/protocol/protocol-doc.test.ts keeps the document and FRAME_TYPES in step.
 * The rest: docs/INTERNALS.md.
 */
import type { FerryError } from '../errors.js';
import { FRAME_HEADER_BYTES } from './limits.js';

export const FRAME_MAGIC = 0xfe77;

export const HEADER_OFFSETS = {
  magic: 0,
  version: 2,
  type: 3,
  flags: 4,
  reserved: 5,
  requestId: 6,
  payloadLength: 10,
} as const;

/** Frame type numbers are a wire contract: never renumber, only add. */
export const FRAME_TYPES = {
  // Session
  HELLO: 0x01,
  HELLO_OK: 0x02,
  PING: 0x03,
  PONG: 0x04,
  GOODBYE: 0x05,
  ERROR: 0x06,
  OK: 0x07,
  // Topics
  CREATE_TOPIC: 0x10,
  DELETE_TOPIC: 0x11,
  LIST_TOPICS: 0x12,
  DESCRIBE_TOPIC: 0x13,
  TOPIC_INFO: 0x14,
  TOPIC_LIST: 0x15,
  // Producing
  PUBLISH: 0x20,
  PUBLISH_OK: 0x21,
  // Consuming
  SUBSCRIBE: 0x30,
  SUBSCRIBED: 0x31,
  DELIVER: 0x32,
  ACK: 0x33,
  NACK: 0x34,
  CREDIT: 0x35,
  UNSUBSCRIBE: 0x36,
  REJECT: 0x37,
  TOUCH: 0x38,
  SETTLED: 0x39,
  // Queue groups and dead letters
  LIST_GROUPS: 0x40,
  DESCRIBE_GROUP: 0x41,
  RESET_GROUP: 0x42,
  REDRIVE: 0x43,
  GROUP_INFO: 0x44,
  GROUP_LIST: 0x45,
  REDRIVE_OK: 0x46,
  // Replication between brokers (docs/CLUSTERING.md)
  REPLICA_FETCH: 0x50,
  REPLICA_FETCH_OK: 0x51,
  EPOCH_END: 0x52,
  EPOCH_END_OK: 0x53,
  REPLICA_PROGRESS: 0x54,
  REPLICA_DIGEST: 0x55,
  REPLICA_DIGEST_OK: 0x56,
  REPLICA_REPAIR: 0x57,
  CATCH_UP_READ: 0x58,
  CATCH_UP_READ_OK: 0x59,
  // Cluster metadata: where each topic's leader is
  METADATA: 0x60,
  METADATA_OK: 0x61,
  // Moving replicas between brokers (operators)
  CLUSTER_CHANGE: 0x68,
  CLUSTER_CHANGE_OK: 0x69,
  // Comparing a topic's replicas (operators)
  TOPIC_VERIFY: 0x6a,
  TOPIC_VERIFY_OK: 0x6b,
} as const;

export type FrameTypeName = keyof typeof FRAME_TYPES;
export type FrameType = (typeof FRAME_TYPES)[FrameTypeName];

const NAME_BY_TYPE: (FrameTypeName | undefined)[] = new Array(256).fill(undefined);
for (const name of Object.keys(FRAME_TYPES) as FrameTypeName[]) NAME_BY_TYPE[FRAME_TYPES[name]] = name;

export function isFrameType(type: number): type is FrameType {
  return NAME_BY_TYPE[type] !== undefined;
}

export function frameTypeName(type: number): string {
  return NAME_BY_TYPE[type] ?? `0x${type.toString(16).padStart(2, '0')}`;
}

/** A decoded frame. `payload` is a view into the received bytes: copy it to keep it past the handler call. */
export interface Frame {
  version: number;
  type: FrameType;
  flags: number;
  requestId: number;
  payload: Buffer;
  /** Set when the receiver refused the frame at its header (FrameHandler.admit): the payload was skipped, not kept. */
  refused?: FerryError;
}

/** Writes a header at `offset` of `target`. */
export function writeFrameHeader(
  target: Buffer,
  offset: number,
  version: number,
  type: number,
  flags: number,
  requestId: number,
  payloadLength: number,
): void {
  target.writeUInt16BE(FRAME_MAGIC, offset);
  target[offset + HEADER_OFFSETS.version] = version;
  target[offset + HEADER_OFFSETS.type] = type;
  target[offset + HEADER_OFFSETS.flags] = flags;
  target[offset + HEADER_OFFSETS.reserved] = 0;
  target.writeUInt32BE(requestId, offset + HEADER_OFFSETS.requestId);
  target.writeUInt32BE(payloadLength, offset + HEADER_OFFSETS.payloadLength);
}

export { FRAME_HEADER_BYTES };
