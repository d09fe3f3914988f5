/**
 * Moving a replica from one broker to another, as Kafka's reassignment does it (adding and
 * removing replicas): the placement first lists both, the new replica catches up from the leader
 * like any follower and joins the in-sync set, and only then does the leader drop the old one —
 * out of the in-sync set first (so the high watermark stops counting it), out of the placement
 * after. A move is declared in etcd, not held by the broker that was asked, so it completes
 * whichever broker leads, even across a failover. Plain rules here; cluster-node.ts and
 * topic-replica.ts do the I/O.
 */
import { FerryError } from '../errors.js';
import type { TopicPlacement } from './cluster-store.js';

/** The placement that starts moving `replace`'s replica to `target`. */
export function startMove(placement: TopicPlacement, replace: string, target: string, live: ReadonlySet<string>): TopicPlacement {
  const { name } = placement;
  if (moving(placement)) throw new FerryError('INVALID_ARGUMENT', `topic ${name} is already moving ${placement.removing!.join(', ')} to ${placement.adding!.join(', ')}; wait for it to finish`);
  if (!placement.replicas.includes(replace)) throw new FerryError('INVALID_ARGUMENT', `${replace} holds no replica of ${name} (replicas: ${placement.replicas.join(', ')})`);
  if (placement.replicas.includes(target)) throw new FerryError('INVALID_ARGUMENT', `${target} already holds a replica of ${name}`);
  if (!live.has(target)) throw new FerryError('NOT_ENOUGH_REPLICAS', `${target} is not a live broker of this cluster`, { detail: { alive: [...live] } });
  // The new replica takes the old one's place in the preference order; the old one stays, last, until it leaves.
  const replicas = placement.replicas.map((nodeId) => (nodeId === replace ? target : nodeId));
  return { ...placement, replicas: [...replicas, replace], adding: [target], removing: [replace] };
}

export function moving(placement: TopicPlacement): boolean {
  return (placement.removing?.length ?? 0) > 0;
}

/** The replicas a topic keeps once its move completes. */
export function targetReplicas(placement: TopicPlacement): string[] {
  const removing = new Set(placement.removing ?? []);
  return placement.replicas.filter((nodeId) => !removing.has(nodeId));
}

/** Whether every replica being added is in the in-sync set: the leaving ones may go. */
export function readyToComplete(placement: TopicPlacement, inSync: readonly string[]): boolean {
  return moving(placement) && (placement.adding ?? []).every((nodeId) => inSync.includes(nodeId));
}

/** The placement once the move is done. */
export function completedMove(placement: TopicPlacement): TopicPlacement {
  const { adding: _adding, removing: _removing, ...rest } = placement;
  return { ...rest, replicas: targetReplicas(placement) };
}

export interface DrainMove {
  topic: string;
  to: string;
}

export interface DrainPlan {
  moves: DrainMove[];
  /** Topics that cannot leave the broker, and why. */
  refused: Array<{ topic: string; reason: string }>;
}

/**
 * Where each replica on `node` goes: to the live broker outside the topic's replicas that holds
 * the fewest replicas (counting the moves already planned), so a drain spreads its load.
 */
export function planDrain(node: string, placements: Iterable<TopicPlacement>, live: readonly string[]): DrainPlan {
  const all = [...placements];
  const held = new Map(live.filter((nodeId) => nodeId !== node).map((nodeId) => [nodeId, 0]));
  for (const placement of all) for (const nodeId of placement.replicas) if (held.has(nodeId)) held.set(nodeId, held.get(nodeId)! + 1);
  const plan: DrainPlan = { moves: [], refused: [] };
  for (const placement of all.sort((a, b) => a.name.localeCompare(b.name))) {
    if (!placement.replicas.includes(node) || placement.removing?.includes(node) === true) continue;
    if (moving(placement)) {
      plan.refused.push({ topic: placement.name, reason: 'another move of this topic is under way' });
      continue;
    }
    const candidates = [...held.keys()].filter((nodeId) => !placement.replicas.includes(nodeId));
    if (candidates.length === 0) {
      plan.refused.push({ topic: placement.name, reason: `every other live broker already holds a replica (${placement.replicas.length} replicas, ${live.length} live brokers)` });
      continue;
    }
    const to = candidates.sort((a, b) => held.get(a)! - held.get(b)! || a.localeCompare(b))[0]!;
    held.set(to, held.get(to)! + 1);
    plan.moves.push({ topic: placement.name, to });
  }
  return plan;
}
