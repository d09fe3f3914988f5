/**
 * What the cluster keeps in etcd, and the only ways it changes (docs/CLUSTERING.md, "What etcd
 * holds"). Metadata only, never message data:
 *
 *   <prefix>brokers/<nodeId>        a live broker: its address (attached to its lease)
 *   <prefix>topics/<name>/config    a topic's configuration and replica placement (written once)
 *   <prefix>topics/<name>/state     its leader, epoch and in-sync set (changed by compare-and-swap only)
 */
import assert from 'node:assert/strict';
import type { EtcdClient, KeyValue, LeaseId, Watch, WatchListener } from './etcd/index.js';

/** A live broker, as it registered. */
export interface BrokerRecord {
  nodeId: string;
  /** host:port that clients and other brokers dial. */
  address: string;
  startedAtMs: number;
}

/**
 * A topic's settings and where its replicas live; written when the topic is created, and changed
 * (by compare-and-swap) only when a replica moves to another broker (reassignment.ts).
 */
export interface TopicPlacement {
  name: string;
  /** The topic's configuration as the broker stores it in topic.json. */
  config: Record<string, unknown>;
  /** Node ids holding a replica, in preference order (the first is the preferred leader); during a move, the target set and the leaving ones. */
  replicas: string[];
  minInSync: number;
  createdAtMs: number;
  /** During a move: replicas catching up to take a leaving one's place. */
  adding?: string[];
  /** During a move: replicas that leave once every adding one is in sync. */
  removing?: string[];
}

/** A placement read with the revision a compare-and-swap must name. */
export interface VersionedPlacement {
  placement: TopicPlacement;
  modRevision: number;
}

/** Who leads a topic, in which epoch, and which replicas are in sync. */
export interface TopicState {
  /** Node id of the leader; null while none is elected. */
  leader: string | null;
  /** Raised by one at every leadership change; never goes back. */
  epoch: number;
  /** Node ids of the replicas in sync, the leader included. */
  inSync: string[];
}

/** A state read with the revision a compare-and-swap must name. */
export interface VersionedState {
  state: TopicState;
  modRevision: number;
}

export type CasResult = { ok: true; modRevision: number } | { ok: false; current: VersionedState | null };

export interface ClusterSnapshot {
  brokers: Map<string, BrokerRecord>;
  placements: Map<string, TopicPlacement>;
  states: Map<string, VersionedState>;
  revision: number;
}

export type ClusterEvent =
  | { kind: 'broker'; nodeId: string; record: BrokerRecord | null }
  | { kind: 'placement'; topic: string; placement: TopicPlacement | null }
  | { kind: 'state'; topic: string; state: VersionedState | null };

export class ClusterStore {
  constructor(
    private readonly etcd: EtcdClient,
    /** Every key starts with it; ends with '/'. */
    readonly prefix: string,
  ) {
    assert.ok(prefix.endsWith('/'), 'the key prefix ends with a slash');
  }

  private brokerKey(nodeId: string): string {
    return `${this.prefix}brokers/${nodeId}`;
  }

  private configKey(topic: string): string {
    return `${this.prefix}topics/${topic}/config`;
  }

  private stateKey(topic: string): string {
    return `${this.prefix}topics/${topic}/state`;
  }

  /** Registers this broker under its lease (it disappears when the lease does). */
  async registerBroker(record: BrokerRecord, lease: LeaseId): Promise<void> {
    await this.etcd.put(this.brokerKey(record.nodeId), JSON.stringify(record), { lease });
  }

  async unregisterBroker(nodeId: string): Promise<void> {
    await this.etcd.delete(this.brokerKey(nodeId));
  }

  /** Everything, at one revision. */
  async read(): Promise<ClusterSnapshot> {
    const { kvs, revision } = await this.etcd.getPrefix(this.prefix);
    const snapshot: ClusterSnapshot = { brokers: new Map(), placements: new Map(), states: new Map(), revision };
    for (const kv of kvs) {
      const event = this.parse(kv, false);
      if (event === null) continue;
      if (event.kind === 'broker' && event.record !== null) snapshot.brokers.set(event.nodeId, event.record);
      if (event.kind === 'placement' && event.placement !== null) snapshot.placements.set(event.topic, event.placement);
      if (event.kind === 'state' && event.state !== null) snapshot.states.set(event.topic, event.state);
    }
    return snapshot;
  }

