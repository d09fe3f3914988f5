/** Validation of topic and group names (they become directory names). */
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
