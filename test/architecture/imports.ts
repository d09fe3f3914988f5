/**
 * The imports inside src/, read with the TypeScript parser: what the layer and cycle checks hold
 * against their rules (layers.test.ts, cycles.test.ts).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const SRC = fileURLToPath(new URL('../../src', import.meta.url));

/** TypeScript sources (no declaration files). */
export const TS_SOURCES = /(?<!\.d)\.ts$/;
/** TypeScript sources and the dashboard's JavaScript. */
export const TS_AND_JS_SOURCES = /\.(ts|js)$/;

function sourceFiles(dir: string, names: RegExp): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path, names);
    return names.test(name) ? [path] : [];
  });
}

/** Every module a file names: static imports and exports (types too), import() calls and import() types. */
function specifiers(path: string): string[] {
  const file = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)) {
      found.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] !== undefined && ts.isStringLiteralLike(node.arguments[0])) {
      found.push(node.arguments[0].text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      found.push(node.argument.literal.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

export interface ModuleImport {
  /** The importing file, relative to src/. */
  from: string;
  /** The imported module relative to src/, `.js` read as its `.ts` source (sources name the compiled file). */
  to: string;
  specifier: string;
}

/** Every relative import of the files of src/ whose names match `names`; `files` gets each file read, imports or not. */
export function importsInSrc(names: RegExp, files: string[] = []): ModuleImport[] {
  const found: ModuleImport[] = [];
  for (const path of sourceFiles(SRC, names)) {
    const from = relative(SRC, path);
    files.push(from);
    for (const specifier of specifiers(path)) {
      if (!specifier.startsWith('.')) continue;
      found.push({ from, to: relative(SRC, resolve(dirname(path), specifier)).replace(/\.js$/, '.ts'), specifier });
    }
  }
  return found;
}
