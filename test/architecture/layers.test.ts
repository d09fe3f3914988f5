/**
 * Imports only go down: every import in src/ is read and held against the layers below, listed once
 * here (docs/ARCHITECTURE.md, "Map of src/", tells what each holds).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { importsInSrc, SRC, TS_AND_JS_SOURCES } from './imports.js';

/**
 * src/ from the bottom up, by the first part of a path under src/. A file may import its own layer
 * and any layer on a lower rank: never one on its own rank (siblings stay apart) or above.
 */
const LAYERS: ReadonlyArray<readonly string[]> = [
  ['errors.ts'],
  ['platform', 'protocol', 'generated'],
  ['storage', 'client'],
  ['broker'],
  ['security'],
  ['transport'],
  ['cluster'],
  ['admin', 'config'],
  ['cli', 'index.ts'],
];

/** Layers allowed less than their rank gives: the client ships alone (`ferry/client`), over the protocol and Node. */
const ONLY: Readonly<Record<string, readonly string[]>> = { client: ['protocol', 'errors.ts'] };

const RANK = new Map(LAYERS.flatMap((names, rank) => names.map((name) => [name, rank] as const)));

/** The layer of a path relative to src/: its first part. */
function layerOf(path: string): string {
  return path.split('/')[0]!;
}

/** Why `from` may not import `to` (paths relative to src/), or null when it may. */
export function violation(from: string, to: string): string | null {
  const source = layerOf(from);
  const target = layerOf(to);
  if (source === target) return null;
  const only = ONLY[source];
  if (only !== undefined && !only.includes(target)) return `${source} imports only ${only.join(', ')}`;
  const sourceRank = RANK.get(source);
  const targetRank = RANK.get(target);
  if (sourceRank === undefined || targetRank === undefined) return `${sourceRank === undefined ? source : target} is in no layer`;
  if (targetRank === sourceRank) return `${target} is a sibling of ${source}`;
  if (targetRank > sourceRank) return `${target} is above ${source}`;
  return null;
}

/** Every import inside src/, as [importer, imported], both relative to src/. */
function importPairs(): Array<[from: string, to: string]> {
  return importsInSrc(TS_AND_JS_SOURCES).map(({ from, to, specifier }) => {
    assert.ok(!to.startsWith('..'), `${from} imports ${specifier}, outside src/`);
    return [from, to];
  });
}

test('layers - every file and folder at the top of src/ has its layer', () => {
  const unplaced = readdirSync(SRC).filter((name) => !RANK.has(name));
  assert.deepEqual(unplaced, [], 'add them to LAYERS in test/architecture/layers.test.ts and to docs/ARCHITECTURE.md');
});

test('layers - no file in src/ imports from a layer above its own or beside it', () => {
  const pairs = importPairs();
  assert.ok(pairs.length > 500, `only ${pairs.length} imports found: the scan is broken`);
  const broken = pairs.flatMap(([from, to]) => {
    const why = violation(from, to);
    return why === null ? [] : [`${from} -> ${to}: ${why}`];
  });
  assert.deepEqual(broken, []);
});

test('layers - the check refuses an import from above, from a sibling, and the client past the protocol', () => {
  assert.equal(violation('broker/topic.ts', 'transport/tcp/server.ts'), 'transport is above broker');
  assert.equal(violation('config/apply.ts', 'admin/observed-broker.ts'), 'admin is a sibling of config');
  assert.equal(violation('storage/log.ts', 'protocol/limits.ts'), null);
  assert.equal(violation('client/client.ts', 'platform/clock.ts'), 'client imports only protocol, errors.ts');
  assert.equal(violation('client/client.ts', 'protocol/frame.ts'), null);
  assert.equal(violation('cli/serve.ts', 'index.ts'), 'index.ts is a sibling of cli');
});
