/**
 * What cluster mode needs from the local broker (src/broker): the files of a replica, and opening
 * or closing a topic's service as leadership comes and goes. The broker implements it; replication
 * never reaches into the broker's modules.
 */
import type { LogOptions, LogRole } from '../storage/types.js';

export interface LocalTopics {
  /** Writes the topic's directory and settings for a replica (no service yet). Idempotent. */
  prepare(name: string, config: Record<string, unknown>): Promise<void>;
  /** The ids of the logs found on disk for a topic (`p<N>`, `d`, `g/<group>`). */
  localLogIds(name: string): Promise<string[]>;
  /** Where and how the log `logId` of a topic is stored. */
  logOptions(name: string, logId: string): LogOptions;
  /** Starts the topic's service (this broker leads it): groups, streams, delays, dedup; its logs come from the log factory. */
  open(name: string): Promise<void>;
  /**
   * Before a controlled handover: no new deliveries, and up to `timeoutMs` for those in flight to
   * be settled by their consumers. Publishes go on.
   */
  drain(name: string, timeoutMs: number): Promise<void>;
  /**
   * Stops the topic's service (leadership moved): subscribers are told why, and state derived from
   * the logs (group and delay indexes) is dropped, to be rebuilt from the replicated logs when this
   * broker leads again. The logs themselves stay open with replication.
   */
  close(name: string, reason: string): Promise<void>;
  /** Removes the topic's files (deleted from the cluster). */
  remove(name: string): Promise<void>;
}

/** The id of a topic's log in replication frames. */
export function logIdOf(role: LogRole): string {
  switch (role.kind) {
    case 'partition':
      return `p${role.partition}`;
    case 'delay':
      return 'd';
    case 'group-journal':
      return `g/${role.group}`;
  }
}

/** The role of a log id, or null for an id this version does not know. */
export function roleOf(topic: string, logId: string): LogRole | null {
  const partition = /^p(\d+)$/.exec(logId);
  if (partition !== null) return { kind: 'partition', topic, partition: Number(partition[1]) };
  if (logId === 'd') return { kind: 'delay', topic };
  if (logId.startsWith('g/') && logId.length > 2) return { kind: 'group-journal', topic, group: logId.slice(2) };
  return null;
}
