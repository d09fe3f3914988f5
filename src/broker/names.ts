/** Validation of topic and group names (they become directory names), and the names the broker keeps for itself. */
import { FerryError } from '../errors.js';
import { NAME_BYTES_MAX, NAME_PATTERN } from '../protocol/limits.js';

export function checkName(kind: 'topic' | 'group' | 'dead-letter topic', name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new FerryError('INVALID_ARGUMENT', `${kind} name must be a non-empty string`);
  }
  if (Buffer.byteLength(name) > NAME_BYTES_MAX) {
    throw new FerryError('INVALID_ARGUMENT', `${kind} name is longer than ${NAME_BYTES_MAX} bytes`);
  }
  if (!NAME_PATTERN.test(name) || name === '.' || name === '..') {
    throw new FerryError('INVALID_ARGUMENT', `${kind} name '${name}' may only use letters, digits, '.', '_' and '-'`);
  }
  return name;
}

/** Group names starting with this (any letter case) are the broker's own, e.g. redrive's `ferry-redrive`. */
export const RESERVED_GROUP_PREFIX = 'ferry-';

/** Whether a group name is one the broker keeps for itself. */
export function isReservedGroup(name: string): boolean {
  return name.slice(0, RESERVED_GROUP_PREFIX.length).toLowerCase() === RESERVED_GROUP_PREFIX;
}

/** A group name a subscriber may use: valid, and not the broker's (INVALID_ARGUMENT otherwise). */
export function checkClientGroup(name: unknown): string {
  const checked = checkName('group', name);
  if (isReservedGroup(checked)) {
    throw new FerryError('INVALID_ARGUMENT', `group name '${checked}' is reserved: names starting with ${RESERVED_GROUP_PREFIX} are the broker's own groups`, {
      detail: { group: checked, reason: 'reserved_group' },
    });
  }
  return checked;
}
