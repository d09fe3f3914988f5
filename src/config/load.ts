/**
 * Builds the effective configuration of `ferry serve` from four layers, each overriding the one
 * before: defaults (schema.ts) < config file (JSON or YAML) < FERRY_* environment variables <
 * command-line flags. Everything is checked before the broker opens anything: an unknown key or a
 * bad value is a ConfigError naming the key, where it came from and the form expected.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { createRequire } from 'node:module';
import { NAME_BYTES_MAX, NAME_PATTERN } from '../protocol/limits.js';
import { FerryError } from '../errors.js';
import { describeKind, envName, FIELDS, TOPIC_FIELDS, type FerryConfig, type FieldSpec, type TopicSettings } from './schema.js';
import { parseWithUnit } from './units.js';

const ENV_PREFIX = 'FERRY_';
/** Edit distance under which an unknown key is probably a typo of a known one. */
const TYPO_DISTANCE_MAX = 3;
/** Declared topics at most: each is created at start; thousands belong in automation, not a file. */
const DECLARED_TOPICS_MAX = 10_000;

export class ConfigError extends FerryError {
  constructor(
    message: string,
    readonly key: string,
    readonly source: string,
  ) {
    super('INVALID_ARGUMENT', `config: ${message}`, { detail: { key, source } });
    this.name = 'ConfigError';
  }
}

export interface ConfigSources {
  /** Path of a ferry.json / ferry.yaml file; also taken from FERRY_CONFIG. */
  file?: string | undefined;
  /** Usually process.env; only FERRY_* names are read. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Values from flags, by config path (`server.port` → "7700"); they win over everything. */
  flags?: Readonly<Record<string, string>>;
}

interface RawValue {
  value: unknown;
  source: string;
}

const FIELD_BY_PATH = new Map(FIELDS.map((field) => [field.path, field]));
const TOPIC_FIELD_BY_PATH = new Map(TOPIC_FIELDS.map((field) => [field.path, field]));
const FIELD_BY_ENV = new Map(FIELDS.map((field) => [envName(field.path), field]));
/**
 * Environment names in a configuration section (`FERRY_SERVER_…`, `FERRY_LOG_…`): one that is not
 * a key is a typo and an error. Other FERRY_* names belong to other tools (FERRY_URL for client
 * commands, test and chaos harness seeds) and are left alone.
 */
const ENV_SECTION_PREFIXES = [...new Set(FIELDS.map((field) => envName(field.path.includes('.') ? field.path.slice(0, field.path.indexOf('.')) : field.path)))];

function isConfigEnvName(name: string): boolean {
  return ENV_SECTION_PREFIXES.some((prefix) => name === prefix || name.startsWith(prefix + '_'));
}

/** The YAML parser is loaded only for a YAML file: most brokers start without one, and it costs memory. */
const requireModule = createRequire(import.meta.url);

function parseYaml(text: string): unknown {
  return (requireModule('yaml') as typeof import('yaml')).parse(text);
}

export function loadConfig(sources: ConfigSources = {}): FerryConfig {
  const env = sources.env ?? {};
  const raw = new Map<string, RawValue>();
  let topics: Record<string, Partial<TopicSettings>> = {};

  const file = sources.file ?? nonEmpty(env['FERRY_CONFIG']);
  if (file !== undefined) {
    const parsed = readConfigFile(file);
    const { topics: declared, ...rest } = parsed;
    flattenInto(raw, rest, '', file);
    if (declared !== undefined) topics = readTopics(declared, file);
  }
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || !isConfigEnvName(name) || value === undefined) continue;
    const field = FIELD_BY_ENV.get(name);
    if (field === undefined) {
      throw new ConfigError(`unknown environment variable ${name}${suggest(name, [...FIELD_BY_ENV.keys()])}`, name, 'environment');
    }
    raw.set(field.path, { value, source: `environment variable ${name}` });
  }
  for (const [path, value] of Object.entries(sources.flags ?? {})) {
    if (!FIELD_BY_PATH.has(path)) throw new ConfigError(`unknown key "${path}" in flags${suggest(path, [...FIELD_BY_PATH.keys()])}`, path, 'flags');
    raw.set(path, { value, source: 'flags' });
  }

  const config: Record<string, unknown> = {};
  for (const field of FIELDS) {
    const given = raw.get(field.path);
    const value = given === undefined ? field.default : coerce(field, given.value, field.path, given.source);
    if (value !== undefined) setPath(config, field.path, value);
  }
  // Objects whose every field is optional (retention) exist even when empty.
  setPath(config, 'topicDefaults.retention', getPath(config, 'topicDefaults.retention') ?? {});
  // An instance on "any free port" (tests, several brokers side by side) gets any free admin port
  // too, unless one is named: a fixed default would collide between such instances.
  if (getPath(config, 'server.port') === 0 && !raw.has('http.port')) setPath(config, 'http.port', 0);
  config['topics'] = topics;
  const result = config as unknown as FerryConfig;
  checkCrossField(result);
  return result;
}

