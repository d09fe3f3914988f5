/**
 * Which Ferry topic an MQTT topic name is stored in, and which Ferry topics a filter reads. By
 * default the first level names the Ferry topic (`sensors/kitchen/temp` → `sensors`); the
 * operator's prefixes (`mqtt.topicMap`, entries `<MQTT prefix>=<Ferry topic>`) map every name at
 * or below a prefix elsewhere (`home/livingroom=livingroom`: `home/livingroom/lamp` → `livingroom`).
 * A prefix matches whole levels; the longest matching prefix wins. Publishes, wills and retained
 * publishes are stored where their name maps; a filter reads the one topic its prefix maps to when
 * it lies wholly under a prefix, else its first level's topic (every topic for a wildcard) and
 * each mapped topic whose prefix it can match.
 */
import { ferryTopicOf, ferryTopicOfFilter, filterReaches, isFerryName } from './topics.js';

/** `mqtt.topicMap` entries at most: a handful of prefixes is the use; each is checked per publish. */
export const MQTT_TOPIC_MAP_ENTRIES_MAX = 256;
/** An entry: an MQTT prefix without wildcards, `=`, a Ferry topic name (so the config refuses what TopicMap would). */
export const MQTT_TOPIC_MAP_ENTRY_PATTERN = /^[^=+#\u0000,]{1,1024}=(?!\.{1,2}$)[A-Za-z0-9._-]{1,200}$/;

interface Mapping {
  prefix: string;
  levels: string[];
  ferryTopic: string;
}

export class TopicMap {
  /** Longest prefix first, so the first match is the longest. */
  private readonly mappings: Mapping[];

  constructor(mappings: ReadonlyArray<{ prefix: string; ferryTopic: string }> = []) {
    for (const { prefix, ferryTopic } of mappings) {
      if (prefix === '' || prefix.includes('+') || prefix.includes('#')) throw new Error(`MQTT topic prefix '${prefix}' must be non-empty and hold no wildcard`);
      if (!isFerryName(ferryTopic)) throw new Error(`'${ferryTopic}' (mapped from '${prefix}') is not a Ferry topic name`);
    }
    this.mappings = mappings
      .map(({ prefix, ferryTopic }) => ({ prefix, levels: prefix.split('/'), ferryTopic }))
      .sort((a, b) => b.levels.length - a.levels.length || b.prefix.length - a.prefix.length);
  }

  /** Parses `mqtt.topicMap` entries (`<prefix>=<Ferry topic>`, split at the last `=`). */
  static parse(entries: readonly string[]): TopicMap {
    return new TopicMap(
      entries.map((entry) => {
        const equals = entry.lastIndexOf('=');
        if (equals <= 0) throw new Error(`MQTT topic map entry '${entry}' is not <prefix>=<Ferry topic>`);
        return { prefix: entry.slice(0, equals), ferryTopic: entry.slice(equals + 1) };
      }),
    );
  }

  get size(): number {
    return this.mappings.length;
  }

  /** The Ferry topic a topic name is stored in, or null when its first level cannot be a Ferry topic name. */
  ferryTopicOf(name: string): string | null {
    for (const mapping of this.mappings) if (name === mapping.prefix || name.startsWith(`${mapping.prefix}/`)) return mapping.ferryTopic;
    return ferryTopicOf(name);
  }

  /** The MQTT name a message without an `mqtt-topic` header (a native publish) reaches MQTT under: a mapped topic's prefix, else its own name. */
  mqttNameOf(ferryTopic: string): string {
    for (const mapping of this.mappings) if (mapping.ferryTopic === ferryTopic) return mapping.prefix;
    return ferryTopic;
  }

  /**
   * The Ferry topics a filter reads: the mapped one when the filter lies wholly under a prefix;
   * else its first level's topic (for a first-level wildcard, every topic of `existing`), with
   * each mapped topic whose prefix it can match (then the first level's topic only if it exists).
   */
  topicsOfFilter(filter: string, existing: () => readonly string[]): string[] {
    const levels = filter.split('/');
    for (const mapping of this.mappings) if (liesUnder(levels, mapping.levels)) return [mapping.ferryTopic];
    const mapped = this.mappings.filter((mapping) => reachesPrefix(levels, mapping.levels)).map((mapping) => mapping.ferryTopic);
    const first = ferryTopicOfFilter(filter);
    let base: string[];
    if (first === null) base = existing().filter((name) => filterReaches(filter, name));
    else if (mapped.length === 0) base = [first];
    else base = existing().includes(first) ? [first] : [];
    return [...new Set([...base, ...mapped])];
  }
}

/** The filter's first levels are the prefix's, literally: every name it matches is at or below the prefix. */
function liesUnder(filter: readonly string[], prefix: readonly string[]): boolean {
  if (filter.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (filter[i] !== prefix[i]) return false;
  return true;
}

/** The filter can match some name at or below the prefix. */
function reachesPrefix(filter: readonly string[], prefix: readonly string[]): boolean {
  for (let i = 0; i < prefix.length; i++) {
    const level = filter[i];
    if (level === '#') return true;
    if (level === undefined) return false;
    if (level !== '+' && level !== prefix[i]) return false;
  }
  return true;
}
