/**
 * What a power loss may take from a replicated topic, as the history checker (checker.ts) needs it.
 * The checker was written for one broker: every power loss (`pl`) may undo what was confirmed
 * within its loss window, and every broker start (`bs`) begins a new incarnation. With replicas
 * (docs/CLUSTERING.md, "Durability with replicas"; docs/RELIABILITY.md, "The promises with
 * replicas") a confirmed `interval` or `never` message is written on every in-sync replica (at
 * least minInSync of them), so it survives crashes of any number of brokers and the power loss of a
 * minority; only a majority of the replicas losing power together may take it back. So, before the
 * checker sees them:
 *
 * - the `pl` events of one fault that cut the power of a majority of the brokers together (no
 *   broker started in between) become one, at the first cut, with the longest fdatasync of any; a
 *   power loss of a minority is dropped: it excuses nothing;
 * - `bs` events are kept only for the first broker start after such a majority loss: the cluster's
 *   incarnations are the spans between them (losses must be a suffix of what a producer confirmed
 *   in one), not one broker's restarts.
 *
 * In `always` mode the checker looks at neither (a power loss excuses nothing), so this changes
 * nothing there. Pure: no I/O.
 */
import type { EventOf, HistoryEvent } from './history.js';

/** The events with the power losses and starts of `brokers` brokers as one broker's checker must see them. */
export function clusterIncarnations(events: readonly HistoryEvent[], brokers: number): HistoryEvent[] {
  const majority = Math.floor(brokers / 2) + 1;
  const out: HistoryEvent[] = [];
  let group: Array<EventOf<'pl'>> = [];
  let awaitingStart = false;
  const closeGroup = (): void => {
    const nodes = new Set(group.map((loss) => loss.n ?? '?'));
    if (nodes.size >= majority) {
      const first = group.reduce((a, b) => (b.at < a.at ? b : a));
      out.push({ ...first, datasyncMsMax: Math.max(...group.map((loss) => loss.datasyncMsMax)), n: [...nodes].sort().join(',') });
      awaitingStart = true;
    }
    group = [];
  };
  for (const event of events) {
    if (event.k === 'pl') {
      group.push(event);
      continue;
    }
    if (event.k === 'bs') {
      closeGroup();
      if (awaitingStart) out.push(event);
      awaitingStart = false;
      continue;
    }
    out.push(event);
  }
  closeGroup();
  return out.sort((a, b) => a.t - b.t);
}