/** The effective configuration as a ferry.json document (`ferry serve --print-config`). */
export function formatConfig(config: FerryConfig): string {
  return JSON.stringify(config, null, 2) + '\n';
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`, '', path);
  }
  let parsed: unknown;
  try {
    parsed = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new ConfigError(`${path} is not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${(error as Error).message}`, '', path);
  }
  if (parsed === null || parsed === undefined) return {};
  if (!isPlainObject(parsed)) throw new ConfigError(`${path} must hold an object of settings at the top level`, '', path);
  return parsed;
}

/** Records every leaf of a file's object under its dotted path; unknown keys are errors. */
function flattenInto(raw: Map<string, RawValue>, object: Record<string, unknown>, prefix: string, source: string): void {
  for (const [key, value] of Object.entries(object)) {
    const path = prefix + key;
    if (FIELD_BY_PATH.has(path)) {
      raw.set(path, { value, source });
    } else if (FIELDS.some((field) => field.path.startsWith(path + '.'))) {
      if (!isPlainObject(value)) throw new ConfigError(`"${path}" in ${source} must be an object of settings`, path, source);
      flattenInto(raw, value, path + '.', source);
    } else {
      throw new ConfigError(`unknown key "${path}" in ${source}${suggest(path, [...FIELD_BY_PATH.keys(), 'topics'])}`, path, source);
    }
  }
}

/** `topics: { orders: { partitions: 3 } }`: topics to create at start when missing. */
function readTopics(declared: unknown, source: string): Record<string, Partial<TopicSettings>> {
  if (!isPlainObject(declared)) throw new ConfigError(`"topics" in ${source} must map topic names to their settings`, 'topics', source);
  const names = Object.keys(declared);
  if (names.length > DECLARED_TOPICS_MAX) throw new ConfigError(`"topics" declares more than ${DECLARED_TOPICS_MAX} topics`, 'topics', source);
  const topics: Record<string, Partial<TopicSettings>> = {};
  for (const name of names) {
    const key = `topics.${name}`;
    if (!NAME_PATTERN.test(name) || name === '.' || name === '..' || Buffer.byteLength(name) > NAME_BYTES_MAX) {
      throw new ConfigError(`topic name "${name}" in ${source} may only use letters, digits, '.', '_' and '-' (at most ${NAME_BYTES_MAX} bytes)`, key, source);
    }
    const settings = declared[name] ?? {};
    if (!isPlainObject(settings)) throw new ConfigError(`"${key}" in ${source} must be an object of topic settings (or empty)`, key, source);
    const raw = new Map<string, RawValue>();
    flattenTopic(raw, settings, '', key, source);
    const topic: Record<string, unknown> = {};
    for (const [path, given] of raw) setPath(topic, path, coerce(TOPIC_FIELD_BY_PATH.get(path)!, given.value, `${key}.${path}`, source));
    topics[name] = topic as Partial<TopicSettings>;
  }
  return topics;
}

function flattenTopic(raw: Map<string, RawValue>, object: Record<string, unknown>, prefix: string, key: string, source: string): void {
  for (const [name, value] of Object.entries(object)) {
    const path = prefix + name;
    if (TOPIC_FIELD_BY_PATH.has(path)) {
      raw.set(path, { value, source });
    } else if (path === 'retention' && isPlainObject(value)) {
      flattenTopic(raw, value, 'retention.', key, source);
    } else {
      const known = [...TOPIC_FIELD_BY_PATH.keys()];
      throw new ConfigError(`unknown key "${key}.${path}" in ${source}${suggest(path, known)}`, `${key}.${path}`, source);
    }
  }
}

/** Turns a file value or an env/flag string into the field's type, or throws naming the key. */
function coerce(field: FieldSpec, value: unknown, key: string, source: string): unknown {
  const kind = field.kind;
  const fail = (): never => {
    throw new ConfigError(`${key} (from ${source}) must be ${describeKind(kind)}, got ${JSON.stringify(value)}`, key, source);
  };
  switch (kind.type) {
    case 'int': {
      const number = parseWithUnit(value, kind.unit);
      if (number === undefined || number < kind.min || number > kind.max) fail();
      return number;
    }
    case 'string':
      if (typeof value !== 'string' || value.trim() === '') fail();
      return value;
    case 'enum':
      if (typeof value !== 'string' || !kind.values.includes(value)) fail();
      return value;
    case 'bool':
      if (typeof value === 'boolean') return value;
      if (value === 'true' || value === '1') return true;
      if (value === 'false' || value === '0') return false;
      return fail();
    case 'stringList': {
      const items = Array.isArray(value) ? value : typeof value === 'string' ? (value.trim() === '' ? [] : value.split(',')) : fail();
      if (items.length > kind.lengthMax) fail();
      return items.map((item) => {
        const text = typeof item === 'string' ? item.trim() : fail();
        if (!kind.pattern.test(text)) fail();
        return text;
      });
    }
    case 'intList': {
      const items = Array.isArray(value) ? value : typeof value === 'string' ? (value.trim() === '' ? [] : value.split(',')) : fail();
      if (items.length > kind.lengthMax) fail();
      return items.map((item) => {
        const number = parseWithUnit(typeof item === 'string' ? item.trim() : item, kind.unit);
        if (number === undefined || number < kind.min || number > kind.max) fail();
        return number;
      });
    }
  }
}

function checkCrossField(config: FerryConfig): void {
  if (!/^0?[0-7]{3}$/.test(config.storage.umask.trim())) {
    throw new ConfigError(`storage.umask must be three octal digits such as 077 or 027, got ${JSON.stringify(config.storage.umask)}`, 'storage.umask', 'configuration');
  }
  if (config.http.enabled && config.http.port !== 0 && config.http.port === config.server.port) {
    throw new ConfigError(`http.port and server.port are both ${config.http.port}; the admin HTTP port needs a port of its own`, 'http.port', 'configuration');
  }
  const { cert, key, ca, required } = config.tls;
  if ((cert === undefined) !== (key === undefined)) {
    throw new ConfigError('tls.cert and tls.key go together (--tls-cert FILE --tls-key FILE)', cert === undefined ? 'tls.cert' : 'tls.key', 'configuration');
  }
  if (cert === undefined && (ca !== undefined || required)) {
    throw new ConfigError(`${ca !== undefined ? 'tls.ca' : 'tls.required'} needs a server certificate: set tls.cert and tls.key`, ca !== undefined ? 'tls.ca' : 'tls.required', 'configuration');
  }
  checkEtcdTls(config);
}

/** The etcd TLS files go with `https://` endpoints, and a client certificate with its key. */
function checkEtcdTls(config: FerryConfig): void {
  const { etcd, etcdCa, etcdCert, etcdKey } = config;
  if ((etcdCert === undefined) !== (etcdKey === undefined)) {
    throw new ConfigError('etcdCert and etcdKey go together (--etcd-cert FILE --etcd-key FILE)', etcdCert === undefined ? 'etcdCert' : 'etcdKey', 'configuration');
  }
  const given = etcdCa !== undefined ? 'etcdCa' : etcdCert !== undefined ? 'etcdCert' : undefined;
  if (given === undefined) return;
  if (etcd === undefined) throw new ConfigError(`${given} is for cluster mode: set etcd (--etcd https://HOST:2379)`, given, 'configuration');
  if (!etcd.split(',').some((url) => url.trim().toLowerCase().startsWith('https://'))) {
    throw new ConfigError(`${given} needs TLS to etcd: give its endpoints as https://HOST:PORT (etcd is ${etcd})`, given, 'configuration');
  }
}

function suggest(key: string, known: string[]): string {
  let best: string | undefined;
  let bestDistance = TYPO_DISTANCE_MAX + 1;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best === undefined ? ' (docs/CONFIG.md lists every key)' : `; did you mean "${best}"?`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    if (!isPlainObject(node[part])) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]!] = value;
}

function getPath(target: Record<string, unknown>, path: string): unknown {
  let node: unknown = target;
  for (const part of path.split('.')) node = isPlainObject(node) ? node[part] : undefined;
  return node;
}
