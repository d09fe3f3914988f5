/**
 * What a user looks for in the package: the license package.json names, a changelog with the
 * current version, the example configuration (test/config/example-config.test.ts loads it) and
 * `npm run docs`, TypeDoc over the two public entry points, pinned to a version that supports
 * Node 20 and this TypeScript.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const read = (path: string): string => readFileSync(ROOT + path, 'utf8');
const json = (path: string): any => JSON.parse(read(path));

test('project files - LICENSE is the Apache License 2.0 that package.json names', () => {
  assert.equal(json('package.json').license, 'Apache-2.0');
  const license = read('LICENSE');
  assert.match(license, /^ +Apache License\n +Version 2\.0, January 2004\n/);
  assert.match(license, /END OF TERMS AND CONDITIONS/);
});

test('project files - CHANGELOG.md has a section for the version in package.json', () => {
  const changelog = read('CHANGELOG.md');
  assert.match(changelog, /^# Changelog\n/);
  assert.match(changelog, new RegExp(`^## ${json('package.json').version.replace(/\./g, '\\.')}\\b`, 'm'));
});

test('project files - ferry.example.yaml is there', () => {
  assert.ok(existsSync(ROOT + 'ferry.example.yaml'));
});

test('project files - npm run docs runs TypeDoc, pinned, over the client and the embedded API, for Node 20 and this TypeScript', () => {
  const manifest = json('package.json');
  assert.equal(manifest.scripts.docs, 'typedoc');
  assert.match(manifest.devDependencies.typedoc, /^\d+\.\d+\.\d+$/, 'an exact version');
  const typedoc = json('node_modules/typedoc/package.json');
  assert.equal(typedoc.version, manifest.devDependencies.typedoc);
  assert.match(typedoc.engines.node, /^>= ?(1[89]|20)(\.|$)/, `TypeDoc runs on Node 20: ${typedoc.engines.node}`);
  const [major, minor] = manifest.devDependencies.typescript.split('.');
  assert.ok(typedoc.peerDependencies.typescript.split(' || ').includes(`${major}.${minor}.x`), `TypeDoc supports TypeScript ${major}.${minor}`);
  const config = json('typedoc.json');
  const exported = Object.values(manifest.exports as Record<string, { types: string }>).map((entry) => entry.types.replace(/^\.\/dist\//, '').replace(/\.d\.ts$/, '.ts'));
  assert.deepEqual([...config.entryPoints].sort(), exported.sort(), 'the entry points are the package exports');
  for (const entry of config.entryPoints as string[]) assert.ok(existsSync(ROOT + entry), entry);
});
