/**
 * Name patterns in permission rules: `*` matches any run of characters (including none, and
 * including '.'), `?` one character; everything else is literal. `orders.*` covers `orders.eu`
 * and `orders.eu.dlq`; `*` covers every name.
 */
const cache = new Map<string, RegExp>();
/** Compiled patterns kept; rules come from one users file, so this is never approached. */
const CACHE_MAX = 10_000;

export function matches(pattern: string, name: string): boolean {
  let regex = cache.get(pattern);
  if (regex === undefined) {
    const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    regex = new RegExp(`^${source}$`, 's');
    if (cache.size >= CACHE_MAX) cache.clear();
    cache.set(pattern, regex);
  }
  return regex.test(name);
}
