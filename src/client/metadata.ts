/**
 * What the client knows of a cluster: its brokers and which one leads each topic, from METADATA
 * answers and from NOT_LEADER refusals. Plain data and rules, no I/O: the router
 * (cluster-router.ts) asks, learns and decides where a request goes.
 *
 * Rules: a METADATA answer replaces the picture, except that a topic's entry is not taken back to
 * an older epoch (the answering broker may not have seen the latest election yet). A NOT_LEADER
 * names the leader when the refusing broker knows it: taken when its epoch is not older, or when
 * the refusal came from the broker the entry pointed at (so a topic deleted and created again,
 * epochs restarting, is never stuck on a broker that refuses it). A broker without cluster mode
 * ("single") leads every topic.
 */
import type { MetadataResponse } from '../protocol/codec-metadata.js';
import { addressKey, parseServer } from './address.js';

export interface BrokerInfo {
  /** '' for a single broker (no cluster). */
  nodeId: string;
  /** host:port the client dials. */
  address: string;
  alive: boolean;
}

export interface TopicLeader {
  topic: string;
  /** Node id of the leader ('' for a single broker, and while no leader is elected in a cluster). */
  leader: string;
  /** Where the leader is reached; null while no leader is elected. */
  address: string | null;
  epoch: number;
}

export interface ClusterMetadata {
  /** False when the server is a single broker (no cluster): it leads every topic. */
  cluster: boolean;
  brokers: BrokerInfo[];
  topics: TopicLeader[];
}

export interface LeaderEntry {
  /** '' for a single broker's topics and while no leader is elected. */
  nodeId: string;
  /** Address key of the leader; null while none is elected. */
  address: string | null;
  epoch: number;
  /** The leader failed a request (closed, refused, timed out): ask again before using it. */
  stale: boolean;
}

/** What a NOT_LEADER's detail says: `{ topic, leader, address, epoch }`, each possibly null. */
export interface LeaderHint {
  leader: string | null;
  address: string | null;
  epoch: number | null;
}

/** The address key of an advertised `host:port`, or null when it is not one. */
export function normalizeAddress(text: unknown): string | null {
  if (typeof text !== 'string' || text === '') return null;
  try {
    return addressKey(parseServer(text));
  } catch {
    return null;
  }
}

export function leaderHint(detail: Record<string, unknown> | undefined): LeaderHint {
  const leader = detail?.['leader'];
  const epoch = detail?.['epoch'];
  return {
    leader: typeof leader === 'string' && leader !== '' ? leader : null,
    address: normalizeAddress(detail?.['address']),
    epoch: Number.isSafeInteger(epoch) && (epoch as number) >= 0 ? (epoch as number) : null,
  };
}

export class MetadataCache {
  private leaders = new Map<string, LeaderEntry>();
  private brokerList: BrokerInfo[] = [];
  private readonly addressByNode = new Map<string, string>();
  /** A single broker (no cluster): its address key; null in a cluster or before the first answer. */
  private singleAddress: string | null = null;
  /** The single broker failed a request: ask again (maybe another server answers) before using it. */
  singleStale = false;
  /** Bumped by every change: a caller that saw version v knows whether anything was learnt since. */
  version = 0;

  /** The broker that leads every topic, when the server is a single broker. */
  get single(): string | null {
    return this.singleAddress;
  }

  get isCluster(): boolean {
    return this.singleAddress === null && this.brokerList.length > 0;
  }

  leader(topic: string): LeaderEntry | undefined {
    return this.leaders.get(topic);
  }

  addressOf(nodeId: string): string | undefined {
    return this.addressByNode.get(nodeId);
  }

  isAlive(nodeId: string): boolean | undefined {
    return this.brokerList.find((broker) => broker.nodeId === nodeId)?.alive;
  }

  /** Live brokers' addresses first, then the others: where to ask when the known ones fail. */
  brokerAddresses(): string[] {
    const sorted = [...this.brokerList].sort((a, b) => Number(b.alive) - Number(a.alive));
    return sorted.map((broker) => normalizeAddress(broker.address)).filter((address): address is string => address !== null);
  }

