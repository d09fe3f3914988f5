/**
 * No import cycles between modules in src/: two modules that need each other are one idea split in
 * two, or a shared type that belongs in a module below both. Type-only imports count too (`import
 * type`, `export type … from`, `import('…')` types): they erase at run time, but a cycle of types is
 * still two modules that can only be read, changed and moved together.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { importsInSrc, TS_SOURCES } from './imports.js';

/** The import graph of src/: each module (relative to src/) to the modules it imports, `.js` read as the `.ts` source. */
function importGraph(): Map<string, Set<string>> {
  const files: string[] = [];
  const imports = importsInSrc(TS_SOURCES, files);
  const graph = new Map(files.map((file) => [file, new Set<string>()]));
  for (const { from, to } of imports) if (to !== from) graph.get(from)!.add(to);
  return graph;
}

/**
 * The cycles of a graph: one per strongly connected component of more than one module (Tarjan's
 * algorithm), each shown as one closed path through it so the message names the imports to cut.
 */
export function importCycles(graph: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let next = 0;
  const connect = (node: string): void => {
    index.set(node, next);
    low.set(node, next);
    next += 1;
    stack.push(node);
    onStack.add(node);
    for (const target of graph.get(node) ?? []) {
      if (!graph.has(target)) continue;
      if (!index.has(target)) {
        connect(target);
        low.set(node, Math.min(low.get(node)!, low.get(target)!));
      } else if (onStack.has(target)) {
        low.set(node, Math.min(low.get(node)!, index.get(target)!));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1) components.push(component);
  };
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) connect(node);
  return components.map((component) => closedPath(graph, new Set(component)));
}

/** A shortest path from the component's first module (by name) back to itself, inside the component. */
function closedPath(graph: ReadonlyMap<string, ReadonlySet<string>>, members: ReadonlySet<string>): string[] {
  const start = [...members].sort()[0]!;
  const cameFrom = new Map<string, string>();
  const queue = [start];
  for (let at = 0; at < queue.length; at += 1) {
    const node = queue[at]!;
    for (const target of [...(graph.get(node) ?? [])].sort()) {
      if (!members.has(target)) continue;
      if (target === start) {
        const path = [node];
        while (path[0] !== start) path.unshift(cameFrom.get(path[0]!)!);
        return [...path, start];
      }
      if (cameFrom.has(target)) continue;
      cameFrom.set(target, node);
      queue.push(target);
    }
  }
  return [...members];
}

test('cycles - no two modules in src/ import each other, directly or through others', () => {
  const graph = importGraph();
  assert.ok(graph.size > 200, `only ${graph.size} modules found: the scan is broken`);
  const cycles = importCycles(graph).map((path) => path.join(' -> '));
  assert.deepEqual(cycles, [], 'move what both sides need into a module below them, or invert the dependency');
});

test('cycles - the check finds a direct cycle, a longer one, and passes a graph without one', () => {
  const graph = (edges: Record<string, string[]>): Map<string, Set<string>> => new Map(Object.entries(edges).map(([from, to]) => [from, new Set(to)]));
  assert.deepEqual(importCycles(graph({ 'a.ts': ['b.ts'], 'b.ts': ['a.ts'], 'c.ts': ['a.ts'] })), [['a.ts', 'b.ts', 'a.ts']]);
  assert.deepEqual(importCycles(graph({ 'a.ts': ['b.ts'], 'b.ts': ['c.ts'], 'c.ts': ['a.ts', 'd.ts'], 'd.ts': [] })), [['a.ts', 'b.ts', 'c.ts', 'a.ts']]);
  assert.deepEqual(importCycles(graph({ 'a.ts': ['b.ts', 'c.ts'], 'b.ts': ['c.ts'], 'c.ts': [] })), []);
});
