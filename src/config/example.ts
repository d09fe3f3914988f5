/**
 * The example configuration file (ferry.example.yaml): every key of the schema, in its order, with
 * its meaning, environment variable and accepted form as comments, set to its default — or
 * commented out when it has none (or one that depends on the machine). Generated from schema.ts by
 * `npm run example-config`, so it never drifts: a test regenerates it and compares, then loads it.
 */
import { describeKind, envName, FIELDS, type FieldSpec } from './schema.js';

/** Comment lines wrap before this column. */
const COMMENT_COLUMN_MAX = 100;
const INDENT = '  ';

const HEADER = `# Ferry's configuration: every key \`ferry serve --config FILE\` reads, with what it means, its
# environment variable and what it accepts. Each key is set to its default; a commented-out key has
# none (or one that depends on the machine). Settings apply as: defaults < this file < FERRY_*
# environment < flags (docs/CONFIG.md). Sizes take units ("128MiB"), durations too ("30s").
#
# Generated from src/config/schema.ts by \`npm run example-config\`: edit the schema, not this file.`;

const DECLARED_TOPICS = `
# Topics created at start when missing, each with any topicDefaults key (stored settings win).
# topics:
#   orders:
#     partitions: 3
#     durability: always
#     retention:
#       ageMs: 7d
`;

export function exampleConfig(fields: readonly FieldSpec[] = FIELDS): string {
  const out: string[] = [HEADER];
  let open: string[] = [];
  const closedSections = new Set<string>();
  for (const field of fields) {
    const parts = field.path.split('.');
    const sections = parts.slice(0, -1);
    let shared = 0;
    while (shared < open.length && shared < sections.length && open[shared] === sections[shared]) shared++;
    for (let depth = open.length; depth > shared; depth--) closedSections.add(open.slice(0, depth).join('.'));
    open = open.slice(0, shared);
    const opens = sections.length > shared;
    for (let depth = shared; depth < sections.length; depth++) {
      const section = sections.slice(0, depth + 1).join('.');
      // The schema lists a section's keys together; a section met again would be a second YAML key.
      if (closedSections.has(section)) throw new Error(`the schema lists ${section}'s keys apart (${field.path})`);
      out.push('', commented(`${INDENT.repeat(depth)}${sections[depth]}:`, depth, !sectionHasValue(fields, section)));
      open.push(sections[depth]!);
    }
    // A blank line before each key, but not right under its section's name.
    out.push(...fieldLines(field, parts[parts.length - 1]!, sections.length, fields).slice(opens ? 1 : 0));
  }
  return out.join('\n').replace(/^\n+/, '') + '\n' + DECLARED_TOPICS;
}

/** A section whose every key is commented out is commented out itself. */
function sectionHasValue(fields: readonly FieldSpec[], section: string): boolean {
  return fields.some((field) => field.path.startsWith(section + '.') && isSet(field));
}

function isSet(field: FieldSpec): boolean {
  return field.default !== undefined && field.defaultText === undefined;
}

/** `line` as a comment at its depth: `  # key: value`. */
function commented(line: string, depth: number, comment: boolean): string {
  if (!comment) return line;
  const indent = INDENT.repeat(depth);
  return `${indent}# ${line.slice(indent.length)}`;
}

function fieldLines(field: FieldSpec, key: string, depth: number, fields: readonly FieldSpec[]): string[] {
  const indent = INDENT.repeat(depth);
  const lines = [''];
  for (const line of wrap(field.doc, COMMENT_COLUMN_MAX - indent.length - 2)) lines.push(`${indent}# ${line}`);
  for (const line of wrap(`${envName(field.path)}: ${describeKind(field.kind)}.`, COMMENT_COLUMN_MAX - indent.length - 2)) lines.push(`${indent}# ${line}`);
  const value = isSet(field) ? yamlValue(field.default) : exampleValue(field) + (field.defaultText === undefined ? '' : `   # default: ${field.defaultText}`);
  // Inside a commented-out section the key is commented already by being there.
  const sectionCommented = depth > 0 && !sectionHasValue(fields, field.path.slice(0, field.path.lastIndexOf('.')));
  lines.push(commented(`${indent}${key}: ${value}`, depth, !isSet(field) || sectionCommented));
  return lines;
}

/** An illustration for a key without a default (shown commented out). */
function exampleValue(field: FieldSpec): string {
  const kind = field.kind;
  switch (kind.type) {
    case 'string':
      return yamlValue(kind.example);
    case 'int':
      if (kind.example !== undefined) return String(kind.example);
      return kind.unit === 'ms' ? '7d' : kind.unit === 'bytes' ? '10GiB' : String(Math.min(kind.max, Math.max(kind.min, 1_000_000)));
    case 'enum':
      return yamlValue(kind.values[0]);
    case 'bool':
      return 'false';
    case 'intList':
      return '[]';
    case 'stringList':
      return yamlValue(kind.example.split(','));
  }
}

/** A default as YAML: strings quoted (JSON strings are YAML), lists in flow style. */
function yamlValue(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(yamlValue).join(', ')}]`;
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

/** Words into lines of at most `width` characters (a longer word keeps its own line). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}
