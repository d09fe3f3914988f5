/**
 * A small etcd v3 client over etcd's JSON gateway (`/v3/...`, served by etcd 3.4 and later) with
 * Node's own HTTP: keys, values, compare-and-swap transactions, leases, watches. Keys and values are
 * base64 on the gateway; here keys are strings and values strings or bytes.
 */
import assert from 'node:assert/strict';
import { SystemClock, type Clock } from '../../platform/clock.js';
import { silentLogger, type Logger } from '../../platform/logger.js';
import { Caller, type EtcdHealth } from './caller.js';
import { EtcdConnector, type EtcdTlsOptions } from './connector.js';
import { EtcdError } from './errors.js';
import { parseEndpoint } from './endpoint.js';
import { CALL_TIMEOUT_MS_DEFAULT, LEASE_TTL_SEC_MAX, LEASE_TTL_SEC_MIN, RANGE_PAGE_KEYS } from './limits.js';
import { compareToJson, decodeTxnResponse, opToJson, type Compare, type TxnOp, type TxnResult } from './txn.js';
import { Watch, type WatchListener, type WatchOptions } from './watch.js';
import {
  decodeHeader,
  decodeKeyValues,
  encodeBytes,
  int,
  int64String,
  prefixRangeEnd,
  type JsonDeleteResponse,
  type JsonLeaseResponse,
  type JsonPutResponse,
  type JsonRangeResponse,
  type KeyValue,
  type LeaseId,
} from './wire.js';

export interface EtcdClientOptions {
  /** `http://host:port` or `https://host:port` of each member; tried in turn when one cannot be reached. */
  endpoints: readonly string[];
  /** For `https://` endpoints: the CA to trust (default: the system's) and a client certificate for etcd's `--client-cert-auth`. */
  tls?: EtcdTlsOptions;
  /** Bound of one call, every endpoint tried included. */
  timeoutMs?: number;
  logger?: Logger;
  clock?: Clock;
}

/** Per-call override of the client's timeout. */
export interface CallTimeout {
  timeoutMs?: number;
}

export interface GetResult {
  kv: KeyValue | undefined;
  /** The store's revision the read saw. */
  revision: number;
}

export interface RangeResult {
  kvs: KeyValue[];
  revision: number;
}

export interface Lease {
  id: LeaseId;
  ttlSec: number;
  /** Monotonic time the grant was sent: etcd cannot expire the lease before this plus the TTL. */
  sentAtMs: number;
}

export class EtcdClient {
  readonly timeoutMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
  private readonly caller: Caller;
  private readonly watches = new Set<Watch>();
  private closed = false;

  constructor(options: EtcdClientOptions) {
    if (options.endpoints.length === 0) throw new EtcdError('ETCD_REJECTED', 'the etcd client needs at least one endpoint');
    this.timeoutMs = options.timeoutMs ?? CALL_TIMEOUT_MS_DEFAULT;
    assert.ok(this.timeoutMs > 0, 'the call timeout is positive');
    this.clock = options.clock ?? new SystemClock();
    this.logger = options.logger ?? silentLogger;
    const endpoints = options.endpoints.map(parseEndpoint);
    if (options.tls !== undefined && !endpoints.some((endpoint) => endpoint.secure)) {
      throw new EtcdError('ETCD_REJECTED', 'etcd TLS options were given, but no endpoint is https://');
    }
    this.caller = new Caller(endpoints, new EtcdConnector(options.tls), this.clock, this.logger);
  }

  /**
   * New TLS options (a renewed CA or client certificate) for the connections opened from now on;
   * calls and watch streams in progress keep theirs. ETCD_REJECTED, the old ones kept, when they
   * do not make a usable TLS context.
   */
  setTls(tls: EtcdTlsOptions): void {
    this.caller.connector.setTls(tls);
  }

  /** Whether the last call reached etcd (for the `ferry_cluster_etcd_up` gauge and /readyz). */
  get etcdUp(): boolean {
    return this.caller.health.up;
  }

  get health(): EtcdHealth {
    return this.caller.health;
  }

  /** The key now, or as it was at `options.revision` (ETCD_COMPACTED when that is too old). */
  async get(key: string, options: CallTimeout & { revision?: number } = {}): Promise<GetResult> {
    const request = { key: encodeBytes(key), ...(options.revision === undefined ? {} : { revision: String(options.revision) }) };
    const answer = (await this.read('/v3/kv/range', request, options)) as JsonRangeResponse;
    const kvs = decodeKeyValues(answer.kvs);
    return { kv: kvs[0], revision: decodeHeader(answer.header).revision };
  }

  /**
   * Every key starting with `prefix`, in key order, as one snapshot: pages after the first are read
   * at the first page's revision.
   */
  async getPrefix(prefix: string, options: CallTimeout = {}): Promise<RangeResult> {
    const rangeEnd = encodeBytes(prefixRangeEnd(prefix));
    const kvs: KeyValue[] = [];
    let from = encodeBytes(prefix);
    let revision = 0;
    for (;;) {
      const request = { key: from, range_end: rangeEnd, limit: String(RANGE_PAGE_KEYS), ...(revision === 0 ? {} : { revision: String(revision) }) };
      const answer = (await this.read('/v3/kv/range', request, options)) as JsonRangeResponse;
      if (revision === 0) revision = decodeHeader(answer.header).revision;
      const page = decodeKeyValues(answer.kvs);
      kvs.push(...page);
      if (answer.more !== true || page.length === 0) return { kvs, revision };
      // The next page starts just after the last key: the key with a zero byte appended.
      from = encodeBytes(Buffer.concat([Buffer.from(page[page.length - 1]!.key, 'utf8'), Buffer.from([0])]));
    }
  }

