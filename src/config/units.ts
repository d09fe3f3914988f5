/**
 * Human units in configuration values: sizes ("128MiB") for keys ending in Bytes, durations
 * ("30s") for keys ending in Ms. Plain integers are always accepted and mean bytes or milliseconds,
 * so a JSON file written by a program never needs the suffixes.
 */

const KiB = 1024;

/** Binary suffixes are what the limits are written in; decimal ones are accepted because people type them. */
const SIZE_FACTORS: Record<string, number> = {
  b: 1,
  kib: KiB,
  mib: KiB ** 2,
  gib: KiB ** 3,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
};

const DURATION_FACTORS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const NUMBER_WITH_UNIT = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/;

export type Unit = 'bytes' | 'ms';

/**
 * An integer from a number or a string with an optional unit suffix; undefined when the text is
 * not of that form (the caller reports the expected form with the key's name).
 */
export function parseWithUnit(value: unknown, unit: Unit | undefined): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = NUMBER_WITH_UNIT.exec(value);
  if (match === null) return undefined;
  const [, digits, suffix] = match;
  const factors = unit === 'bytes' ? SIZE_FACTORS : unit === 'ms' ? DURATION_FACTORS : { '': 1 };
  const factor = suffix === '' ? 1 : factors[suffix!.toLowerCase()];
  if (factor === undefined) return undefined;
  const result = Number(digits) * factor;
  return Number.isSafeInteger(result) ? result : undefined;
}

/** An example of the accepted form, for error messages and docs. */
export function unitExample(unit: Unit | undefined): string {
  if (unit === 'bytes') return 'bytes as an integer or with a suffix like "64KiB", "128MiB", "1GiB"';
  if (unit === 'ms') return 'milliseconds as an integer or with a suffix like "500ms", "30s", "5m", "2h", "7d"';
  return 'an integer';
}

/** 134217728 → "128MiB", 30000 → "30s": how defaults are shown in docs and --print-config comments. */
export function formatWithUnit(value: number, unit: Unit | undefined): string {
  if (unit === 'bytes') {
    for (const [suffix, factor] of [['GiB', KiB ** 3], ['MiB', KiB ** 2], ['KiB', KiB]] as const) {
      if (value >= factor && value % factor === 0) return `${value / factor}${suffix}`;
    }
    return String(value);
  }
  if (unit === 'ms') {
    for (const [suffix, factor] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
      if (value >= factor && value % factor === 0) return `${value / factor}${suffix}`;
    }
    return `${value}ms`;
  }
  return String(value);
}
