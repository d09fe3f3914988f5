/**
 * A closed stdout — the reader went away, as in `ferry sub orders | head` — ends a command quietly
 * with exit code 0, as `cat` does: EPIPE is the reader's goodbye, not the command's failure.
 * Without a listener, the stream's 'error' event would end the process with a stack trace.
 */

/** Write errors that mean "nobody reads stdout any more". */
const CLOSED_CODES: ReadonlySet<string> = new Set(['EPIPE', 'ERR_STREAM_DESTROYED']);

type ErrorSource = Pick<NodeJS.WriteStream, 'on' | 'off'>;

/**
 * Keeps a failed write to `stdout` from crashing the process: a closed reader is ignored, any other
 * write error is said once on stderr. Returns what removes the listener.
 */
export function guardStdout(stdout: ErrorSource = process.stdout, stderr: Pick<NodeJS.WriteStream, 'write'> = process.stderr): () => void {
  let said = false;
  const onError = (error: NodeJS.ErrnoException): void => {
    if (CLOSED_CODES.has(error.code ?? '') || said) return;
    said = true;
    stderr.write(`ferry: cannot write to stdout: ${error.message}\n`);
  };
  stdout.on('error', onError);
  return () => stdout.off('error', onError);
}

/** Calls `onClosed` once when stdout's reader goes away; returns what stops watching. */
export function onStdoutClosed(onClosed: () => void, stdout: ErrorSource = process.stdout): () => void {
  let called = false;
  const onError = (error: NodeJS.ErrnoException): void => {
    if (called || !CLOSED_CODES.has(error.code ?? '')) return;
    called = true;
    onClosed();
  };
  stdout.on('error', onError);
  return () => stdout.off('error', onError);
}
