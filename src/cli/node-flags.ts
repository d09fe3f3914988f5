/**
 * The V8 flags a broker process is tuned with (docs/OPERATIONS.md, "Memory"): an old generation
 * that starts at 64 MiB, a young generation of 2 × 4 MiB, and no pretenuring. They must be on
 * Node's command line — V8 sizes its heap when the process starts, and NODE_OPTIONS refuses
 * --initial-old-space-size — so every launcher passes them: bin/ferry.js's `#!` line, `npm start`,
 * the container's entry point and the systemd unit (tests keep each equal to this list). Started
 * another way (`node bin/ferry.js serve`), the broker says once what it misses and how to set it.
 */
export const BROKER_NODE_FLAGS = ['--max-semi-space-size=4', '--initial-old-space-size=64', '--no-allocation-site-pretenuring'] as const;

/** The name of a flag, without its value (`--max-semi-space-size`). */
function flagName(flag: string): string {
  const equals = flag.indexOf('=');
  return equals < 0 ? flag : flag.slice(0, equals);
}

/** The tuning flags Node was not started with; a flag given with another value counts as set (a deliberate choice). */
export function missingNodeFlags(execArgv: readonly string[]): string[] {
  const given = new Set(execArgv.map(flagName));
  return BROKER_NODE_FLAGS.filter((flag) => !given.has(flagName(flag)));
}

/** What to tell an operator whose broker runs without (some of) its tuning. */
export function nodeFlagsHint(): string {
  return (
    `start the broker as 'node ${BROKER_NODE_FLAGS.join(' ')} bin/ferry.js serve ...' (or run bin/ferry.js itself, whose #! line passes them, or npm start); ` +
    `without them V8's default heap sizing roughly doubles the p99 latency under load (docs/OPERATIONS.md, "Memory")`
  );
}
