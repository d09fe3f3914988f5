/**
 * Help for every command and action: `ferry <command> [action] --help` (or `-h`) prints that
 * command's usage — only the lines of the action when one is named — and exits 0; the client
 * commands add their connection flags.
 */
import { CONNECTION_USAGE } from './connect-options.js';

/** One `ferry` command as main.ts dispatches it and help and completion describe it. */
export interface CommandSpec {
  name: string;
  usage: string;
  /** Its flags, as given to parseArgs (the keys are what completion offers). */
  flags: Readonly<Record<string, unknown>>;
  /** Its actions (`topics create`), if it has any. */
  actions: readonly string[];
  /** A client of the broker: takes the connection flags. */
  client: boolean;
  run(args: string[]): Promise<number>;
}

/** `--help` or `-h` among the arguments (before a `--`, after which everything is a positional). */
export function wantsHelp(args: readonly string[]): boolean {
  for (const arg of args) {
    if (arg === '--') return false;
    if (arg === '--help' || arg === '-h') return true;
  }
  return false;
}

/**
 * The usage text of `spec`, or only its lines for `action` (`ferry topics create --help`). A usage
 * line starts with `ferry `; indented lines continue it; a line in parentheses is a note for all.
 */
export function commandUsage(spec: CommandSpec, action: string | undefined): string {
  const blocks: string[][] = [];
  const notes: string[] = [];
  for (const line of spec.usage.split('\n')) {
    if (line.startsWith('ferry ')) blocks.push([line]);
    else if (line.startsWith('(')) notes.push(line);
    else blocks[blocks.length - 1]?.push(line);
  }
  const prefix = `ferry ${spec.name} ${action ?? ''}`;
  const chosen = action === undefined ? [] : blocks.filter((block) => block[0] === prefix || block[0]!.startsWith(prefix + ' '));
  const lines = (chosen.length > 0 ? chosen : blocks).flat();
  const text = lines.length === 1 ? `usage: ${lines[0]}` : `usage:\n${lines.join('\n')}`;
  return [text, ...notes, ...(spec.client ? ['', CONNECTION_USAGE] : [])].join('\n') + '\n';
}
