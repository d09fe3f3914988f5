/**
 * Configuration: defaults < file (JSON or YAML) < FERRY_* environment < flags; validation errors
 * that name the key, where it came from and the form expected; declared topics; docs/CONFIG.md
 * kept in step with the schema; `ferry serve --print-config`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Broker } from '../../src/broker/broker.js';
import type { LogFields, Logger } from '../../src/platform/logger.js';
import { ConfigError, formatConfig, loadConfig } from '../../src/config/load.js';
import { DEFAULT_HTTP_PORT, envName, FIELDS, TOPIC_FIELDS } from '../../src/config/schema.js';
import { formatWithUnit, parseWithUnit } from '../../src/config/units.js';
import { brokerOptions, ensureTopics, serverOptions } from '../../src/config/apply.js';
import { SERVER_DEFAULTS } from '../../src/transport/tcp/options.js';
import { tempDir } from '../helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a ConfigError');
}

test('config - defaults match the broker and server defaults', () => {
  const config = loadConfig();
  assert.equal(config.dir, './data');
  assert.deepEqual([config.server.host, config.server.port], ['127.0.0.1', 7700]);
  assert.deepEqual([config.http.host, config.http.port, config.http.enabled], ['127.0.0.1', DEFAULT_HTTP_PORT, true]);
  assert.equal(config.server.maxConnections, SERVER_DEFAULTS.maxConnections);
  assert.deepEqual(config.topicDefaults, { partitions: 1, durability: 'always', syncIntervalMs: 50, segmentBytes: 128 * 1024 * 1024, dedupWindowMs: 120_000, retention: {} });
  assert.deepEqual(config.groupDefaults, { ackTimeoutMs: 30_000, backoffMs: [], deliveriesMax: 16 });
  assert.deepEqual(config.topics, {});
});

test('config - precedence: file < environment < flags', async () => {
  await using dir = await tempDir();
  const file = join(dir.path, 'ferry.json');
  writeFileSync(file, JSON.stringify({ dir: '/from-file', server: { port: 7001, maxConnections: 100 }, log: { level: 'warn' }, groupDefaults: { ackTimeoutMs: '10s' } }));
  const env = { FERRY_SERVER_PORT: '7002', FERRY_SERVER_MAX_CONNECTIONS: '200', FERRY_LOG_LEVEL: 'debug', FERRY_URL: 'ferry://ignored:1' };
  const fileOnly = loadConfig({ file });
  assert.deepEqual([fileOnly.dir, fileOnly.server.port, fileOnly.server.maxConnections, fileOnly.log.level, fileOnly.groupDefaults.ackTimeoutMs], ['/from-file', 7001, 100, 'warn', 10_000]);
  const withEnv = loadConfig({ file, env });
  assert.deepEqual([withEnv.dir, withEnv.server.port, withEnv.server.maxConnections, withEnv.log.level], ['/from-file', 7002, 200, 'debug']);
  const withFlags = loadConfig({ file, env, flags: { 'server.port': '7003', dir: '/from-flags' } });
  assert.deepEqual([withFlags.dir, withFlags.server.port, withFlags.server.maxConnections], ['/from-flags', 7003, 200]);
  // FERRY_CONFIG names the file when no --config is given.
  assert.equal(loadConfig({ env: { FERRY_CONFIG: file } }).server.port, 7001);
});

test('config - YAML files, units for sizes and durations, lists from env', async () => {
  await using dir = await tempDir();
  const file = join(dir.path, 'ferry.yaml');
  writeFileSync(
    file,
    [
      'storage:',
      '  tailCacheBytes: 64MiB',
      'topicDefaults:',
      '  segmentBytes: 1GiB',
      '  retention:',
      '    ageMs: 7d',
      '    bytesMax: 10GiB',
      'groupDefaults:',
      '  backoffMs: [100ms, 1s, 30s]',
      'http:',
      '  enabled: false',
    ].join('\n'),
  );
  const config = loadConfig({ file, env: { FERRY_GROUP_DEFAULTS_DELIVERIES_MAX: '5' } });
  assert.equal(config.storage.tailCacheBytes, 64 * 1024 * 1024);
  assert.equal(config.topicDefaults.segmentBytes, 1024 ** 3);
  assert.deepEqual(config.topicDefaults.retention, { ageMs: 7 * 86_400_000, bytesMax: 10 * 1024 ** 3 });
  assert.deepEqual(config.groupDefaults.backoffMs, [100, 1000, 30_000]);
  assert.equal(config.groupDefaults.deliveriesMax, 5);
  assert.equal(config.http.enabled, false);
  assert.deepEqual(loadConfig({ env: { FERRY_GROUP_DEFAULTS_BACKOFF_MS: '1s, 5s' } }).groupDefaults.backoffMs, [1000, 5000]);
  assert.equal(loadConfig({ flags: { 'http.enabled': 'false' } }).http.enabled, false);
});

test('config - server.port 0 (any free port) makes the admin port any free port too, unless it is named', () => {
  assert.equal(loadConfig({ flags: { 'server.port': '0' } }).http.port, 0);
  assert.equal(loadConfig({ flags: { 'server.port': '0', 'http.port': '7781' } }).http.port, 7781);
  assert.equal(loadConfig({ env: { FERRY_SERVER_PORT: '0', FERRY_HTTP_PORT: '7782' } }).http.port, 7782);
  assert.equal(loadConfig({ flags: { 'server.port': '7701' } }).http.port, DEFAULT_HTTP_PORT);
});

test('config - unit parsing and formatting', () => {
  assert.equal(parseWithUnit('128MiB', 'bytes'), 128 * 1024 * 1024);
  assert.equal(parseWithUnit('1.5KiB', 'bytes'), 1536);
  assert.equal(parseWithUnit('2MB', 'bytes'), 2_000_000);
  assert.equal(parseWithUnit('250ms', 'ms'), 250);
  assert.equal(parseWithUnit('5m', 'ms'), 300_000);
  assert.equal(parseWithUnit(42, 'ms'), 42);
  assert.equal(parseWithUnit('42', undefined), 42);
  assert.equal(parseWithUnit('10s', undefined), undefined);
  assert.equal(parseWithUnit('5 parsecs', 'ms'), undefined);
  assert.equal(parseWithUnit(1.5, 'bytes'), undefined);
  assert.equal(formatWithUnit(128 * 1024 * 1024, 'bytes'), '128MiB');
  assert.equal(formatWithUnit(30_000, 'ms'), '30s');
  assert.equal(formatWithUnit(1500, 'ms'), '1500ms');
});

test('config - unknown keys are errors that name the key, the source and a likely fix', async () => {
  await using dir = await tempDir();
  const file = join(dir.path, 'ferry.json');
  writeFileSync(file, JSON.stringify({ server: { prot: 1 } }));
  const fromFile = configError(() => loadConfig({ file }));
  assert.equal(fromFile.key, 'server.prot');
  assert.match(fromFile.message, /unknown key "server\.prot" in .*ferry\.json; did you mean "server\.port"\?/);
  assert.equal(fromFile.code, 'INVALID_ARGUMENT');

  writeFileSync(file, JSON.stringify({ logging: { level: 'info' } }));
  assert.match(configError(() => loadConfig({ file })).message, /unknown key "logging"/);
  const fromEnv = configError(() => loadConfig({ env: { FERRY_SERVER_MAX_CONNECTION: '5' } }));
  assert.match(fromEnv.message, /unknown environment variable FERRY_SERVER_MAX_CONNECTION; did you mean "FERRY_SERVER_MAX_CONNECTIONS"\?/);
  assert.match(configError(() => loadConfig({ env: { FERRY_LOG_LEVLE: 'info' } })).message, /did you mean "FERRY_LOG_LEVEL"/);
  assert.match(configError(() => loadConfig({ env: { FERRY_TOPIC_DEFAULTS_PARTITION: '2' } })).message, /did you mean "FERRY_TOPIC_DEFAULTS_PARTITIONS"/);
  // Names outside the configuration's sections belong to other tools.
  assert.equal(loadConfig({ env: { FERRY_URL: 'ferry://x:1', FERRY_CHAOS_SEED: '7', FERRY_DIRECTORY_HINT: 'x' } }).dir, './data');
  assert.match(configError(() => loadConfig({ flags: { 'sever.port': '1' } })).message, /unknown key "sever\.port" in flags; did you mean "server\.port"/);
  writeFileSync(file, JSON.stringify({ server: 7700 }));
  assert.match(configError(() => loadConfig({ file })).message, /"server" in .* must be an object of settings/);
});

test('config - bad values name the key, where it came from and the expected form', async () => {
  const cases: Array<[() => unknown, RegExp]> = [
    [() => loadConfig({ env: { FERRY_SERVER_PORT: 'abc' } }), /server\.port \(from environment variable FERRY_SERVER_PORT\) must be an integer from 0 to 65535, got "abc"/],
    [() => loadConfig({ flags: { 'server.port': '70000' } }), /server\.port \(from flags\) must be an integer from 0 to 65535/],
    [() => loadConfig({ flags: { 'log.level': 'loud' } }), /log\.level \(from flags\) must be one of "debug", "info", "warn", "error", got "loud"/],
    [() => loadConfig({ flags: { 'topicDefaults.segmentBytes': '1KiB' } }), /topicDefaults\.segmentBytes .* must be a size in bytes from 4096 to 1073741824 \(an integer, or like "64KiB"/],
    [() => loadConfig({ flags: { 'groupDefaults.ackTimeoutMs': '10' } }), /groupDefaults\.ackTimeoutMs .* must be a duration in ms from 100 to 86400000/],
    [() => loadConfig({ flags: { 'topicDefaults.durability': 'sometimes' } }), /must be one of "always", "interval", "never"/],
    [() => loadConfig({ flags: { 'http.enabled': 'yes' } }), /http\.enabled .* must be true or false/],
    [() => loadConfig({ flags: { 'groupDefaults.backoffMs': '1s,soon' } }), /groupDefaults\.backoffMs .* must be a list of at most 64 durations/],
    [() => loadConfig({ flags: { dir: ' ' } }), /dir \(from flags\) must be a non-empty string/],
    [() => loadConfig({ flags: { 'limits.recordBytesMax': '9MiB' } }), /limits\.recordBytesMax .* from 1 to 8388608/],
    [() => loadConfig({ flags: { 'server.port': '7800', 'http.port': '7800' } }), /http\.port and server\.port are both 7800/],
  ];
  for (const [run, expected] of cases) assert.match(configError(run).message, expected);

  await using dir = await tempDir();
  const file = join(dir.path, 'ferry.yaml');
  writeFileSync(file, 'server:\n  port: [1, 2\n');
  assert.match(configError(() => loadConfig({ file })).message, /ferry\.yaml is not valid YAML/);
  writeFileSync(file, '- just\n- a list\n');
  assert.match(configError(() => loadConfig({ file })).message, /must hold an object of settings/);
  assert.match(configError(() => loadConfig({ file: join(dir.path, 'missing.json') })).message, /cannot read config file/);
});

test('config - TLS to etcd: etcdCa, etcdCert and etcdKey from FERRY_ETCD_CA/_CERT/_KEY or flags, only with https:// endpoints', () => {
  const etcd = 'https://10.0.0.9:2379,https://10.0.0.10:2379';
  const fromEnv = loadConfig({ env: { FERRY_ETCD: etcd, FERRY_ETCD_CA: '/etc/ferry/etcd-ca.crt', FERRY_ETCD_CERT: '/etc/ferry/etcd.crt', FERRY_ETCD_KEY: '/etc/ferry/etcd.key' } });
  assert.deepEqual([fromEnv.etcdCa, fromEnv.etcdCert, fromEnv.etcdKey], ['/etc/ferry/etcd-ca.crt', '/etc/ferry/etcd.crt', '/etc/ferry/etcd.key']);
  const fromFlags = loadConfig({ flags: { etcd, etcdCa: '/ca.crt' } });
  assert.deepEqual([fromFlags.etcdCa, fromFlags.etcdCert], ['/ca.crt', undefined]);
  assert.match(configError(() => loadConfig({ flags: { etcd, etcdCert: '/c.crt' } })).message, /etcdCert and etcdKey go together/);
  assert.match(configError(() => loadConfig({ flags: { etcdCa: '/ca.crt' } })).message, /etcdCa is for cluster mode/);
  assert.match(configError(() => loadConfig({ flags: { etcd: 'http://10.0.0.9:2379', etcdCa: '/ca.crt' } })).message, /https:\/\//);
  assert.match(configError(() => loadConfig({ env: { FERRY_ETCD_CAFILE: '/ca.crt' } })).message, /unknown environment variable FERRY_ETCD_CAFILE/);
});

test('config - declared topics are validated like topic defaults', async () => {
  await using dir = await tempDir();
  const file = join(dir.path, 'ferry.yaml');
  writeFileSync(file, 'topics:\n  orders:\n    partitions: 3\n    retention:\n      ageMs: 1h\n  audit:\n');
  assert.deepEqual(loadConfig({ file }).topics, { orders: { partitions: 3, retention: { ageMs: 3_600_000 } }, audit: {} });
  writeFileSync(file, 'topics:\n  orders:\n    partitons: 3\n');
  assert.match(configError(() => loadConfig({ file })).message, /unknown key "topics\.orders\.partitons" .*did you mean "partitions"/);
  writeFileSync(file, 'topics:\n  orders:\n    durability: eventually\n');
  assert.match(configError(() => loadConfig({ file })).message, /topics\.orders\.durability .* must be one of "always", "interval", "never"/);
  writeFileSync(file, 'topics:\n  "bad name":\n    partitions: 1\n');
  assert.match(configError(() => loadConfig({ file })).message, /topic name "bad name" .* may only use letters/);
  writeFileSync(file, 'topics: [orders]\n');
  assert.match(configError(() => loadConfig({ file })).message, /"topics" .* must map topic names/);
});

test('config - declared topics are created at start; existing ones keep their settings with a warning', async () => {
  await using dir = await tempDir();
  const warnings: Array<[string, LogFields | undefined]> = [];
  const logger: Logger = { debug() {}, info() {}, warn: (event, fields) => void warnings.push([event, fields]), error() {} };
  const config = loadConfig({ flags: { dir: dir.path, 'topicDefaults.partitions': '2' } });
  const broker = await Broker.open({ ...brokerOptions(config), logger });
  try {
    await broker.createTopic('existing', { partitions: 1 });
    const { created } = await ensureTopics(broker, { orders: { durability: 'interval' }, existing: { partitions: 4 } }, logger);
    assert.deepEqual(created, ['orders']);
    const orders = broker.describeTopic('orders');
    assert.deepEqual([orders.config.partitions, orders.config.durability], [2, 'interval'], 'topic defaults from the config apply');
    assert.equal(broker.describeTopic('existing').config.partitions, 1);
    assert.deepEqual(warnings.map(([event, fields]) => [event, fields?.['topic'], fields?.['key']]), [['config.topic.differs', 'existing', 'partitions']]);
    assert.deepEqual((await ensureTopics(broker, { orders: { durability: 'interval' } }, logger)).created, []);
  } finally {
    await broker.close();
  }
});

test('config - maps onto broker and server options', () => {
  const config = loadConfig({ flags: { 'server.maxConnections': '12', 'storage.tailCacheBytes': '1MiB', 'server.port': '1234' } });
  const server = serverOptions(config);
  assert.equal(server.maxConnections, 12);
  assert.equal('port' in server, false);
  assert.equal(brokerOptions(config).tailCacheBytes, 1024 * 1024);
});

test('config - formatConfig output loads back to the same configuration', async () => {
  await using dir = await tempDir();
  const file = join(dir.path, 'effective.json');
  const config = loadConfig({ flags: { 'topicDefaults.retention.ageMs': '2d', 'groupDefaults.backoffMs': '1s,2s' } });
  writeFileSync(file, formatConfig(config));
  assert.deepEqual(loadConfig({ file }), config);
});

test('config - docs/CONFIG.md lists every key with its environment variable', () => {
  const doc = readFileSync(join(ROOT, 'docs/CONFIG.md'), 'utf8');
  for (const field of FIELDS) {
    assert.ok(doc.includes(`\`${field.path}\``), `docs/CONFIG.md is missing ${field.path}`);
    assert.ok(doc.includes(`\`${envName(field.path)}\``), `docs/CONFIG.md is missing ${envName(field.path)}`);
  }
  for (const field of TOPIC_FIELDS) assert.ok(doc.includes(`\`${field.path}\``), `docs/CONFIG.md is missing topic setting ${field.path}`);
  assert.equal(envName('server.maxConnections'), 'FERRY_SERVER_MAX_CONNECTIONS');
  assert.equal(envName('topicDefaults.retention.ageMs'), 'FERRY_TOPIC_DEFAULTS_RETENTION_AGE_MS');
});

test('config - ferry serve --print-config prints the effective configuration; a bad key exits 2', () => {
  const bin = join(ROOT, 'bin/ferry.js');
  const env = { ...process.env, FERRY_URL: '', FERRY_LOG_LEVEL: 'warn' };
  const printed = spawnSync(process.execPath, [bin, 'serve', '--print-config', '--port', '7801', '--set', 'topicDefaults.partitions=3'], { env, encoding: 'utf8', timeout: 20_000 });
  assert.equal(printed.status, 0, printed.stderr);
  const config = JSON.parse(printed.stdout);
  assert.deepEqual([config.server.port, config.topicDefaults.partitions, config.log.level], [7801, 3, 'warn']);
  const bad = spawnSync(process.execPath, [bin, 'serve', '--set', 'server.prot=1'], { env, encoding: 'utf8', timeout: 20_000 });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown key "server\.prot" in flags; did you mean "server\.port"/);
});
