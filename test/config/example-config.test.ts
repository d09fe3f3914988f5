/**
 * ferry.example.yaml is what the schema generates now (so it never drifts), loads as a
 * configuration file, and sets every key with a fixed default to that default.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exampleConfig } from '../../src/config/example.js';
import { loadConfig } from '../../src/config/load.js';
import { envName, FIELDS } from '../../src/config/schema.js';
import { tempDir } from '../helpers.js';

const EXAMPLE = fileURLToPath(new URL('../../ferry.example.yaml', import.meta.url));

test('example config - the committed ferry.example.yaml is what the schema generates (npm run example-config)', () => {
  assert.equal(readFileSync(EXAMPLE, 'utf8'), exampleConfig());
});

test('example config - it loads, and gives the same configuration as no file at all', () => {
  assert.deepEqual(loadConfig({ file: EXAMPLE, env: {}, flags: {} }), loadConfig({ env: {}, flags: {} }));
});

test('example config - every key is there with its environment variable, set or commented out', () => {
  const text = readFileSync(EXAMPLE, 'utf8');
  for (const field of FIELDS) {
    const key = field.path.split('.').at(-1)!;
    assert.match(text, new RegExp(`^ *(# )?${key}: `, 'm'), field.path);
    assert.ok(text.includes(`# ${envName(field.path)}: `), `${field.path}: its environment variable`);
  }
});

test('example config - uncommented, its commented-out settings load too', async () => {
  await using dir = await tempDir();
  const keys = new Set([...FIELDS.flatMap((field) => field.path.split('.')), 'topics', 'orders']);
  // Every commented-out setting, not the prose: `# key: value` lines whose key is a config key.
  const uncommented = readFileSync(EXAMPLE, 'utf8').replace(/^( *)# ( *)([A-Za-z]+):(.*)$/gm, (line, indent: string, inner: string, key: string, rest: string) =>
    keys.has(key) ? `${indent}${inner}${key}:${rest}` : line,
  );
  const file = join(dir.path, 'ferry.yaml');
  writeFileSync(file, uncommented);
  const config = loadConfig({ file, env: {}, flags: {} });
  assert.equal(config.nodeId, 'n1');
  assert.equal(config.tls.cert, '/etc/ferry/server.crt');
  assert.equal(config.topicDefaults.retention.ageMs, 7 * 24 * 3600 * 1000);
  assert.deepEqual(config.topics['orders'], { partitions: 3, durability: 'always', retention: { ageMs: 7 * 24 * 3600 * 1000 } });
});
