/**
 * `ferry completion bash|zsh`: a shell completion script for the commands, their actions and their
 * flags, generated from the same command table main.ts dispatches with, so it offers exactly the
 * flags each command accepts. Where no word fits (a flag's value), the shell completes file names.
 */
import { UsageError } from './args.js';
import type { CommandSpec } from './help.js';

export const COMPLETION_USAGE = `ferry completion bash   (load it from ~/.bashrc: source <(ferry completion bash))
ferry completion zsh    (load it from ~/.zshrc, after compinit: source <(ferry completion zsh))`;

export const COMPLETION_SHELLS = ['bash', 'zsh'] as const;

/** Words of the top level besides the commands. */
const TOP_LEVEL_EXTRAS = ['help', 'version', '--help', '--version'];

export function completionScript(shell: string | undefined, specs: readonly CommandSpec[]): string {
  if (shell === 'bash') return bashScript(specs);
  if (shell === 'zsh') return zshScript(specs);
  throw new UsageError(`usage:\n${COMPLETION_USAGE}`);
}

function flagWords(spec: CommandSpec): string[] {
  return [...Object.keys(spec.flags).map((flag) => `--${flag}`), '--help'];
}

function topWords(specs: readonly CommandSpec[]): string[] {
  return [...specs.map((spec) => spec.name), ...TOP_LEVEL_EXTRAS];
}

/** Command names and flags are plain words ([a-z0-9-]), so single quotes hold them in either shell. */
function quoted(words: readonly string[]): string {
  for (const word of words) if (!/^[a-z0-9-]+$/.test(word)) throw new Error(`not a plain completion word: ${word}`);
  return `'${words.join(' ')}'`;
}

function bashScript(specs: readonly CommandSpec[]): string {
  const cases = specs.map((spec) => `    ${spec.name}) actions=${quoted(spec.actions)}; flags=${quoted(flagWords(spec))} ;;`);
  return `# bash completion for ferry. Load it with: source <(ferry completion bash)
_ferry() {
  local cur=\${COMP_WORDS[COMP_CWORD]} actions='' flags=''
  if [[ $COMP_CWORD -eq 1 ]]; then
    COMPREPLY=($(compgen -W ${quoted(topWords(specs))} -- "$cur"))
    return
  fi
  case \${COMP_WORDS[1]} in
    help) actions=${quoted(specs.map((spec) => spec.name))} ;;
${cases.join('\n')}
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  elif [[ $COMP_CWORD -eq 2 && -n $actions ]]; then
    COMPREPLY=($(compgen -W "$actions" -- "$cur"))
  fi
}
complete -o default -F _ferry ferry
`;
}

function zshScript(specs: readonly CommandSpec[]): string {
  const cases = specs.map((spec) => `    ${spec.name}) actions=(${quoted(spec.actions).slice(1, -1)}); flags=(${quoted(flagWords(spec)).slice(1, -1)}) ;;`);
  return `#compdef ferry
# zsh completion for ferry. Load it (after compinit) with: source <(ferry completion zsh)
_ferry() {
  local -a actions flags
  if (( CURRENT == 2 )); then
    compadd -- ${topWords(specs).join(' ')}
    return
  fi
  case $words[2] in
    help) actions=(${specs.map((spec) => spec.name).join(' ')}) ;;
${cases.join('\n')}
  esac
  if [[ $PREFIX == -* ]]; then
    compadd -- $flags
  elif (( CURRENT == 3 && $#actions > 0 )); then
    compadd -- $actions
  else
    _files
  fi
}
compdef _ferry ferry
`;
}
