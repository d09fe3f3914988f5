/**
 * What etcd's JSON gateway sends and expects, and its translation to the client's types. The gateway
 * is the protobuf JSON mapping with etcd's original field names: keys and values are base64, 64-bit
 * integers are decimal strings, and fields at their default (0, false, empty) are left out.
 */
import { EtcdError } from './errors.js';

/** A lease id: etcd's int64, kept as its decimal string (ids use all 64 bits, beyond a JS number). */
export type LeaseId = string;

/** Lease id 0: "no lease". */
const NO_LEASE: LeaseId = '0';

export interface KeyValue {
  key: string;
  /** The value as UTF-8 text. */
  value: string;
  /** The value's bytes, for values that are not text. */
  valueBytes: Buffer;
  /** Revision of the key's creation (since its last delete); 0 in a compare means "absent". */
  createRevision: number;
  /** Revision of the key's last change. */
  modRevision: number;
  /** Changes since creation: 1 after the first put. */
  version: number;
  /** The lease the key is attached to, if any. */
  lease: LeaseId | undefined;
}

export interface ResponseHeader {
  /** The store's revision when etcd served the request. */
  revision: number;
  memberId: string;
  raftTerm: number;
}

export interface JsonHeader {
  cluster_id?: string;
  member_id?: string;
  revision?: string;
  raft_term?: string;
}

export interface JsonKeyValue {
  key?: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
  version?: string;
  lease?: string;
}

export interface JsonRangeResponse {
  header?: JsonHeader;
  kvs?: JsonKeyValue[];
  more?: boolean;
  count?: string;
}

export interface JsonPutResponse {
  header?: JsonHeader;
}

export interface JsonDeleteResponse {
  header?: JsonHeader;
  deleted?: string;
}

export interface JsonTxnResponse {
  header?: JsonHeader;
  succeeded?: boolean;
  responses?: Array<{
    response_range?: JsonRangeResponse;
    response_put?: JsonPutResponse;
    response_delete_range?: JsonDeleteResponse;
  }>;
}

export interface JsonLeaseResponse {
  header?: JsonHeader;
  ID?: string;
  TTL?: string;
  grantedTTL?: string;
  error?: string;
}

export interface JsonWatchResponse {
  header?: JsonHeader;
  watch_id?: string;
  created?: boolean;
  canceled?: boolean;
  compact_revision?: string;
  cancel_reason?: string;
  events?: Array<{ type?: 'PUT' | 'DELETE'; kv?: JsonKeyValue }>;
}

export function encodeBytes(value: string | Uint8Array): string {
  return (typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value.buffer, value.byteOffset, value.byteLength)).toString('base64');
}

/**
 * The range end that makes a range cover every key starting with `prefix`: the prefix with its last
 * byte below 0xff incremented and what follows dropped; "\0" (every key from `prefix` on) when there
 * is no such byte (the empty prefix).
 */
export function prefixRangeEnd(prefix: string): Buffer {
  const bytes = Buffer.from(prefix, 'utf8');
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i] = bytes[i]! + 1;
      return end;
    }
  }
  return Buffer.from([0]);
}

/** A decimal int64 field as a number; absent means 0. Beyond 2^53 is refused, not rounded. */
export function int(value: unknown, field: string): number {
  if (value === undefined) return 0;
  const parsed = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(parsed)) throw badResponse(`${field} is not an integer: ${JSON.stringify(value)}`);
  return parsed;
}

/** A decimal int64 field kept as a string (lease ids). */
export function int64String(value: unknown, field: string): string {
  if (value === undefined) return '0';
  if (typeof value !== 'string' || !/^-?\d+$/.test(value)) throw badResponse(`${field} is not an integer: ${JSON.stringify(value)}`);
  return value;
}

function bytes(value: unknown, field: string): Buffer {
  if (value === undefined) return Buffer.alloc(0);
  if (typeof value !== 'string') throw badResponse(`${field} is not base64 text`);
  return Buffer.from(value, 'base64');
}

export function decodeHeader(header: JsonHeader | undefined): ResponseHeader {
  if (header === undefined || typeof header !== 'object') throw badResponse('the answer has no header');
  return {
    revision: int(header.revision, 'header.revision'),
    memberId: int64String(header.member_id, 'header.member_id'),
    raftTerm: int(header.raft_term, 'header.raft_term'),
  };
}

export function decodeKeyValue(kv: JsonKeyValue): KeyValue {
  const valueBytes = bytes(kv.value, 'kv.value');
  const lease = int64String(kv.lease, 'kv.lease');
  return {
    key: bytes(kv.key, 'kv.key').toString('utf8'),
    value: valueBytes.toString('utf8'),
    valueBytes,
    createRevision: int(kv.create_revision, 'kv.create_revision'),
    modRevision: int(kv.mod_revision, 'kv.mod_revision'),
    version: int(kv.version, 'kv.version'),
    lease: lease === NO_LEASE ? undefined : lease,
  };
}

export function decodeKeyValues(kvs: unknown): KeyValue[] {
  if (kvs === undefined) return [];
  if (!Array.isArray(kvs)) throw badResponse('kvs is not a list');
  return kvs.map((kv) => decodeKeyValue(kv as JsonKeyValue));
}

export function badResponse(message: string, endpoint?: string): EtcdError {
  return new EtcdError('ETCD_BAD_RESPONSE', `etcd answer not understood: ${message}`, endpoint === undefined ? {} : { endpoint });
}
