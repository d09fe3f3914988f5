/** The etcd v3 client of cluster mode: what the rest of the broker imports. */
export { EtcdClient, type CallTimeout, type EtcdClientOptions, type GetResult, type Lease, type RangeResult } from './client.js';
export type { EtcdHealth } from './caller.js';
export type { EtcdTlsOptions } from './connector.js';
export { ETCD_ERROR_CODES, EtcdError, isEtcdError, type EtcdErrorCode } from './errors.js';
export { LeaseKeeper, type LeaseLoss, type LeaseRenewer } from './lease-keeper.js';
export type { Compare, CompareOp, TxnOp, TxnResponse, TxnResult } from './txn.js';
export type { Watch, WatchEvent, WatchListener, WatchOptions, WatchUpdate } from './watch.js';
export type { KeyValue, LeaseId } from './wire.js';
