/**
 * deploy/systemd: the unit passes `systemd-analyze verify` (and fails it when broken) and scores
 * as well hardened by `systemd-analyze security`, where systemd-analyze exists; its ExecStart
 * carries bin/ferry.js's V8 flags; LimitNOFILE covers the example config's connection limit;
 * TimeoutStopSec is above the graceful shutdown; and the example settings are ones `ferry serve`
 * accepts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { shebangNodeFlags } from '../../bench/checkout.js';
import { openFilesNeeded } from '../../src/config/open-files.js';
import { FIELDS } from '../../src/config/schema.js';
import { tempDir } from '../helpers.js';
import { REPO } from './dockerfile.js';

const UNIT = join(REPO, 'deploy/systemd/ferry.service');
const ENV_FILE = join(REPO, 'deploy/systemd/ferry.env');
const CONFIG = join(REPO, 'deploy/systemd/ferry.yaml');
const BIN = join(REPO, 'bin/ferry.js');
/** systemd-analyze security's scale: 0 is locked down, 10 wide open; "OK" ends below 2.0 … 4.0 is "MEDIUM". */
const EXPOSURE_MAX = 2.0;
/** Segment files the unit's LimitNOFILE leaves room for beside the default connection limit. */
const SEGMENT_FILES_ROOM = 10_000;

const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
const noAnalyze = analyze.status === 0 ? false : `systemd-analyze is not installed here (${analyze.error?.message ?? analyze.stderr.trim()})`;

/** The unit's settings of the [Service] section, each key with every value it was given. */
function serviceSettings(text: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = '';
  for (const line of text.split('\n')) {
    const header = /^\[(\w+)\]$/.exec(line.trim());
    if (header !== null) section = header[1]!;
    else if (section === 'Service' && /^\w+=/.test(line)) {
      const [key, ...rest] = line.split('=');
      settings.set(key!, [...(settings.get(key!) ?? []), rest.join('=')]);
    }
  }
  return settings;
}

const settings = serviceSettings(readFileSync(UNIT, 'utf8'));
const one = (key: string): string => {
  const values = settings.get(key);
  assert.equal(values?.length, 1, `${key} once in ferry.service`);
  return values[0]!;
};

