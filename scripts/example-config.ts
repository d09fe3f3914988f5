// Writes ferry.example.yaml from the configuration schema (src/config/example.ts):
//   npm run example-config
// test/config/example-config.test.ts checks the committed file is what this writes, and loads it.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { exampleConfig } from '../src/config/example.js';

const OUT = fileURLToPath(new URL('../ferry.example.yaml', import.meta.url));
writeFileSync(OUT, exampleConfig());
console.log(`wrote ${OUT}`);
