#!/usr/bin/env -S node --max-semi-space-size=4 --initial-old-space-size=64 --no-allocation-site-pretenuring
// The `ferry` command: a thin launcher for the compiled CLI (built by `npm ci` through `prepare`).
// The V8 flags above (src/cli/node-flags.ts; also in package.json's `start`, deploy/Dockerfile and
// deploy/systemd; tests keep them equal) size the heap for a broker: an old generation that starts
// at 64 MiB, so V8 does not run a full collection about once a second under steady traffic (each a
// pause of several milliseconds in every message's latency), a young generation of at most
// 2 × 4 MiB instead of 2 × 16 MiB, and no pretenuring. They must be on
// Node's command line: V8 sizes its heap when the process starts; `node bin/ferry.js serve` runs
// without them and the broker says so once (broker.node_flags_missing). docs/OPERATIONS.md ("Memory").
import { main } from '../dist/src/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  (error) => { console.error(error instanceof Error ? error.message : String(error)); process.exitCode = 1; },
);