  /** Applies a METADATA answer given by the broker reached at `answeredBy` (an address key). */
  apply(response: MetadataResponse, answeredBy: string): void {
    this.version++;
    if (response.nodeId === '') {
      this.applySingle(answeredBy, response);
      return;
    }
    this.singleAddress = null;
    this.singleStale = false;
    this.brokerList = response.brokers.map((broker) => ({ ...broker }));
    this.addressByNode.clear();
    for (const broker of response.brokers) {
      const address = normalizeAddress(broker.address);
      if (address !== null) this.addressByNode.set(broker.nodeId, address);
    }
    const previous = this.leaders;
    this.leaders = new Map();
    for (const topic of response.topics) {
      if (!topic.exists) continue;
      const known = previous.get(topic.name);
      if (known !== undefined && known.epoch > topic.epoch && known.address !== null) {
        this.leaders.set(topic.name, known); // this broker has not seen the latest election yet
        continue;
      }
      const address = topic.leader === '' ? null : (this.addressByNode.get(topic.leader) ?? null);
      this.leaders.set(topic.name, { nodeId: topic.leader, address, epoch: topic.epoch, stale: false });
    }
  }

  /**
   * A single broker answered (nodeId '', or it does not know METADATA at all): it leads every
   * topic it has. Without an answer (`response` absent) topics are not listed.
   */
  applySingle(address: string, response?: MetadataResponse): void {
    this.version++;
    this.singleAddress = address;
    this.singleStale = false;
    this.brokerList = [{ nodeId: '', address, alive: true }];
    this.addressByNode.clear();
    this.leaders = new Map();
    for (const topic of response?.topics ?? []) {
      if (topic.exists) this.leaders.set(topic.name, { nodeId: '', address, epoch: topic.epoch, stale: false });
    }
  }

  /**
   * The broker `refusedBy` (node id and address key) refused a request for `topic` with
   * NOT_LEADER. Returns true when a leader other than the refusing broker is now known.
   */
  notLeader(topic: string, refusedBy: { nodeId: string | undefined; address: string }, hint: LeaderHint): boolean {
    const known = this.leaders.get(topic);
    const pointedAtRefuser =
      known !== undefined && ((refusedBy.nodeId !== undefined && known.nodeId === refusedBy.nodeId) || known.address === refusedBy.address);
    const address = hint.address ?? (hint.leader === null ? null : (this.addressByNode.get(hint.leader) ?? null));
    this.version++;
    if (hint.leader !== null && address !== null && address !== refusedBy.address) {
      if (known === undefined || pointedAtRefuser || (hint.epoch ?? 0) >= known.epoch) {
        this.leaders.set(topic, { nodeId: hint.leader, address, epoch: hint.epoch ?? known?.epoch ?? 0, stale: false });
        return true;
      }
      return known.address !== refusedBy.address;
    }
    if (pointedAtRefuser || known === undefined) this.leaders.set(topic, { nodeId: '', address: null, epoch: known?.epoch ?? 0, stale: true });
    return false;
  }

  /** The leader of `topic` failed a request: ask again before sending there. */
  markStale(topic: string): void {
    if (this.singleAddress !== null) this.singleStale = true;
    const known = this.leaders.get(topic);
    if (known !== undefined) known.stale = true;
  }

  /** Every topic led by the broker at `address` (or with `nodeId`) is to be asked about again. */
  markStaleAt(address: string, nodeId: string | undefined): void {
    if (this.singleAddress === address) this.singleStale = true;
    for (const entry of this.leaders.values()) {
      if (entry.address === address || (nodeId !== undefined && entry.nodeId === nodeId)) entry.stale = true;
    }
  }

  /** True when `topic` is known to be led by a broker other than `nodeId`. */
  ledElsewhere(topic: string, nodeId: string): boolean {
    const entry = this.leaders.get(topic);
    return entry !== undefined && entry.nodeId !== '' && entry.nodeId !== nodeId;
  }

  snapshot(): ClusterMetadata {
    const topics: TopicLeader[] = [];
    for (const [topic, entry] of this.leaders) topics.push({ topic, leader: entry.nodeId, address: entry.address, epoch: entry.epoch });
    topics.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
    return { cluster: this.singleAddress === null, brokers: this.brokerList.map((broker) => ({ ...broker })), topics };
  }
}
