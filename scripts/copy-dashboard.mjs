#!/usr/bin/env node
// Copies the web dashboard's static files (plain HTML/CSS/JS, no build step of their own) next to
// the compiled admin module, so dist/src/admin/static.js finds them at the same relative path
// that src/admin/static.ts uses under tsx. Run by `npm run build` after tsc.
import { cpSync, rmSync } from 'node:fs';

const SOURCE = 'src/admin/dashboard';
const TARGET = 'dist/src/admin/dashboard';

rmSync(TARGET, { recursive: true, force: true });
cpSync(SOURCE, TARGET, { recursive: true });
