/**
 * The request path, decoded and normalised once, before the login check, the gRPC dispatch or the
 * admin router sees it: no spelling of a route can pass a check written for another one.
 * The rest: docs/INTERNALS.md.
 */

export type RequestTarget = { ok: true; url: string; path: string } | { ok: false; reason: string };

/** `scheme://authority` of an absolute-form request target (RFC 9112, 3.2.2), as proxies send it. */
const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i;
/** A percent-escape: `%` and two hex digits. */
const ESCAPE = /%([0-9a-fA-F]{2})/g;
/** Characters no decoded segment may hold: they would be read as a separator, or cut a string short. */
const AMBIGUOUS = /[/\\\u0000-\u001f\u007f]/;
/** What a request target may hold unencoded (RFC 3986): anything else must come percent-encoded. */
const PRINTABLE_ASCII = /^[\u0021-\u007e]*$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });
/**
 * A path already in canonical form: non-empty segments of characters encodeURIComponent leaves
 * alone, none starting with a dot (so no `.` or `..`). The normalisation would return it unchanged,
 * so it is taken as it is, without splitting it.
 */
const CANONICAL_PATH = /^(?:\/[A-Za-z0-9\-_!~*'()][A-Za-z0-9\-_.!~*'()]*)+$/;

/** The canonical form of a request's target, or why it has none (to be answered 400). */
export function normaliseRequestTarget(raw: string | undefined): RequestTarget {
  let target = raw ?? '/';
  const fastQueryAt = target.indexOf('?');
  const fastPath = fastQueryAt < 0 ? target : target.slice(0, fastQueryAt);
  if (CANONICAL_PATH.test(fastPath)) return { ok: true, url: target, path: fastPath };
  const absolute = ABSOLUTE_FORM.exec(target);
  if (absolute !== null) target = target.slice(absolute[0].length) || '/';
  const queryAt = target.indexOf('?');
  const rawPath = queryAt < 0 ? target : target.slice(0, queryAt);
  const query = queryAt < 0 ? '' : target.slice(queryAt);
  if (!rawPath.startsWith('/')) return { ok: false, reason: 'the request path must start with /' };
  if (rawPath.includes('#')) return { ok: false, reason: 'the request path may not contain #' };
  const segments: string[] = [];
  for (const rawSegment of rawPath.split('/')) {
    const segment = decodeSegment(rawSegment);
    if (segment === null) return { ok: false, reason: `the path segment "${rawSegment.slice(0, 64)}" is not valid percent-encoded UTF-8` };
    if (AMBIGUOUS.test(segment)) return { ok: false, reason: `the path segment "${rawSegment.slice(0, 64)}" holds an encoded /, a \\ or a control character` };
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (segments.pop() === undefined) return { ok: false, reason: 'the request path climbs above the root' };
      continue;
    }
    segments.push(segment);
  }
  const path = '/' + segments.map(encodeURIComponent).join('/');
  return { ok: true, url: path + query, path };
}

/** The segment with its escapes decoded, or null when they are malformed, not UTF-8, or the segment holds raw bytes outside printable ASCII. */
function decodeSegment(raw: string): string | null {
  if (!PRINTABLE_ASCII.test(raw)) return null;
  if (!raw.includes('%')) return raw;
  if (raw.replace(ESCAPE, '').includes('%')) return null;
  const bytes = Buffer.from(raw.replace(ESCAPE, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1');
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}
