/**
 * Requests of a cluster client waiting to learn a topic's next leader: after a NOT_LEADER that
 * names no other broker, a lost connection, or a refused dial. Each waits at most its backoff
 * (retry-policy.ts), but wakes as soon as the client learns of a leader that is neither the one
 * it failed on nor the one it knew when it began to wait: a METADATA answer, or a refusal naming
 * it. While any request waits, the router asks METADATA every ROUTE_POLL_MS, one request at a
 * time however many wait, so a new leader is followed within that long of the brokers knowing it
 * rather than on the backoff's doubling grid; a leader that is named but still opening the topic
 * holds the request until it serves (the brokers' side, docs/CLUSTERING.md).
 */
import type { LeaderEntry } from './metadata.js';

/** How often the router asks METADATA while requests wait for a leader: far below the backoff's upper steps. */
export const ROUTE_POLL_MS = 20;

/** A leader as far as waiting goes: which broker, in which epoch. */
export interface LeaderMark {
  nodeId: string;
  epoch: number;
}

interface Wait {
  failedOn: LeaderMark;
  knownAtStart: LeaderMark | null;
  wake(): void;
}

/** Whether `entry` names a broker to send to that is another leader than `mark` (another broker, or a newer epoch). */
function newerThan(entry: LeaderEntry, mark: LeaderMark | null): boolean {
  return mark === null || entry.nodeId !== mark.nodeId || entry.epoch > mark.epoch;
}

/** What `learned` compares: a change of it is news for the topic's waits. */
function markOf(entry: LeaderEntry | undefined): string {
  return entry === undefined || entry.stale || entry.address === null ? '' : `${entry.nodeId}@${entry.epoch}`;
}

export class LeaderWaits {
  /** Waits by topic. */
  private readonly waits = new Map<string, Set<Wait>>();
  /** Per topic with waits, the entry `learned` last looked at (a refusal's news is looked at once, not per wait). */
  private readonly lastSeen = new Map<string, string>();
  private count = 0;
  private polling = false;
  private closed = false;

  /** `poll`: asks the cluster for its leaders (METADATA); its answer reaches `learned`. */
  constructor(private readonly poll: () => Promise<void>) {}

  /** Requests waiting now. */
  get size(): number {
    return this.count;
  }

  /**
   * Waits `delayMs`, or less when `learned` finds a new leader of `topic`: one other than
   * `failedOn` (the broker the request failed on) and than `known` (the entry when the wait began).
   */
  wait(topic: string, failedOn: LeaderMark, known: LeaderEntry | undefined, delayMs: number): Promise<void> {
    let waits = this.waits.get(topic);
    if (waits === undefined) {
      waits = new Set();
      this.waits.set(topic, waits);
    }
    const topicWaits = waits;
    return new Promise<void>((resolve) => {
      const wait: Wait = {
        failedOn,
        knownAtStart: known === undefined || known.address === null ? null : { nodeId: known.nodeId, epoch: known.epoch },
        wake: () => {
          if (!topicWaits.delete(wait)) return;
          this.count--;
          if (topicWaits.size === 0 && this.waits.get(topic) === topicWaits) {
            this.waits.delete(topic);
            this.lastSeen.delete(topic);
          }
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(wait.wake, delayMs);
      topicWaits.add(wait);
      this.count++;
      this.startPolling();
    });
  }

  /** Polls every ROUTE_POLL_MS, one poll at a time, while any request waits. */
  private startPolling(): void {
    if (this.polling || this.closed) return;
    this.polling = true;
    const tick = (): void => {
      if (this.closed || this.count === 0) {
        this.polling = false;
        return;
      }
      const again = (): void => void setTimeout(tick, ROUTE_POLL_MS).unref();
      this.poll().then(again, again);
    };
    setTimeout(tick, ROUTE_POLL_MS).unref();
  }

  /** Something was learnt: wakes every wait whose topic now has a new leader to try. */
  learned(leaderOf: (topic: string) => LeaderEntry | undefined): void {
    for (const [topic, waits] of [...this.waits]) {
      const entry = leaderOf(topic);
      const mark = markOf(entry);
      if (this.lastSeen.get(topic) === mark) continue;
      this.lastSeen.set(topic, mark);
      if (mark === '') continue;
      for (const wait of [...waits]) if (newerThan(entry!, wait.failedOn) && newerThan(entry!, wait.knownAtStart)) wait.wake();
    }
  }

  /** Ends every wait now, and the polling (the client closes). */
  close(): void {
    this.closed = true;
    for (const waits of [...this.waits.values()]) for (const wait of [...waits]) wait.wake();
  }
}