  /** Writes `value` under `key` (attached to `lease` if given); resolves with the new revision. */
  async put(key: string, value: string | Uint8Array, options: CallTimeout & { lease?: LeaseId } = {}): Promise<{ revision: number }> {
    const request = { key: encodeBytes(key), value: encodeBytes(value), ...(options.lease === undefined ? {} : { lease: options.lease }) };
    const answer = (await this.write('/v3/kv/put', request, options)) as JsonPutResponse;
    return { revision: decodeHeader(answer.header).revision };
  }

  /** Deletes `key` (every key under it with `prefix: true`); resolves with how many were deleted. */
  async delete(key: string, options: CallTimeout & { prefix?: boolean } = {}): Promise<{ deleted: number; revision: number }> {
    const request = { key: encodeBytes(key), ...(options.prefix === true ? { range_end: encodeBytes(prefixRangeEnd(key)) } : {}) };
    const answer = (await this.write('/v3/kv/deleterange', request, options)) as JsonDeleteResponse;
    return { deleted: int(answer.deleted, 'deleted'), revision: decodeHeader(answer.header).revision };
  }

  /**
   * One atomic transaction: if every comparison holds, the `success` operations run, else the
   * `failure` ones. `{ key, modRevision: n }` is "unchanged since revision n", `{ key,
   * createRevision: 0 }` is "absent".
   */
  async txn(request: { compare: readonly Compare[]; success?: readonly TxnOp[]; failure?: readonly TxnOp[] }, options: CallTimeout = {}): Promise<TxnResult> {
    const body = {
      compare: request.compare.map(compareToJson),
      success: (request.success ?? []).map(opToJson),
      failure: (request.failure ?? []).map(opToJson),
    };
    return decodeTxnResponse(await this.write('/v3/kv/txn', body, options));
  }

  /** Drops the history below `revision` (watches and reads at older revisions then fail). */
  async compact(revision: number, options: CallTimeout = {}): Promise<void> {
    await this.write('/v3/kv/compaction', { revision: String(revision), physical: true }, options);
  }

  async grantLease(ttlSec: number, options: CallTimeout = {}): Promise<Lease> {
    if (!Number.isInteger(ttlSec) || ttlSec < LEASE_TTL_SEC_MIN || ttlSec > LEASE_TTL_SEC_MAX) {
      throw new EtcdError('ETCD_REJECTED', `lease TTL must be an integer from ${LEASE_TTL_SEC_MIN} to ${LEASE_TTL_SEC_MAX} s, got ${ttlSec}`);
    }
    const sentAtMs = this.clock.monotonicMs();
    const answer = (await this.write('/v3/lease/grant', { TTL: String(ttlSec) }, options)) as JsonLeaseResponse;
    if (answer.error !== undefined && answer.error !== '') throw new EtcdError('ETCD_REJECTED', `etcd refused the lease: ${answer.error}`);
    return { id: int64String(answer.ID, 'ID'), ttlSec: int(answer.TTL, 'TTL'), sentAtMs };
  }

  /**
   * Renews the lease once; resolves with its TTL in seconds. A lease that no longer exists is
   * ETCD_LEASE_NOT_FOUND.
   */
  async keepAlive(id: LeaseId, options: CallTimeout = {}): Promise<{ ttlSec: number }> {
    const answer = (await this.read('/v3/lease/keepalive', { ID: id }, options)) as JsonLeaseResponse;
    const ttlSec = int(answer.TTL, 'TTL');
    if (ttlSec <= 0) throw new EtcdError('ETCD_LEASE_NOT_FOUND', `etcd: lease ${id} not found (expired or revoked)`);
    return { ttlSec };
  }

  /** The lease's remaining TTL in seconds, or undefined when it no longer exists. */
  async leaseTimeToLive(id: LeaseId, options: CallTimeout = {}): Promise<number | undefined> {
    const answer = (await this.read('/v3/lease/timetolive', { ID: id }, options)) as JsonLeaseResponse;
    const ttlSec = int(answer.TTL, 'TTL');
    return ttlSec < 0 ? undefined : ttlSec;
  }

  /**
   * Revokes the lease, deleting its keys; resolves false when it no longer existed. Sent again after
   * a timeout like a read: revoking twice is harmless (the second finds no lease).
   */
  async revokeLease(id: LeaseId, options: CallTimeout = {}): Promise<boolean> {
    try {
      await this.read('/v3/lease/revoke', { ID: id }, options);
      return true;
    } catch (error) {
      if (error instanceof EtcdError && error.code === 'ETCD_LEASE_NOT_FOUND') return false;
      throw error;
    }
  }

  /**
   * Watches every key under `prefix` from `options.fromRevision` (default: changes after now); the
   * listener gets the events of each revision in order, exactly once, across reconnects.
   */
  watchPrefix(prefix: string, options: WatchOptions, listener: WatchListener): Watch {
    if (this.closed) throw new EtcdError('ETCD_CLOSED', 'the etcd client is closed');
    const watch = new Watch(this.caller, prefix, options, listener, this.clock, this.logger, () => this.watches.delete(watch));
    this.watches.add(watch);
    return watch;
  }

  /** Stops every watch and fails calls in flight with ETCD_CLOSED. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.watches].map((watch) => watch.close()));
    this.caller.close();
  }

  private read(path: string, body: unknown, options: CallTimeout): Promise<unknown> {
    return this.caller.call(path, body, { idempotent: true, timeoutMs: options.timeoutMs ?? this.timeoutMs });
  }

  private write(path: string, body: unknown, options: CallTimeout): Promise<unknown> {
    return this.caller.call(path, body, { idempotent: false, timeoutMs: options.timeoutMs ?? this.timeoutMs });
  }
}
