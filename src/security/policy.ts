/**
 * Who may do what. A user (or a role it has) holds allow and deny rules, each for one action
 * (publish, consume, admin, replicate, metrics) over a topic pattern and, for consume, a group pattern
 * (`metrics` is broker-wide: reading /metrics needs it on `*`, or admin on `*`). A request is
 * allowed when some allow rule of the user or its roles matches and no deny rule does: deny wins,
 * and without a matching allow the answer is no (deny by default).
 */
import { matches } from './patterns.js';

export const ACTIONS = ['publish', 'consume', 'admin', 'replicate', 'metrics'] as const;
export type Action = (typeof ACTIONS)[number];

export interface Rule {
  action: Action;
  /** Topic name pattern (admin rules: the topic the admin action is about; '*' for all). */
  topic: string;
  /** Consume rules: the group name pattern; absent means any group (and streams). */
  group?: string;
}

export interface Grants {
  allow: Rule[];
  deny: Rule[];
}

export interface Resource {
  topic: string;
  group?: string;
}

function ruleMatches(rule: Rule, action: Action, resource: Resource): boolean {
  if (rule.action !== action) return false;
  if (!matches(rule.topic, resource.topic)) return false;
  if (rule.group !== undefined) return resource.group !== undefined && matches(rule.group, resource.group);
  return true;
}

export function isAllowed(grants: readonly Grants[], action: Action, resource: Resource): boolean {
  let allowed = false;
  for (const grant of grants) {
    for (const rule of grant.deny) if (ruleMatches(rule, action, resource)) return false;
    if (!allowed) for (const rule of grant.allow) if (ruleMatches(rule, action, resource)) allowed = true;
  }
  return allowed;
}

/** Parses a CLI/config rule like `orders.*` or, for consume, `orders.*:billing-*` (topic:group). */
export function parseRule(action: Action, text: string): Rule {
  if (action === 'consume') {
    const colon = text.indexOf(':');
    if (colon >= 0) return { action, topic: text.slice(0, colon), group: text.slice(colon + 1) };
  }
  return { action, topic: text };
}

/**
 * Whether any action on `topic` is allowed: a topic is listed and described only to those who
 * may publish to it, consume from it (in any group), administer it or replicate it (a broker of the
 * cluster, which holds every record of it anyway, asks where its replicas are).
 */
export function isVisible(grants: readonly Grants[], topic: string): boolean {
  if (isAllowed(grants, 'publish', { topic }) || isAllowed(grants, 'admin', { topic }) || isAllowed(grants, 'consume', { topic })) return true;
  if (isAllowed(grants, 'replicate', { topic })) return true;
  // A consume rule limited to some groups still makes the topic visible, unless a group-less deny covers it.
  const deniedConsume = grants.some((grant) => grant.deny.some((rule) => rule.action === 'consume' && rule.group === undefined && matches(rule.topic, topic)));
  return !deniedConsume && grants.some((grant) => grant.allow.some((rule) => rule.action === 'consume' && matches(rule.topic, topic)));
}
