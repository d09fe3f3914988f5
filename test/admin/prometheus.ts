/**
 * A strict parser of the Prometheus text exposition format (version 0.0.4), enough to check what
 * /metrics serves: HELP and TYPE per family, samples with escaped label values, histogram buckets.
 * It throws on anything malformed, so a test that parses also checks the format.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const SUFFIXES = ['_bucket', '_sum', '_count'];

export function parsePrometheus(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const lines = text.split('\n');
  lines.forEach((line, index) => {
    const where = `line ${index + 1}: ${line}`;
    if (line === '') return;
    if (line.startsWith('# HELP ')) {
      const [name, ...help] = line.slice(7).split(' ');
      if (!METRIC_NAME.test(name!)) throw new Error(`bad metric name, ${where}`);
      family(families, name!).help = help.join(' ');
      return;
    }
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ');
      if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(type!)) throw new Error(`bad type, ${where}`);
      const entry = family(families, name!);
      if (entry.samples.length > 0) throw new Error(`TYPE after samples, ${where}`);
      entry.type = type as Family['type'];
      return;
    }
    if (line.startsWith('#')) return;
    const sample = parseSample(line, where);
    const base = familyName(families, sample.name);
    if (base === undefined) throw new Error(`sample without a TYPE line, ${where}`);
    families.get(base)!.samples.push(sample);
  });
  for (const entry of families.values()) if (entry.type === 'histogram') checkHistogram(entry);
  return families;
}

function family(families: Map<string, Family>, name: string): Family {
  let entry = families.get(name);
  if (entry === undefined) {
    entry = { name, type: 'untyped', help: '', samples: [] };
    families.set(name, entry);
  }
  return entry;
}

function familyName(families: Map<string, Family>, sampleName: string): string | undefined {
  if (families.has(sampleName)) return sampleName;
  for (const suffix of SUFFIXES) {
    if (sampleName.endsWith(suffix) && families.get(sampleName.slice(0, -suffix.length))?.type === 'histogram') return sampleName.slice(0, -suffix.length);
  }
  return undefined;
}

function parseSample(line: string, where: string): Sample {
  const brace = line.indexOf('{');
  const space = line.indexOf(' ');
  const nameEnd = brace >= 0 && brace < space ? brace : space;
  const name = line.slice(0, nameEnd);
  if (!METRIC_NAME.test(name)) throw new Error(`bad sample name, ${where}`);
  const labels: Record<string, string> = {};
  let position = nameEnd;
  if (line[position] === '{') {
    position += 1;
    while (line[position] !== '}') {
      const equals = line.indexOf('=', position);
      const label = line.slice(position, equals);
      if (!LABEL_NAME.test(label) || line[equals + 1] !== '"') throw new Error(`bad label, ${where}`);
      let value = '';
      let i = equals + 2;
      for (; i < line.length && line[i] !== '"'; i++) {
        if (line[i] === '\\') {
          const escaped = line[++i];
          value += escaped === 'n' ? '\n' : escaped;
        } else value += line[i];
      }
      if (i >= line.length) throw new Error(`unterminated label value, ${where}`);
      labels[label] = value;
      position = i + 1;
      if (line[position] === ',') position += 1;
      else if (line[position] !== '}') throw new Error(`bad label separator, ${where}`);
    }
    position += 1;
  }
  const [valueText, timestamp, ...rest] = line.slice(position).trim().split(' ');
  if (rest.length > 0 || (timestamp !== undefined && !/^-?\d+$/.test(timestamp))) throw new Error(`bad sample tail, ${where}`);
  const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : valueText === 'NaN' ? NaN : Number(valueText);
  if (valueText === undefined || (Number.isNaN(value) && valueText !== 'NaN')) throw new Error(`bad value, ${where}`);
  return { name, labels, value };
}

function checkHistogram(entry: Family): void {
  const series = new Map<string, Sample[]>();
  for (const sample of entry.samples) {
    const { le: _le, ...rest } = sample.labels;
    const key = JSON.stringify(rest);
    series.set(key, [...(series.get(key) ?? []), sample]);
  }
  for (const [key, samples] of series) {
    const buckets = samples.filter((s) => s.name.endsWith('_bucket'));
    let previous = -Infinity;
    let previousCount = 0;
    for (const bucket of buckets) {
      const le = bucket.labels['le'] === '+Inf' ? Infinity : Number(bucket.labels['le']);
      if (!(le > previous)) throw new Error(`${entry.name}${key}: buckets out of order`);
      if (bucket.value < previousCount) throw new Error(`${entry.name}${key}: bucket counts decrease`);
      previous = le;
      previousCount = bucket.value;
    }
    const count = samples.find((s) => s.name.endsWith('_count'));
    if (previous !== Infinity || count === undefined || count.value !== previousCount) throw new Error(`${entry.name}${key}: +Inf bucket must equal _count`);
  }
}

/** The value of one series (labels must match exactly); undefined when absent. */
export function valueOf(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  const base = familyName(families, name) ?? name;
  const sample = families.get(base)?.samples.find((s) => s.name === name && JSON.stringify(sortKeys(s.labels)) === JSON.stringify(sortKeys(labels)));
  return sample?.value;
}

function sortKeys(labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
}