  /** Watches every change after `fromRevision`; `onEvents` gets them in revision order (null `events`: read everything again). */
  watch(fromRevision: number, onEvents: (events: ClusterEvent[] | null, revision: number) => void | Promise<void>): Watch {
    const listener: WatchListener = (update) => {
      if (update.type === 'compacted') return onEvents(null, update.compactRevision);
      const events: ClusterEvent[] = [];
      for (const event of update.events) {
        const parsed = this.parse(event.kv, event.type === 'delete');
        if (parsed !== null) events.push(parsed);
      }
      return onEvents(events, update.revision);
    };
    return this.etcd.watchPrefix(this.prefix, { fromRevision }, listener);
  }

  /**
   * Creates a topic: its placement and its first state, together, only if it does not exist.
   * False when it exists already.
   */
  async createTopic(placement: TopicPlacement, state: TopicState): Promise<boolean> {
    const result = await this.etcd.txn({
      compare: [{ key: this.configKey(placement.name), createRevision: 0 }],
      success: [
        { put: this.configKey(placement.name), value: JSON.stringify(placement) },
        { put: this.stateKey(placement.name), value: JSON.stringify(state) },
      ],
    });
    return result.succeeded;
  }

  async deleteTopic(topic: string): Promise<void> {
    await this.etcd.delete(`${this.prefix}topics/${topic}/`, { prefix: true });
  }

  async getState(topic: string): Promise<VersionedState | null> {
    const { kv } = await this.etcd.get(this.stateKey(topic));
    return kv === undefined ? null : parseState(kv);
  }

  async getPlacement(topic: string): Promise<VersionedPlacement | null> {
    const { kv } = await this.etcd.get(this.configKey(topic));
    const placement = kv === undefined ? null : parseJson<TopicPlacement>(kv.value);
    return placement === null ? null : { placement, modRevision: kv!.modRevision };
  }

  /** Replaces the placement only if it is unchanged since `expectedModRevision`. */
  async casPlacement(topic: string, expectedModRevision: number, next: TopicPlacement): Promise<boolean> {
    const key = this.configKey(topic);
    const result = await this.etcd.txn({ compare: [{ key, modRevision: expectedModRevision }], success: [{ put: key, value: JSON.stringify(next) }] });
    return result.succeeded;
  }

  /** Replaces the state only if it is unchanged since `expectedModRevision`; else says what it is now. */
  async casState(topic: string, expectedModRevision: number, next: TopicState): Promise<CasResult> {
    assert.ok(next.leader === null || next.inSync.includes(next.leader), 'a leader is in sync');
    const key = this.stateKey(topic);
    const result = await this.etcd.txn({
      compare: [{ key, modRevision: expectedModRevision }],
      success: [{ put: key, value: JSON.stringify(next) }],
      failure: [{ get: key }],
    });
    if (result.succeeded) return { ok: true, modRevision: result.revision };
    const read = result.responses[0];
    const kv = read?.type === 'get' ? read.kvs[0] : undefined;
    return { ok: false, current: kv === undefined ? null : parseState(kv) };
  }

  private parse(kv: KeyValue, deleted: boolean): ClusterEvent | null {
    const rest = kv.key.slice(this.prefix.length);
    const broker = /^brokers\/(.+)$/.exec(rest);
    if (broker !== null) return { kind: 'broker', nodeId: broker[1]!, record: deleted ? null : parseJson<BrokerRecord>(kv.value) };
    const topic = /^topics\/(.+)\/(config|state)$/.exec(rest);
    if (topic === null) return null;
    if (topic[2] === 'config') return { kind: 'placement', topic: topic[1]!, placement: deleted ? null : parseJson<TopicPlacement>(kv.value) };
    return { kind: 'state', topic: topic[1]!, state: deleted ? null : parseState(kv) };
  }
}

function parseJson<T>(text: string): T | null {
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}

function parseState(kv: KeyValue): VersionedState | null {
  const state = parseJson<TopicState>(kv.value);
  if (state === null || !Number.isSafeInteger(state.epoch) || !Array.isArray(state.inSync)) return null;
  return { state, modRevision: kv.modRevision };
}
