/**
 * One consistent look at the broker's state, taken from its describe calls: topics with their
 * storage, groups with lag, dead-letter topics with what waits in them. /metrics and the JSON API
 * (overview, dead letters) both read it, so the dashboard and Prometheus agree. In a cluster a
 * topic's groups are its leader's: another broker lists the topic (its own replica's figures)
 * without them.
 */
import { isFerryError } from '../errors.js';
import { DEAD_LETTER_SUFFIX } from '../broker/config.js';
import { REDRIVE_GROUP } from '../broker/redrive.js';
import type { BrokerApi, GroupInfo, TopicInfo } from '../broker/types.js';

export interface TopicView {
  info: TopicInfo;
  /** Messages stored now (end minus start offsets over partitions). */
  messages: number;
  /** Sum of the partitions' next offsets: every message ever appended (it never goes down). */
  appended: number;
  bytes: number;
  segments: number;
  deadLetter: boolean;
  /** Dead-letter topics: messages not yet redriven. */
  deadLetterWaiting: number;
  groups: GroupView[];
}

export interface GroupView extends GroupInfo {
  /** The broker's own bookkeeping group (redrive position of a dead-letter topic). */
  internal: boolean;
}

export interface BrokerSnapshot {
  topics: TopicView[];
  totals: {
    topics: number;
    partitions: number;
    messages: number;
    appended: number;
    bytes: number;
    segments: number;
    groups: number;
    lag: number;
    inFlight: number;
    deadLetterWaiting: number;
  };
}

/** A topic's groups; in a cluster only its leader has them (another broker shows none). */
function groupsOf(broker: BrokerApi, topic: string): GroupInfo[] {
  try {
    return broker.listGroups?.(topic) ?? [];
  } catch (error) {
    if (isFerryError(error, 'NOT_LEADER')) return [];
    throw error;
  }
}

export function takeSnapshot(broker: BrokerApi): BrokerSnapshot {
  const infos = broker.listTopics();
  const groupsByTopic = new Map<string, GroupView[]>();
  const deadLetterNames = new Set<string>();
  for (const info of infos) {
    const groups = groupsOf(broker, info.name).map((group) => ({ ...group, internal: group.name === REDRIVE_GROUP }));
    groupsByTopic.set(info.name, groups);
    for (const group of groups) if (!group.internal) deadLetterNames.add(group.config.deadLetterTopic);
  }
  const totals: BrokerSnapshot['totals'] = {
    topics: infos.length,
    partitions: 0,
    messages: 0,
    appended: 0,
    bytes: 0,
    segments: 0,
    groups: 0,
    lag: 0,
    inFlight: 0,
    deadLetterWaiting: 0,
  };
  const topics = infos.map((info): TopicView => {
    let messages = 0;
    let appended = 0;
    let bytes = 0;
    let segments = 0;
    for (const partition of info.partitions) {
      messages += partition.nextOffset - partition.startOffset;
      appended += partition.nextOffset;
      bytes += partition.bytes;
      segments += partition.segments;
    }
    const groups = groupsByTopic.get(info.name) ?? [];
    const deadLetter = info.name.endsWith(DEAD_LETTER_SUFFIX) || deadLetterNames.has(info.name);
    const redrive = groups.find((group) => group.internal);
    const deadLetterWaiting = deadLetter ? (redrive?.pending ?? messages) : 0;
    totals.partitions += info.partitions.length;
    totals.messages += messages;
    totals.appended += appended;
    totals.bytes += bytes;
    totals.segments += segments;
    totals.deadLetterWaiting += deadLetterWaiting;
    for (const group of groups) {
      if (group.internal) continue;
      totals.groups += 1;
      totals.lag += group.pending;
      totals.inFlight += group.inFlight;
    }
    return { info, messages, appended, bytes, segments, deadLetter, deadLetterWaiting, groups };
  });
  return { topics, totals };
}
