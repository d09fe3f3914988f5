/** The `ferry` command: dispatches to one module per subcommand. */
import { CLUSTER_USAGE, cluster } from './cluster.js';
import { CONNECTION_USAGE } from './connect-options.js';
import { DLQ_USAGE, dlq } from './dlq.js';
import { describeFailure } from './failure.js';
import { GROUPS_USAGE, groups } from './groups.js';
import { PUB_USAGE, pub } from './pub.js';
import { SERVE_USAGE, serve } from './serve.js';
import { SUB_USAGE, sub } from './sub.js';
import { TOPICS_USAGE, topics } from './topics.js';
import { USERS_USAGE, users } from './users.js';

const USAGE = `usage: ferry <command>

  ${SERVE_USAGE}
  ${PUB_USAGE}
  ${SUB_USAGE}
  ${TOPICS_USAGE.split('\n').join('\n  ')}
  ${GROUPS_USAGE.split('\n').join('\n  ')}
  ${DLQ_USAGE}
  ${USERS_USAGE.split('\n').join('\n  ')}
  ${CLUSTER_USAGE}

${CONNECTION_USAGE}
`;

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = { serve, pub, sub, topics, groups, dlq, users, cluster };

/** Runs the CLI; returns the process exit code (EXIT_CODES in failure.ts: 0 ok, 1 failed, 2 usage, 3 login refused, 4 TLS, 5 data directory in use). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  const run = COMMANDS[command];
  if (run === undefined) {
    process.stderr.write(`ferry: unknown command '${command}'\n\n${USAGE}`);
    return 2;
  }
  try {
    return await run(args);
  } catch (error) {
    const failure = describeFailure(error);
    if (failure === undefined) throw error;
    process.stderr.write(`ferry ${command}: ${failure.message}\n`);
    return failure.exitCode;
  }
}
