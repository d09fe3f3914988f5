/**
 * MQTT topic names and filters, and how they map onto Ferry topics: the first level of a topic
 * name is the Ferry topic (`sensors/kitchen/temp` is stored in `sensors`), the whole name rides in
 * the `mqtt-topic` header. A filter reads the Ferry topic named by its first level, or every topic
 * when that level is a wildcard (`+`, `#`); `$share/<group>/<filter>` is a shared subscription.
 */
import { createHash } from 'node:crypto';
import { NAME_BYTES_MAX, NAME_PATTERN } from '../../protocol/limits.js';

/** Why a topic name or filter is refused, or null when it is fine. */
export function topicNameProblem(name: string, bytesMax: number): string | null {
  if (name.length === 0) return 'empty topic name';
  if (Buffer.byteLength(name) > bytesMax) return `topic name longer than ${bytesMax} bytes`;
  if (name.includes('+') || name.includes('#')) return 'a topic name may not hold wildcards';
  if (name.includes('\u0000')) return 'a topic name may not hold U+0000';
  return null;
}

export function topicFilterProblem(filter: string, bytesMax: number): string | null {
  if (filter.length === 0) return 'empty topic filter';
  if (Buffer.byteLength(filter) > bytesMax) return `topic filter longer than ${bytesMax} bytes`;
  if (filter.includes('\u0000')) return 'a topic filter may not hold U+0000';
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return "'#' must be a whole level and the last";
    if (level.includes('+') && level !== '+') return "'+' must be a whole level";
  }
  return null;
}

/** The Ferry topic an MQTT topic name is stored in (its first level), or null when that cannot be a Ferry topic name. */
export function ferryTopicOf(mqttTopic: string): string | null {
  const slash = mqttTopic.indexOf('/');
  const first = slash < 0 ? mqttTopic : mqttTopic.slice(0, slash);
  return isFerryName(first) ? first : null;
}

export function isFerryName(name: string): boolean {
  return name.length > 0 && Buffer.byteLength(name) <= NAME_BYTES_MAX && NAME_PATTERN.test(name) && name !== '.' && name !== '..';
}

/** Whether `topic` matches `filter` (MQTT-4.7): `+` one level, `#` this level and all below; `$` topics only by a literal first level. */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
  const filterLevels = filter.split('/');
  const topicLevels = topic.split('/');
  for (let i = 0; i < filterLevels.length; i++) {
    const level = filterLevels[i]!;
    if (level === '#') return true;
    if (i >= topicLevels.length) return false;
    if (level !== '+' && level !== topicLevels[i]) return false;
  }
  return filterLevels.length === topicLevels.length;
}

/** A subscription's filter, with its share group when it is `$share/<group>/<filter>`. */
export interface ParsedFilter {
  filter: string;
  shareGroup: string | null;
}

/** Splits a shared subscription's group from its filter; null when `$share/` is malformed. */
export function parseFilter(raw: string): ParsedFilter | null {
  if (!raw.startsWith('$share/')) return { filter: raw, shareGroup: null };
  const rest = raw.slice('$share/'.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return null;
  const group = rest.slice(0, slash);
  if (group.includes('+') || group.includes('#')) return null;
  return { filter: rest.slice(slash + 1), shareGroup: group };
}

/** The Ferry topic a filter reads, or null when its first level is a wildcard (every topic). */
export function ferryTopicOfFilter(filter: string): string | null {
  const slash = filter.indexOf('/');
  const first = slash < 0 ? filter : filter.slice(0, slash);
  return first === '+' || first === '#' ? null : first;
}

/** Whether the filter can match a Ferry topic's messages at all (its first level against the topic's name). */
export function filterReaches(filter: string, ferryTopic: string): boolean {
  const first = ferryTopicOfFilter(filter);
  return first === null ? !ferryTopic.startsWith('$') : first === ferryTopic;
}

/** Group names must be Ferry names: a readable prefix of the parts, then a digest that keeps distinct inputs apart. */
function groupName(kind: string, parts: readonly string[]): string {
  const digest = createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 16);
  const readable = parts[0]!.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 48);
  return `${kind}.${readable}.${digest}`;
}

/** The durable queue group of a persistent session's subscription: one per client id and filter. */
export function sessionGroupName(clientId: string, filter: string): string {
  return groupName('mqtt', [clientId, filter]);
}

/** The queue group of a shared subscription: every member of `$share/<group>/<filter>` competes in it. */
export function shareGroupName(shareGroup: string, filter: string): string {
  return groupName('mqtt-share', [shareGroup, filter]);
}
