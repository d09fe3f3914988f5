/**
 * A group's snapshots live in its journal, as records of their own: the journal alone rebuilds the
 * group, so a replica that holds a copy of the journal holds the whole group (docs/CLUSTERING.md).
 * A snapshot is its JSON in chunks of at most SNAPSHOT_CHUNK_BYTES, each a record carrying the
 * header `ferry-group-snapshot: <index>/<count>`, appended together; event records carry no
 * headers. Recovery takes the newest complete snapshot and applies the events after it.
 */
import { FerryError } from '../../errors.js';
import type { LogRecord, PartitionLog, RecordInput } from '../../storage/types.js';
import { decodeGroupEvents } from './group-journal.js';
import { GROUP_SNAPSHOT_VERSION, GroupState, type GroupSnapshot } from './group-state.js';

export const SNAPSHOT_HEADER = 'ferry-group-snapshot';
/** One snapshot record's bytes at most: well under a record's limit, and a read of one batch stays small. */
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/** Journal records read per read during recovery. */
const REPLAY_READ_RECORDS = 1024;

/** The records of one snapshot, to be appended together, in order. */
export function snapshotRecords(snapshot: GroupSnapshot): RecordInput[] {
  const json = Buffer.from(JSON.stringify(snapshot));
  const count = Math.max(1, Math.ceil(json.length / SNAPSHOT_CHUNK_BYTES));
  const records: RecordInput[] = [];
  for (let index = 0; index < count; index++) {
    records.push({
      headers: [[SNAPSHOT_HEADER, `${index}/${count}`]],
      value: json.subarray(index * SNAPSHOT_CHUNK_BYTES, Math.min(json.length, (index + 1) * SNAPSHOT_CHUNK_BYTES)),
    });
  }
  return records;
}

export function parseSnapshot(bytes: Buffer, where: string): GroupSnapshot {
  let parsed: GroupSnapshot;
  try {
    parsed = JSON.parse(bytes.toString('utf8')) as GroupSnapshot;
  } catch (cause) {
    throw new FerryError('STORAGE_FAILED', `group snapshot in ${where} is not valid JSON`, { cause });
  }
  if (parsed.version !== GROUP_SNAPSHOT_VERSION || !Array.isArray(parsed.partitions) || typeof parsed.config !== 'object') {
    throw new FerryError('STORAGE_FAILED', `group snapshot in ${where} has an unknown format (version ${String(parsed.version)})`);
  }
  return parsed;
}

/** What a replay rebuilt: the state and the snapshot it started from. */
export interface ReplayedGroup {
  state: GroupState;
  snapshot: GroupSnapshot;
  /** Journal offset of the newest snapshot's first record; -1 when the base was a legacy state file. */
  snapshotOffset: number;
}

/**
 * Rebuilds a group from its journal: the newest complete snapshot in it (or, failing one, the
 * legacy state file's snapshot, whose events start at its `journalOffset`) plus every event after
 * it. Null when the journal holds no snapshot and there is no legacy one: a creation that never
 * finished. `warm`, a replay of the same journal's records from its start up to some offset (a
 * replica that followed the journal replayed it as it came: cluster/warm-groups.ts), is continued
 * instead of reading the journal from its start, when it fits the journal as it is now.
 */
export async function replayGroup(journal: PartitionLog, partitions: number, legacy: GroupSnapshot | null, where: string, warm: GroupReplay | null = null): Promise<ReplayedGroup | null> {
  const fits = warm !== null && legacy === null && warm.partitions === partitions && warm.nextOffset >= journal.startOffset && warm.nextOffset <= journal.nextOffset;
  const replay = fits ? warm : new GroupReplay(partitions, where, journal.startOffset, legacy);
  await replay.readTo(journal, journal.nextOffset);
  return replay.replayed;
}

/**
 * A replay of a group's journal that goes on record by record: the newest complete snapshot so far
 * plus every event after it (replayGroup). It reads the journal's records in order, from where it
 * stopped; nothing else may change its state meanwhile.
 */
export class GroupReplay {
  private base: ReplayedGroup | null;
  private chunks: Buffer[] = [];
  private chunkStart = -1;

  constructor(
    readonly partitions: number,
    private readonly where: string,
    /** The next journal offset to apply. */
    public nextOffset: number,
    legacy: GroupSnapshot | null = null,
  ) {
    this.base = legacy === null ? null : { state: GroupState.fromSnapshot(legacy, partitions), snapshot: legacy, snapshotOffset: -1 };
  }

  /** What the records so far rebuild; null while no snapshot was seen (and no legacy one given). */
  get replayed(): ReplayedGroup | null {
    return this.base;
  }

  /**
   * Applies the journal's records from `nextOffset` up to `endOffset` (or the journal's end if
   * sooner). `stillWanted` is asked after each read: false stops before anything read is applied.
   */
  async readTo(journal: PartitionLog, endOffset: number, stillWanted: () => boolean = () => true): Promise<void> {
    while (this.nextOffset < Math.min(endOffset, journal.nextOffset)) {
      // The whole local journal: a replica that just became leader holds records not yet committed.
      const records = await journal.read(this.nextOffset, { recordsMax: REPLAY_READ_RECORDS, uncommitted: true });
      if (records.length === 0 || !stillWanted()) return;
      for (const record of records) this.apply(record);
      this.nextOffset = records[records.length - 1]!.offset + 1;
    }
  }

  private apply(record: LogRecord): void {
    const marker = snapshotMarker(record);
    if (marker !== null) {
      if (marker.index === 0) {
        this.chunks = [];
        this.chunkStart = record.offset;
      }
      if (marker.index !== this.chunks.length) return; // a stray chunk: its snapshot is incomplete
      this.chunks.push(Buffer.from(record.value));
      if (this.chunks.length === marker.count) {
        const snapshot = parseSnapshot(Buffer.concat(this.chunks), this.where);
        this.base = { state: GroupState.fromSnapshot(snapshot, this.partitions), snapshot, snapshotOffset: this.chunkStart };
        this.chunks = [];
      }
      return;
    }
    const base = this.base;
    if (base === null) return;
    // Events a legacy snapshot covers already are not applied twice (they are idempotent anyway).
    if (base.snapshotOffset < 0 && record.offset < base.snapshot.journalOffset) return;
    for (const event of decodeGroupEvents(record.value)) base.state.apply(event);
  }
}

function snapshotMarker(record: LogRecord): { index: number; count: number } | null {
  if (record.headers.length === 0) return null;
  const header = record.headers.find(([name]) => name === SNAPSHOT_HEADER);
  if (header === undefined) return null;
  const match = /^(\d+)\/(\d+)$/.exec(header[1]);
  if (match === null) return null;
  const index = Number(match[1]);
  const count = Number(match[2]);
  return index < count ? { index, count } : null;
}
