/**
 * The `ferry-` header namespace belongs to the broker: it writes message ids, dead-letter notes,
 * delay bookkeeping and group snapshots there, and reads them back as facts. A client may set only
 * the documented inputs (`ferry-priority`); any other `ferry-*` header in a publish is refused with
 * INVALID_ARGUMENT, over every way in. Brokers of a cluster write broker headers to each other
 * through the `asBroker` publish, which needs the replicate grant (docs/SECURITY.md).
 */
import { FerryError } from '../errors.js';
import type { WireHeader } from './messages.js';
import { PRIORITY_HEADER } from './priority.js';

/** Header names starting with this (in any letter case) are the broker's. */
export const RESERVED_HEADER_PREFIX = 'ferry-';
/** The `ferry-*` headers a client may set itself: the broker reads them as requests and checks them. */
export const CLIENT_SETTABLE_HEADERS: ReadonlySet<string> = new Set([PRIORITY_HEADER]);

/** Whether a header name is in the broker's namespace. */
export function isReservedHeader(name: string): boolean {
  return name.length >= RESERVED_HEADER_PREFIX.length && name.slice(0, RESERVED_HEADER_PREFIX.length).toLowerCase() === RESERVED_HEADER_PREFIX;
}

/** INVALID_ARGUMENT naming the first broker header a client may not set, or null when there is none. */
export function reservedHeaderRefusal(headers: readonly WireHeader[] | undefined): FerryError | null {
  if (headers === undefined) return null;
  for (const [name] of headers) {
    if (!isReservedHeader(name) || CLIENT_SETTABLE_HEADERS.has(name)) continue;
    return new FerryError(
      'INVALID_ARGUMENT',
      `header ${JSON.stringify(name.slice(0, 64))} is reserved: names starting with ${RESERVED_HEADER_PREFIX} are written by the broker (a client may set only ${[...CLIENT_SETTABLE_HEADERS].join(', ')})`,
      { detail: { header: name.slice(0, 64), reason: 'reserved_header' } },
    );
  }
  return null;
}