/** systemd-analyze verify of a copy of the unit with `edit` applied; its exit status and messages. */
async function verify(edit: (text: string) => string = (text) => text): Promise<{ status: number | null; output: string }> {
  await using dir = await tempDir();
  const unit = join(dir.path, 'ferry.service');
  writeFileSync(unit, edit(readFileSync(UNIT, 'utf8')));
  const result = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}`.trim() };
}

test('systemd - the unit passes systemd-analyze verify without a warning', { skip: noAnalyze }, async () => {
  assert.deepEqual(await verify(), { status: 0, output: '' });
});

test('systemd - systemd-analyze verify catches a broken unit', { skip: noAnalyze }, async () => {
  // verify exits 0 on an unknown key or a bad value but says so: any message counts as a failure.
  const misspelt = await verify((text) => text.replace('Restart=on-failure', 'Restartt=on-failure'));
  assert.match(misspelt.output, /Unknown key/);
  const badValue = await verify((text) => text.replace('ProtectSystem=strict', 'ProtectSystem=strictly'));
  assert.match(badValue.output, /protect system/i);
  const missing = await verify((text) => text.replace('ExecStart=/usr/bin/node', 'ExecStart=/usr/bin/no-such-node'));
  assert.notEqual(missing.status, 0);
});

test('systemd - systemd-analyze security rates the unit as hardened', { skip: noAnalyze }, async () => {
  await using dir = await tempDir();
  const unit = join(dir.path, 'ferry.service');
  copyFileSync(UNIT, unit);
  const result = spawnSync('systemd-analyze', ['security', '--offline=yes', unit], { encoding: 'utf8', timeout: 30_000 });
  const exposure = /Overall exposure level for ferry\.service: ([\d.]+)/.exec(`${result.stdout}${result.stderr}`);
  assert.ok(exposure !== null, result.stdout + result.stderr);
  assert.ok(Number(exposure[1]) <= EXPOSURE_MAX, `exposure ${exposure[1]}`);
});

test('systemd - ExecStart runs the broker with the V8 flags of bin/ferry.js', () => {
  const exec = one('ExecStart').split(' ');
  assert.match(exec[0]!, /\/node$/);
  const launcher = exec.findIndex((arg) => arg.endsWith('/bin/ferry.js'));
  assert.deepEqual(exec.slice(1, launcher), shebangNodeFlags());
  assert.deepEqual(exec.slice(launcher + 1, launcher + 2), ['serve']);
  assert.equal(exec[exec.indexOf('--dir') + 1], '/var/lib/ferry');
});

test('systemd - a dedicated user, restart on failure, hardening with the data directory writable', () => {
  assert.equal(one('User'), 'ferry');
  assert.equal(one('Restart'), 'on-failure');
  assert.equal(one('ProtectSystem'), 'strict');
  assert.equal(one('ReadWritePaths'), '/var/lib/ferry');
  assert.equal(one('StateDirectory'), 'ferry');
  for (const key of ['NoNewPrivileges', 'PrivateTmp', 'ProtectHome', 'PrivateDevices']) assert.equal(one(key), 'yes', key);
  assert.equal(settings.get('MemoryDenyWriteExecute'), undefined, 'V8 compiles code at run time');
});

test('systemd - LimitNOFILE covers the connection limit and TimeoutStopSec the graceful shutdown', () => {
  const config = parseYaml(readFileSync(CONFIG, 'utf8')) as { server: { maxConnections: number } };
  const needed = openFilesNeeded({ maxConnections: config.server.maxConnections, segments: SEGMENT_FILES_ROOM, partitions: 0, groups: 0 });
  assert.ok(Number(one('LimitNOFILE')) >= needed, `LimitNOFILE ${one('LimitNOFILE')} < ${needed}`);
  const closeTimeoutMs = FIELDS.find((field) => field.path === 'server.closeTimeoutMs')!.default as number;
  const stopSeconds = Number(one('TimeoutStopSec'));
  assert.ok(stopSeconds * 1000 >= 3 * closeTimeoutMs, 'room for handover, in-flight requests and closing the logs');
  assert.equal(one('KillSignal'), 'SIGTERM');
});

/** The FERRY_* variables of the example environment file; `commented` also those given as examples in comments (the last wins). */
function exampleEnv(commented: boolean): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(ENV_FILE, 'utf8').split('\n')) {
    const match = (commented ? /^#?(FERRY_\w+)=(.*)$/ : /^(FERRY_\w+)=(.*)$/).exec(line);
    if (match !== null) env[match[1]!] = match[2]!;
  }
  return env;
}

/** `ferry serve --print-config` as the unit runs it, with `env`; the printed settings. */
async function printedConfig(env: Record<string, string>): Promise<Record<string, any>> {
  await using dir = await tempDir();
  const exec = one('ExecStart').split(' ');
  const args = exec.slice(exec.findIndex((arg) => arg.endsWith('/bin/ferry.js')) + 1).map((arg) => (arg === '/etc/ferry/ferry.yaml' ? CONFIG : arg === '/var/lib/ferry' ? join(dir.path, 'data') : arg));
  const result = spawnSync(process.execPath, [BIN, ...args, '--print-config'], { encoding: 'utf8', env: { ...process.env, ...env, FERRY_URL: '' }, timeout: 20_000 });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout) as Record<string, any>;
}

test('systemd - ferry serve accepts the example environment and config file', async () => {
  const env = exampleEnv(false);
  assert.equal(env['FERRY_SERVER_HOST'], '0.0.0.0');
  const printed = await printedConfig(env);
  assert.equal(printed.server.host, '0.0.0.0');
  assert.equal(printed.security.usersFile, '/etc/ferry/users.json', 'listening beyond loopback needs users');
});

test('systemd - the environment file\'s cluster example, etcd over TLS included, is one ferry serve accepts', async () => {
  const env = exampleEnv(true);
  assert.match(env['FERRY_ETCD'] ?? '', /^https:\/\/[^,]+(,https:\/\/[^,]+)*$/, 'the TLS example names https:// endpoints');
  const printed = await printedConfig(env);
  assert.equal(printed.nodeId, 'n1');
  assert.deepEqual([printed.etcdCa, printed.etcdCert, printed.etcdKey], ['/etc/ferry/etcd/ca.crt', '/etc/ferry/etcd/broker.crt', '/etc/ferry/etcd/broker.key']);
  // ProtectSystem=strict leaves /etc readable (and nothing but the data directory writable).
  for (const path of [printed.etcdCa, printed.etcdCert, printed.etcdKey]) assert.ok(path.startsWith('/etc/ferry/'), path);
});
