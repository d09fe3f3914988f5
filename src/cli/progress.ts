/**
 * A progress bar for long CLI work (`ferry pub --count`, `ferry dlq redrive`): one line on stderr,
 * redrawn at most a few times a second, with the rate and the time left. Off unless stderr is a
 * terminal, so piped output and logs stay clean. No dependencies.
 */

/** Redraws per second at most: smooth to the eye, negligible next to the work measured. */
const REDRAW_INTERVAL_MS = 100;
const BAR_WIDTH = 28;

export interface ProgressOptions {
  /** What is being counted ("messages"); shown after the numbers. */
  unit?: string;
  /** Where to draw; process.stderr by default. */
  stream?: { write(text: string): unknown; isTTY?: boolean; columns?: number };
  /** Force on or off; by default on when the stream is a terminal. */
  enabled?: boolean;
  /** Milliseconds clock (tests pass a fake one). */
  nowMs?: () => number;
}

export interface Progress {
  /** Adds `count` to the work done and redraws if due. */
  tick(count?: number): void;
  /** Draws the final state and ends the line (nothing when disabled). */
  done(): void;
  readonly enabled: boolean;
}

export function createProgress(label: string, total: number | undefined, options: ProgressOptions = {}): Progress {
  const stream = options.stream ?? process.stderr;
  const enabled = options.enabled ?? stream.isTTY === true;
  const nowMs = options.nowMs ?? (() => performance.now());
  const startedMs = nowMs();
  let done = 0;
  let lastDrawMs = -Infinity;
  let finished = false;

  const draw = (): void => {
    const elapsedS = Math.max(0.001, (nowMs() - startedMs) / 1000);
    stream.write('\r' + formatProgress(label, done, total, done / elapsedS, options.unit ?? '', stream.columns) + '\x1b[K');
  };

  return {
    enabled,
    tick(count = 1) {
      done += count;
      if (!enabled || finished) return;
      const now = nowMs();
      if (now - lastDrawMs < REDRAW_INTERVAL_MS) return;
      lastDrawMs = now;
      draw();
    },
    done() {
      if (!enabled || finished) return;
      finished = true;
      draw();
      stream.write('\n');
    },
  };
}

/** `label [########------] 45% 4,500/10,000 messages 1,234/s 4s left` (fits `columns` when given). */
export function formatProgress(label: string, done: number, total: number | undefined, ratePerS: number, unit: string, columns?: number): string {
  const count = (n: number): string => Math.round(n).toLocaleString('en-US');
  const rate = `${count(ratePerS)}/s`;
  const suffix = unit === '' ? '' : ` ${unit}`;
  if (total === undefined || total <= 0) return `${label} ${count(done)}${suffix} ${rate}`;
  const fraction = Math.min(1, done / total);
  const left = ratePerS > 0 ? Math.max(0, (total - done) / ratePerS) : Infinity;
  const eta = fraction >= 1 ? 'done' : Number.isFinite(left) ? `${formatSeconds(left)} left` : '';
  const text = `${Math.floor(fraction * 100)}% ${count(done)}/${count(total)}${suffix} ${rate} ${eta}`.trimEnd();
  const width = columns === undefined || columns <= 0 ? BAR_WIDTH : Math.max(0, Math.min(BAR_WIDTH, columns - label.length - text.length - 5));
  if (width < 5) return `${label} ${text}`;
  const filled = Math.round(fraction * width);
  return `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${text}`;
}

function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(Math.ceil(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}
