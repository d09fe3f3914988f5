/**
 * A broker leading a replicated topic, on the simulated disk and clock, without etcd or a network:
 * the logs of topic `t` are local logs held open as TopicReplica holds them (they stay open when
 * the broker closes its side), each wrapped in a ReplicatedLog of one real TopicLeader; followers
 * are simulated by the progress reports they would send (everything written is held and synced).
 * Stop a follower's reports and the leader takes it out of the in-sync set a second later, as in
 * a cluster; start them again and it is put back. Other topics (a dead-letter topic) are plain
 * local logs.
 */
import { Broker, type BrokerOptions } from '../../src/broker/broker.js';
import { logIdOf } from '../../src/cluster/local-topics.js';
import { ReplicatedLog } from '../../src/cluster/replicated-log.js';
import { TopicLeader } from '../../src/cluster/topic-leader.js';
import { FerryError } from '../../src/errors.js';
import { Log } from '../../src/storage/log.js';
import type { LogFactory } from '../../src/storage/types.js';
import type { SimClock } from '../sim/sim-clock.js';
import type { SimFileSystem } from '../sim/sim-fs.js';
import { seededRandom } from '../sim/random.js';
import { RecordingLogger } from '../storage/log-kit.js';

export const REPLICATED_TOPIC = 't';
export const LEADER_DATA_DIR = '/data';
const LEADER_ID = 'n1';
export const FOLLOWER_IDS = ['n2', 'n3'] as const;
/** Followers report this often (a fetch answer's worth of progress). */
const PROGRESS_INTERVAL_MS = 10;
/** Clock steps `untilSettled` takes, and how many at most. */
const STEP_MS = 10;
const STEPS_MAX = 2_000;

export interface SimLeaderOptions {
  epoch: number;
  /** The in-sync set etcd holds as the leadership starts. */
  inSync: readonly string[];
  minInSync: number;
  /** Followers that report from the start. */
  reporting: readonly string[];
}

export class SimLeader {
  /** The local logs of topic t by log id (`p0`, `g/<group>`, `d`), held open like a replica's. */
  readonly logs = new Map<string, Log>();
  /** Followers whose progress reports reach the leader. */
  readonly reporting: Set<string>;
  /** In-sync sets the leader asked etcd for, in order (every compare-and-swap succeeds). */
  readonly inSyncChanges: string[][] = [];
  readonly leader: TopicLeader;
  readonly logger = new RecordingLogger();
  private timer: { cancel(): void } | null = null;

  constructor(
    readonly fs: SimFileSystem,
    readonly clock: SimClock,
    options: SimLeaderOptions,
  ) {
    this.reporting = new Set(options.reporting);
    this.leader = new TopicLeader({
      topic: REPLICATED_TOPIC,
      nodeId: LEADER_ID,
      epoch: options.epoch,
      inSync: options.inSync,
      replicas: [LEADER_ID, ...FOLLOWER_IDS],
      minInSync: options.minInSync,
      replicaLagMaxMs: 10_000,
      // A new process: no high watermark heard as a follower (they start at each log's start).
      knownHighWatermarks: new Map(),
      clock,
      logger: this.logger,
      changeInSync: async (inSync) => {
        this.inSyncChanges.push(inSync);
        return true;
      },
      onFenced: () => undefined,
    });
    this.report();
  }

  /** The broker's log factory: topic t through the leader, anything else local. */
  readonly openLog: LogFactory = async (options, role) => {
    if (role.topic !== REPLICATED_TOPIC) return Log.open(options);
    if (!this.leader.active) throw new FerryError('NOT_LEADER', `${LEADER_ID} no longer leads ${REPLICATED_TOPIC}`);
    const logId = logIdOf(role);
    let log = this.logs.get(logId);
    if (log === undefined) {
      log = await Log.open(options);
      this.logs.set(logId, log);
    }
    if (log.leaderEpoch < this.leader.epoch) await log.beginEpoch(this.leader.epoch);
    this.leader.addLog(logId, log);
    return new ReplicatedLog(logId, log, this.leader);
  };

  /** A broker over this leader's logs: topics open one by one (`openTopic`), as in cluster mode. */
  openBroker(options: Partial<BrokerOptions> = {}): Promise<Broker> {
    return Broker.open({
      dir: LEADER_DATA_DIR,
      fs: this.fs,
      clock: this.clock,
      logger: this.logger,
      random: seededRandom(7),
      openLog: this.openLog,
      replicated: true,
      ...options,
    });
  }

  /** Every reporting follower says it holds (and synced) everything the leader wrote. */
  private report(): void {
    this.timer = this.clock.schedule(PROGRESS_INTERVAL_MS, () => this.report());
    if (!this.leader.active) return;
    const logs = [...this.logs].map(([logId, log]) => ({ logId, fetchOffset: log.nextOffset, syncedEnd: log.syncedOffset + 1 }));
    for (const replicaId of this.reporting) this.leader.progress({ topic: REPLICATED_TOPIC, replicaId, epoch: this.leader.epoch, logs });
  }

  /** Runs the clock in small steps until `promise` settles; its outcome. */
  async untilSettled<T>(promise: Promise<T>): Promise<T> {
    let done = false;
    const watched = promise.finally(() => {
      done = true;
    });
    watched.catch(() => undefined);
    for (let step = 0; step < STEPS_MAX && !done; step++) await this.clock.advanceAndSettle(STEP_MS);
    if (!done) throw new Error(`not settled after ${STEPS_MAX * STEP_MS} ms of simulated time`);
    return watched;
  }

  /** Leadership over: the leader steps down and the local logs close (the process ends; a log whose directory is gone may fail to). */
  async close(): Promise<void> {
    this.timer?.cancel();
    this.leader.stepDown(new FerryError('NOT_LEADER', `${LEADER_ID} stopped`));
    await Promise.allSettled([...this.logs.values()].map((log) => log.close()));
  }
}
