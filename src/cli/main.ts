/** The `ferry` command: dispatches to one module per subcommand. */
import { PROTOCOL_VERSION } from '../protocol/limits.js';
import { ferryVersion } from '../admin/version.js';
import { UsageError } from './args.js';
import { CLUSTER_ACTIONS, CLUSTER_FLAGS, CLUSTER_USAGE, cluster } from './cluster.js';
import { COMPLETION_SHELLS, COMPLETION_USAGE, completionScript } from './completion.js';
import { CONNECTION_USAGE } from './connect-options.js';
import { DLQ_ACTIONS, DLQ_FLAGS, DLQ_USAGE, dlq } from './dlq.js';
import { describeFailure } from './failure.js';
import { GROUPS_ACTIONS, GROUPS_FLAGS, GROUPS_USAGE, groups } from './groups.js';
import { commandUsage, wantsHelp, type CommandSpec } from './help.js';
import { PUB_FLAGS, PUB_USAGE, pub } from './pub.js';
import { SERVE_FLAGS, SERVE_USAGE, serve } from './serve.js';
import { guardStdout } from './stdout.js';
import { SUB_FLAGS, SUB_USAGE, sub } from './sub.js';
import { TOPICS_ACTIONS, TOPICS_FLAGS, TOPICS_USAGE, topics } from './topics.js';
import { USERS_ACTIONS, USERS_FLAGS, USERS_USAGE, users } from './users.js';

/** Every command: what main dispatches, and what help and completion describe. */
export const COMMANDS: readonly CommandSpec[] = [
  { name: 'serve', usage: SERVE_USAGE, flags: SERVE_FLAGS, actions: [], client: false, run: serve },
  { name: 'pub', usage: PUB_USAGE, flags: PUB_FLAGS, actions: [], client: true, run: pub },
  { name: 'sub', usage: SUB_USAGE, flags: SUB_FLAGS, actions: [], client: true, run: sub },
  { name: 'topics', usage: TOPICS_USAGE, flags: TOPICS_FLAGS, actions: TOPICS_ACTIONS, client: true, run: topics },
  { name: 'groups', usage: GROUPS_USAGE, flags: GROUPS_FLAGS, actions: GROUPS_ACTIONS, client: true, run: groups },
  { name: 'dlq', usage: DLQ_USAGE, flags: DLQ_FLAGS, actions: DLQ_ACTIONS, client: true, run: dlq },
  { name: 'users', usage: USERS_USAGE, flags: USERS_FLAGS, actions: USERS_ACTIONS, client: false, run: users },
  { name: 'cluster', usage: CLUSTER_USAGE, flags: CLUSTER_FLAGS, actions: CLUSTER_ACTIONS, client: true, run: cluster },
  {
    name: 'completion',
    usage: COMPLETION_USAGE,
    flags: {},
    actions: COMPLETION_SHELLS,
    client: false,
    run: async ([shell, ...rest]) => {
      if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`);
      process.stdout.write(completionScript(shell, COMMANDS));
      return 0;
    },
  },
];

const USAGE = `usage: ferry <command>   (ferry <command> --help: its usage)

${COMMANDS.map((spec) => '  ' + spec.usage.split('\n').join('\n  ')).join('\n')}
  ferry version   (also --version)

${CONNECTION_USAGE}
`;

/** `ferry --version`: the package's version, the wire protocol's, and Node's. */
function versionLine(): string {
  return `ferry ${ferryVersion()} (protocol ${PROTOCOL_VERSION}, node ${process.version})\n`;
}

/** Runs the CLI; returns the process exit code (EXIT_CODES in failure.ts: 0 ok, 1 failed, 2 usage, 3 login refused, 4 TLS, 5 data directory in use). */
export async function main(argv: string[]): Promise<number> {
  guardStdout();
  const [command, ...args] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    const named = COMMANDS.find((spec) => spec.name === args[0]);
    process.stdout.write(named === undefined ? USAGE : commandUsage(named, args[1]));
    return command === undefined ? 2 : 0;
  }
  if (command === 'version' || command === '--version' || command === '-V') {
    process.stdout.write(versionLine());
    return 0;
  }
  const spec = COMMANDS.find((candidate) => candidate.name === command);
  if (spec === undefined) {
    process.stderr.write(`ferry: unknown command '${command}'\n\n${USAGE}`);
    return 2;
  }
  if (wantsHelp(args)) {
    process.stdout.write(commandUsage(spec, spec.actions.includes(args[0] ?? '') ? args[0] : undefined));
    return 0;
  }
  try {
    return await spec.run(args);
  } catch (error) {
    const failure = describeFailure(error);
    if (failure === undefined) throw error;
    process.stderr.write(`ferry ${command}: ${failure.message}\n`);
    return failure.exitCode;
  }
}
