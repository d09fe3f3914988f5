/**
 * Reads deploy/Dockerfile and .dockerignore the way a builder does, for the container tests:
 * instructions with their stage, exec-form arguments, and which paths of the build context the
 * ignore file lets in.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const DOCKERFILE = fileURLToPath(new URL('../../deploy/Dockerfile', import.meta.url));
export const DOCKERIGNORE = fileURLToPath(new URL('../../.dockerignore', import.meta.url));

export interface Instruction {
  /** Upper-case keyword: FROM, RUN, COPY, ... */
  keyword: string;
  /** The rest of the (continued) line. */
  args: string;
  /** Index of the stage (FROM) it belongs to; -1 before the first FROM (ARG). */
  stage: number;
}

export function readDockerfile(path = DOCKERFILE): Instruction[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const instructions: Instruction[] = [];
  let stage = -1;
  let pending = '';
  for (const raw of lines) {
    if (pending === '' && /^\s*(#|$)/.test(raw)) continue;
    if (/^\s*#/.test(raw)) continue; // a comment inside a continued instruction
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      continue;
    }
    const text = (pending + line).trim();
    pending = '';
    const match = /^(\w+)\s+(.*)$/s.exec(text);
    if (match === null) throw new Error(`${path}: cannot read ${JSON.stringify(text)}`);
    const keyword = match[1]!.toUpperCase();
    if (keyword === 'FROM') stage += 1;
    instructions.push({ keyword, args: match[2]!, stage });
  }
  return instructions;
}

/** The JSON array of an exec-form instruction (ENTRYPOINT, CMD, HEALTHCHECK's CMD). */
export function execForm(args: string): string[] {
  const parsed = JSON.parse(args) as unknown;
  if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string')) throw new Error(`not an exec-form array: ${args}`);
  return parsed as string[];
}

/** The single instruction of a keyword in the final stage (the image). */
export function finalInstruction(instructions: Instruction[], keyword: string): Instruction {
  const last = Math.max(...instructions.map((instruction) => instruction.stage));
  const found = instructions.filter((instruction) => instruction.stage === last && instruction.keyword === keyword);
  if (found.length !== 1) throw new Error(`expected one ${keyword} in the final stage, found ${found.length}`);
  return found[0]!;
}

/** A .dockerignore pattern as a regular expression over slash-separated context paths. */
function patternRegex(pattern: string): RegExp {
  let source = '';
  const clean = pattern.replace(/^\/+/, '').replace(/\/+$/, '');
  for (let i = 0; i < clean.length; i += 1) {
    const char = clean[i]!;
    if (char === '*' && clean[i + 1] === '*') {
      source += clean[i + 2] === '/' ? '(?:.*/)?' : '.*';
      i += clean[i + 2] === '/' ? 2 : 1;
    } else if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  // A pattern that names a directory takes everything under it.
  return new RegExp(`^${source}(?:/.*)?$`);
}

/**
 * Whether the build context includes `path` (relative, slash-separated) under the ignore file:
 * the last matching pattern decides, `!` lets a path back in (Docker's rules).
 */
export function contextIncludes(path: string, ignoreText = readFileSync(DOCKERIGNORE, 'utf8')): boolean {
  let included = true;
  for (const raw of ignoreText.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const negated = line.startsWith('!');
    if (patternRegex(negated ? line.slice(1) : line).test(path)) included = negated;
  }
  return included;
}
