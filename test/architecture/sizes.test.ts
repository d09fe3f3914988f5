/**
 * Rooms stay small: no file in src/ over FILE_LINES_MAX lines, no function over FUNCTION_LINES_MAX,
 * measured with the TypeScript compiler's own parse. Generated code (src/generated/) is left out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));
/** A file a newcomer reads whole: a few hundred lines, one idea. */
const FILE_LINES_MAX = 600;
/** A function that fits on a screen or two. */
const FUNCTION_LINES_MAX = 80;
/** Code written by `npm run generate`, not by hand. */
const GENERATED_DIR = 'generated';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return relative(SRC, path) === GENERATED_DIR ? [] : sourceFiles(path);
    return /\.(ts|js)$/.test(name) ? [path] : [];
  });
}

/** Lines as `wc -l` counts them. */
function lineCount(text: string): number {
  const lines = text.split('\n').length;
  return text.endsWith('\n') ? lines - 1 : lines;
}

/** Every function (declarations, methods, accessors, constructors, arrows) longer than `max` lines, as "name (line N): M lines". */
export function longFunctions(fileName: string, text: string, max: number): string[] {
  const file = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
      const first = file.getLineAndCharacterOfPosition(node.getStart(file)).line;
      const last = file.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = last - first + 1;
      if (lines > max) found.push(`${nameOf(node, file)} (line ${first + 1}): ${lines} lines`);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

/** A function's name, or that of the variable or property it is assigned to. */
function nameOf(node: ts.SignatureDeclaration, file: ts.SourceFile): string {
  if (node.name !== undefined) return node.name.getText(file);
  const parent = node.parent;
  if ((ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent)) && parent.name !== undefined) return parent.name.getText(file);
  return '(anonymous)';
}

test(`sizes - no file in src/ is over ${FILE_LINES_MAX} lines`, () => {
  const files = sourceFiles(SRC);
  assert.ok(files.length > 100, `only ${files.length} files found: the scan is broken`);
  const large = files.flatMap((path) => {
    const lines = lineCount(readFileSync(path, 'utf8'));
    return lines > FILE_LINES_MAX ? [`${relative(SRC, path)}: ${lines} lines`] : [];
  });
  assert.deepEqual(large, []);
});

test(`sizes - no function in src/ is over ${FUNCTION_LINES_MAX} lines`, () => {
  const long = sourceFiles(SRC).flatMap((path) => longFunctions(path, readFileSync(path, 'utf8'), FUNCTION_LINES_MAX).map((found) => `${relative(SRC, path)}: ${found}`));
  assert.deepEqual(long, []);
});

test('sizes - the measure finds a long method, arrow and function, and passes short ones', () => {
  // A function of `lines` lines in all: its opening line, the body, its closing line.
  const body = (lines: number): string => Array.from({ length: lines - 2 }, (_, i) => `  const v${i} = ${i};`).join('\n');
  const parts = [
    `class A {\n  long(): void {\n${body(82)}\n  }\n  short(): void {\n${body(5)}\n  }\n}`,
    `const arrow = (): void => {\n${body(81)}\n};`,
    `function fits(): void {\n${body(80)}\n}`,
    `export function tooLong(): void {\n${body(81)}\n}`,
  ];
  const found = longFunctions('sample.ts', parts.join('\n'), FUNCTION_LINES_MAX).map((entry) => entry.replace(/ \(line \d+\)/, ''));
  assert.deepEqual(found, ['long: 82 lines', 'arrow: 81 lines', 'tooLong: 81 lines']);
});
