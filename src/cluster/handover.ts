/**
 * A controlled handover of one topic this broker leads (a shutdown, or a leader leaving the topic's
 * replicas): consumers first get their time to settle what they hold, while publishes go on; then
 * the leader takes no more writes, its followers fetch the rest, and etcd names the first follower
 * holding it all leader in the next epoch. Only then does the topic's service close here, so what
 * closing costs is not spent while publishes wait. Requests that meet the move wait for it on this
 * broker (leadership-changes.ts) and are then told the successor, at its epoch.
 */
import { FerryError } from '../errors.js';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { ClusterStore, TopicState, VersionedState } from './cluster-store.js';
import type { LeadershipChanges } from './leadership-changes.js';
import { HANDOVER_DRAIN_MS, HANDOVER_TIMEOUT_MS } from './limits.js';
import type { LocalTopics } from './local-topics.js';
import type { TopicLeader } from './topic-leader.js';

export interface HandoverContext {
  topic: string;
  nodeId: string;
  leader: TopicLeader;
  /** In-sync followers that may take the topic, in preference order. */
  successors: readonly string[];
  store: ClusterStore;
  local: LocalTopics;
  changes: LeadershipChanges;
  clock: Clock;
  logger: Logger;
  brokerAddress(nodeId: string): string | undefined;
  /** The state this leadership acts on, as it is when the writes stop. */
  state(): VersionedState;
  /** Writes stop: the replica no longer counts as serving the topic (requests wait for the move). */
  stopServing(): void;
  /** The swap in etcd is over: the new state when it succeeded, null when it failed. The role is gone either way. */
  swapped(next: VersionedState | null): void;
}

/** A handover done: to whom, and when (monotonic ms) the followers held everything and etcd named the successor. */
interface Handed {
  successor: string;
  caughtUpMs: number;
  swappedMs: number;
}

/** Hands the topic over; true once etcd names the successor (the service here is closed either way). */
export async function handOverTopic(context: HandoverContext): Promise<boolean> {
  const { clock, topic } = context;
  const startedMs = clock.monotonicMs();
  await context.local.drain(topic, HANDOVER_DRAIN_MS);
  const drainedMs = clock.monotonicMs();
  const handing = context.changes.begin();
  let handed: Handed | null = null;
  try {
    handed = await moveLeadership(context);
  } finally {
    // From here requests are told where the topic went.
    handing();
  }
  await context.local.close(topic, `${context.nodeId} is shutting down; ${topic} moves to another broker`);
  if (handed === null) return false;
  const [drainMs, catchUpMs, casMs, closeMs] = [drainedMs - startedMs, handed.caughtUpMs - drainedMs, handed.swappedMs - handed.caughtUpMs, clock.monotonicMs() - handed.swappedMs].map(Math.round);
  context.logger.info('cluster.leader.handed_over', { topic, to: handed.successor, epoch: context.state().state.epoch, drainMs, catchUpMs, casMs, closeMs });
  return true;
}

/**
 * The move itself: no write is taken from now on (each is refused as `moving`, stores nothing, and
 * is answered once the move is over), the followers fetch the rest, and etcd names the first
 * holding it all leader in the next epoch, with this broker **out of the in-sync set**: it fetches
 * nothing from the successor, whose confirms would otherwise wait until it counted as gone
 * (FOLLOWER_GONE_MS).
 */
async function moveLeadership(context: HandoverContext): Promise<Handed | null> {
  const { topic, leader } = context;
  const { state, modRevision } = context.state();
  context.stopServing();
  leader.seal(new FerryError('NOT_LEADER', `topic ${topic} is moving to another broker`, { detail: { topic, leader: null, address: null, epoch: state.epoch, moving: true } }));
  const successor = (await leader.successorHoldingAll(context.successors, HANDOVER_TIMEOUT_MS)) ?? context.successors[0]!;
  const caughtUpMs = context.clock.monotonicMs();
  const next: TopicState = { leader: successor, epoch: state.epoch + 1, inSync: state.inSync.filter((member) => member !== context.nodeId) };
  leader.stepDown(new FerryError('NOT_LEADER', `topic ${topic} is moving to ${successor}`, { detail: { topic, leader: successor, address: context.brokerAddress(successor) ?? null, epoch: next.epoch } }));
  const result = await context.store.casState(topic, modRevision, next).catch((error: unknown) => {
    context.swapped(null);
    throw error;
  });
  context.swapped(result.ok ? { state: next, modRevision: result.modRevision } : null);
  return result.ok ? { successor, caughtUpMs, swappedMs: context.clock.monotonicMs() } : null;
}
