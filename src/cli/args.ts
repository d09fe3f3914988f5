/** Small helpers shared by the CLI commands: typed flag parsing, and the defaults of the broker's address. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DEFAULT_HOST, DEFAULT_PORT } from '../protocol/limits.js';

type FlagOptions = NonNullable<ParseArgsConfig['options']>;

export { DEFAULT_HOST, DEFAULT_PORT };

/** Usage errors: printed without a stack trace, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type Parsed<O extends FlagOptions> = ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>>;

export function parse<const O extends FlagOptions>(args: string[], options: O, positionalsMax: number): Parsed<O> {
  refuseSecretFlags(args);
  let parsed: Parsed<O>;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true as const, strict: true as const });
  } catch (error) {
    throw new UsageError(parseErrorMessage(error as NodeJS.ErrnoException));
  }
  if (parsed.positionals.length > positionalsMax) {
    throw new UsageError(`unexpected argument '${parsed.positionals[positionalsMax]}'`);
  }
  return parsed;
}

/**
 * parseArgs's own words, shortened: its unknown-option text ends in an advice with an unbalanced
 * quote ("as in '-- \"--x\""), and --help is where the flags are listed.
 */
function parseErrorMessage(error: NodeJS.ErrnoException): string {
  const option = /^Unknown option '([^']+)'/.exec(error.message)?.[1];
  if (error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option !== undefined) return `unknown option '${option}' (--help lists the flags)`;
  return error.message;
}

export function parsePort(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port '${text}' is not a port number`);
  return port;
}

export function parsePositiveInt(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new UsageError(`--${flag} '${text}' is not a non-negative integer`);
  return value;
}

/**
 * Refuses a password or token given as a flag's value, saying why: the command line of every
 * process is readable by every local user (`ps`, /proc/PID/cmdline) and lands in shell history and
 * in CI and audit logs. Secrets come from a file, stdin or the environment (src/cli/connect-options.ts).
 */
export function refuseSecretFlags(args: string[]): void {
  for (const arg of args) {
    if (arg === '--') return;
    const flag = /^--(password|token)(=|$)/.exec(arg)?.[1];
    if (flag !== undefined) {
      throw new UsageError(
        `--${flag} is not accepted: a command line is visible to every user of the machine (ps) and stays in shell history; ` +
          `use --${flag}-file FILE${flag === 'password' ? ', --password-stdin' : ''} or FERRY_${flag.toUpperCase()}`,
      );
    }
  }
}
