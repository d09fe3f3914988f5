/**
 * Queue-group administration and dead letters over one connection: list, describe and reset
 * groups, and redrive a dead-letter topic. The client (client.ts) exposes these as methods.
 */
import { FerryError } from '../errors.js';
import { FRAME_TYPES } from '../protocol/frame.js';
import {
  decodeGroupInfo,
  decodeGroupList,
  decodeRedriveOk,
  encodeDescribeGroup,
  encodeListGroups,
  encodeRedrive,
  encodeResetGroup,
} from '../protocol/codec-groups.js';
import type { RedriveRequest, WireGroupInfo, WireStartPosition } from '../protocol/messages.js';
import type { ClientConnection } from './connection.js';

export type GroupInfo = WireGroupInfo;

export interface RedriveOptions {
  /** Move at most this many dead letters (default: all). */
  limit?: number;
  /** Only dead-letter-topic offsets in [fromOffset, toOffset). */
  fromOffset?: number;
  toOffset?: number;
  /** Only dead letters carrying this header with this value, e.g. ['ferry-dlq-reason', 'bad input']. */
  header?: readonly [name: string, value: string];
}

export interface RedriveResult {
  moved: number;
}

/**
 * Dead letters moved per REDRIVE request. The broker republishes them one by one, each confirmed
 * per the source topic's durability, so a large redrive is split into requests that each finish
 * well within the request timeout; the dead-letter topic remembers what was moved, so each
 * request continues where the previous one stopped.
 */
export const REDRIVE_CHUNK_MESSAGES = 1000;

export function listGroups(connection: ClientConnection, topic: string): Promise<GroupInfo[]> {
  return connection.request((w, id) => encodeListGroups(w, id, topic), FRAME_TYPES.GROUP_LIST, decodeGroupList);
}

export function describeGroup(connection: ClientConnection, topic: string, group: string): Promise<GroupInfo> {
  return connection.request((w, id) => encodeDescribeGroup(w, id, { topic, group }), FRAME_TYPES.GROUP_INFO, decodeGroupInfo);
}

export function resetGroup(connection: ClientConnection, topic: string, group: string, to: WireStartPosition): Promise<GroupInfo> {
  return connection.request((w, id) => encodeResetGroup(w, id, { topic, group, to }), FRAME_TYPES.GROUP_INFO, decodeGroupInfo);
}

/** One REDRIVE request (at most `request.limit` messages). */
export function redriveOnce(connection: ClientConnection, request: RedriveRequest): Promise<RedriveResult> {
  return connection.request((w, id) => encodeRedrive(w, id, request), FRAME_TYPES.REDRIVE_OK, decodeRedriveOk);
}

/** Checks redrive options and turns them into the request of one chunk (without its limit). */
export function redriveRequest(topic: string, options: RedriveOptions): RedriveRequest {
  const request: RedriveRequest = { topic };
  for (const field of ['fromOffset', 'toOffset'] as const) {
    const value = options[field];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value < 0) throw new FerryError('INVALID_ARGUMENT', `${field} must be a non-negative integer, got ${value}`);
    request[field] = value;
  }
  if (options.header !== undefined) {
    const [name, value] = options.header;
    if (typeof name !== 'string' || typeof value !== 'string') throw new FerryError('INVALID_ARGUMENT', 'header must be [name, value] strings');
    request.header = [name, value];
  }
  return request;
}

export function checkRedriveLimit(limit: number | undefined): number {
  if (limit === undefined) return Number.POSITIVE_INFINITY;
  if (!Number.isSafeInteger(limit) || limit < 0) throw new FerryError('INVALID_ARGUMENT', `limit must be a non-negative integer, got ${limit}`);
  return limit;
}
