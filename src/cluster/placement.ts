/**
 * Where a new topic's replicas go: on the live brokers holding the fewest replicas, with the
 * preferred leader (the first) the one leading the fewest topics, so leaders spread evenly.
 */
import type { TopicPlacement, VersionedState } from './cluster-store.js';

export function choosePlacement(
  live: readonly string[],
  replicas: number,
  placements: Iterable<TopicPlacement>,
  states: ReadonlyMap<string, VersionedState>,
): string[] {
  const held = new Map(live.map((nodeId) => [nodeId, 0]));
  for (const placement of placements) {
    for (const nodeId of placement.replicas) if (held.has(nodeId)) held.set(nodeId, held.get(nodeId)! + 1);
  }
  const led = new Map(live.map((nodeId) => [nodeId, 0]));
  for (const { state } of states.values()) if (state.leader !== null && led.has(state.leader)) led.set(state.leader, led.get(state.leader)! + 1);
  const chosen = [...live].sort((a, b) => held.get(a)! - held.get(b)! || led.get(a)! - led.get(b)! || a.localeCompare(b)).slice(0, replicas);
  // The first is the preferred leader: the chosen broker leading the fewest topics.
  chosen.sort((a, b) => led.get(a)! - led.get(b)! || held.get(a)! - held.get(b)! || a.localeCompare(b));
  return chosen;
}
