/**
 * Message priority for queue groups: a header `ferry-priority` of 0 (the default) to 9. A group
 * delivers the highest-priority message among those it has read ahead (up to
 * DISPATCH_READ_RECORDS_MAX per partition), oldest first within a level. Streams ignore priority:
 * they promise offset order.
 */
import { PRIORITY_HEADER, PRIORITY_MAX } from '../../protocol/priority.js';
import type { Header } from '../../storage/types.js';

/** The priority a record's headers give it; anything but '1'..'9' counts as 0. */
export function priorityOf(headers: readonly Header[]): number {
  for (const [name, value] of headers) {
    if (name !== PRIORITY_HEADER) continue;
    const level = value.length === 1 ? value.charCodeAt(0) - 48 : 0;
    return level >= 1 && level <= PRIORITY_MAX ? level : 0;
  }
  return 0;
}
