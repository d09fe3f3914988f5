/**
 * The group journals a follower copies, replayed as they come (GroupReplay, broker/delivery/
 * group-snapshots.ts), so that the topic's open on this broker as leader continues each group's
 * replay from where it stands instead of reading the whole journal back while publishes wait: a
 * journal holds up to GROUP_JOURNAL_RECORDS_PER_SNAPSHOT records past its newest snapshot, tens of
 * milliseconds of a handover. Each replay reads its journal in the background, one read at a time,
 * from the local log (its hot tail). A cut or reset of the journal drops the replay (the next append
 * starts one anew from the journal's start), and so does a read that fails: the open then replays
 * the journal itself, as without it.
 */
import { GroupReplay } from '../broker/delivery/group-snapshots.js';
import type { PartitionLog } from '../storage/types.js';
import type { FollowerLogChange } from './topic-follower.js';

/** The prefix of a group journal's log id (local-topics.ts logIdOf). */
const GROUP_LOG_PREFIX = 'g/';

/** The partitions of a topic's placement config; null when it does not say. */
export function partitionsOf(config: Readonly<Record<string, unknown>>): number | null {
  const partitions = config['partitions'];
  return typeof partitions === 'number' ? partitions : null;
}

interface Warm {
  replay: GroupReplay;
  /** The local log replayed: a replay fits only the log it read. */
  log: PartitionLog;
  reading: Promise<void> | null;
}

export class WarmGroups {
  /** By group name. */
  private readonly warm = new Map<string, Warm>();
  /** A promotion takes the replays: none reads or starts meanwhile. */
  private promoting = false;

  constructor(
    /** The topic's partitions (its placement's config); null when unknown, and nothing is replayed. */
    private readonly partitions: () => number | null,
    /** The local log of a log id. */
    private readonly localLog: (logId: string) => PartitionLog | undefined,
  ) {}

  /** A follower changed a log. */
  change(logId: string, change: FollowerLogChange): void {
    if (!logId.startsWith(GROUP_LOG_PREFIX)) return;
    const group = logId.slice(GROUP_LOG_PREFIX.length);
    if (change.kind !== 'appended') {
      this.warm.delete(group);
      return;
    }
    if (this.promoting) return;
    let entry = this.warm.get(group);
    const log = this.localLog(logId);
    if (entry !== undefined && entry.log !== log) {
      this.warm.delete(group);
      entry = undefined;
    }
    if (entry === undefined) {
      const partitions = this.partitions();
      if (log === undefined || partitions === null) return;
      entry = { replay: new GroupReplay(partitions, logId, log.startOffset), log, reading: null };
      this.warm.set(group, entry);
    }
    this.readOn(group, entry);
  }

  /** Reads the journal on up to its end, unless a read is under way (it reads on once done). */
  private readOn(group: string, entry: Warm): void {
    if (entry.reading !== null) return;
    const wanted = (): boolean => !this.promoting && this.warm.get(group) === entry;
    const reading = async (): Promise<void> => {
      let from = -1;
      // Until caught up, or a read that brought nothing (nothing there to read yet).
      while (wanted() && entry.replay.nextOffset < entry.log.nextOffset && entry.replay.nextOffset !== from) {
        from = entry.replay.nextOffset;
        await entry.replay.readTo(entry.log, entry.log.nextOffset, wanted);
      }
    };
    entry.reading = reading()
      .catch(() => {
        if (this.warm.get(group) === entry) this.warm.delete(group);
      })
      .finally(() => {
        entry.reading = null;
      });
  }

  /** Leadership begins: this broker appends itself from now on; the replays stand where they are. */
  beginPromotion(): void {
    this.promoting = true;
  }

  /**
   * The replay of a group's journal for its open as leader (GroupStoreOptions.warmReplay), once
   * its last read is over; null when there is none. Each is given once.
   */
  async take(group: string): Promise<GroupReplay | null> {
    const entry = this.warm.get(group);
    if (entry === undefined || !this.promoting) return null;
    await entry.reading;
    if (this.warm.get(group) !== entry) return null;
    this.warm.delete(group);
    return entry.log === this.localLog(`${GROUP_LOG_PREFIX}${group}`) ? entry.replay : null;
  }

  /** The promotion's open is over: what it did not take is dropped (a leader's journals are its own). */
  endPromotion(): void {
    this.warm.clear();
    this.promoting = false;
  }
}
