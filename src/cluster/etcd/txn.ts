/**
 * Transactions: the comparisons and operations callers write, and their gateway JSON. A compare names
 * one field of one key: `{ key, modRevision: 7 }` ("unchanged since revision 7"), `{ key,
 * createRevision: 0 }` ("absent"), `{ key, version: 1 }`, `{ key, value: 'x' }`; `op` defaults to "==".
 */
import { EtcdError } from './errors.js';
import {
  badResponse,
  decodeHeader,
  decodeKeyValues,
  encodeBytes,
  int,
  prefixRangeEnd,
  type JsonTxnResponse,
  type KeyValue,
  type LeaseId,
} from './wire.js';

export type CompareOp = '==' | '!=' | '<' | '>';

export type Compare = { key: string; op?: CompareOp } & (
  | { modRevision: number }
  | { createRevision: number }
  | { version: number }
  | { value: string | Uint8Array }
  | { lease: LeaseId }
);

export type TxnOp =
  | { put: string; value: string | Uint8Array; lease?: LeaseId }
  | { get: string; prefix?: boolean }
  | { delete: string; prefix?: boolean };

export type TxnResponse =
  | { type: 'put'; revision: number }
  | { type: 'get'; kvs: KeyValue[] }
  | { type: 'delete'; deleted: number };

export interface TxnResult {
  /** Every comparison held, so the `success` operations ran (else the `failure` ones). */
  succeeded: boolean;
  /** One per operation that ran, in order. */
  responses: TxnResponse[];
  /** The store's revision after the transaction (unchanged if nothing was written). */
  revision: number;
}

const RESULTS: Record<CompareOp, string> = { '==': 'EQUAL', '!=': 'NOT_EQUAL', '<': 'LESS', '>': 'GREATER' };

function revisionField(value: number, field: string): string {
  if (!Number.isSafeInteger(value) || value < 0) throw new EtcdError('ETCD_REJECTED', `compare: ${field} must be an integer >= 0, got ${value}`);
  return String(value);
}

export function compareToJson(compare: Compare): Record<string, string> {
  const op = compare.op ?? '==';
  const result = RESULTS[op];
  if (result === undefined) throw new EtcdError('ETCD_REJECTED', `compare: unknown op ${JSON.stringify(op)}`);
  const base = { key: encodeBytes(compare.key), result };
  if ('modRevision' in compare) return { ...base, target: 'MOD', mod_revision: revisionField(compare.modRevision, 'modRevision') };
  if ('createRevision' in compare) return { ...base, target: 'CREATE', create_revision: revisionField(compare.createRevision, 'createRevision') };
  if ('version' in compare) return { ...base, target: 'VERSION', version: revisionField(compare.version, 'version') };
  if ('value' in compare) return { ...base, target: 'VALUE', value: encodeBytes(compare.value) };
  if ('lease' in compare) return { ...base, target: 'LEASE', lease: compare.lease };
  throw new EtcdError('ETCD_REJECTED', `compare on ${(compare as { key: string }).key}: name one of modRevision, createRevision, version, value, lease`);
}

export function opToJson(op: TxnOp): Record<string, unknown> {
  if ('put' in op) {
    return { request_put: { key: encodeBytes(op.put), value: encodeBytes(op.value), ...(op.lease === undefined ? {} : { lease: op.lease }) } };
  }
  if ('get' in op) {
    return { request_range: { key: encodeBytes(op.get), ...(op.prefix === true ? { range_end: encodeBytes(prefixRangeEnd(op.get)) } : {}) } };
  }
  if ('delete' in op) {
    return { request_delete_range: { key: encodeBytes(op.delete), ...(op.prefix === true ? { range_end: encodeBytes(prefixRangeEnd(op.delete)) } : {}) } };
  }
  throw new EtcdError('ETCD_REJECTED', 'a transaction operation is one of put, get, delete');
}

export function decodeTxnResponse(answer: unknown): TxnResult {
  const txn = answer as JsonTxnResponse;
  const revision = decodeHeader(txn.header).revision;
  const responses = (txn.responses ?? []).map((response): TxnResponse => {
    if (response.response_put !== undefined) return { type: 'put', revision };
    if (response.response_range !== undefined) return { type: 'get', kvs: decodeKeyValues(response.response_range.kvs) };
    if (response.response_delete_range !== undefined) return { type: 'delete', deleted: int(response.response_delete_range.deleted, 'deleted') };
    throw badResponse(`a transaction response of an unknown kind: ${JSON.stringify(response)}`);
  });
  return { succeeded: txn.succeeded === true, responses, revision };
}
