/**
 * The logging interface every component takes in its constructor. Events are structured: a short
 * stable name (`event`, like `broker.dead_letter.moved`) plus fields, so an operator can grep for
 * them. The real implementation writes through pino: one JSON object per line, or — for a person
 * at a terminal — one readable line per event (a small formatter here, no pino-pretty). Only the
 * composition root (src/cli/serve.ts) builds one; everything else receives a Logger.
 */
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

export type Level = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'pretty';

export interface LoggerOptions {
  level?: Level;
  format?: LogFormat;
  /** Where lines go; stderr by default (stdout belongs to command output). */
  out?: { write(line: string): unknown };
  /** Fields on every line. */
  base?: LogFields;
  /** Pretty format only: colour the level (default: when `out` is a terminal). */
  color?: boolean;
}

/** Builds the process logger: JSON lines, or readable lines for a terminal. */
export function createLogger(options: LoggerOptions = {}): Logger {
  return new JsonLogger(options.level ?? 'info', options.out ?? process.stderr, options.base ?? {}, options.format ?? 'json', options.color);
}

/**
 * A Logger over pino. Writes are synchronous on purpose: the broker logs events (connections,
 * recovery, dead letters), not per-message traffic, and a line written before a crash must not be
 * lost in a buffer.
 */
export class JsonLogger implements Logger {
  private readonly pino: PinoLogger;

  constructor(
    levelMin: Level = 'info',
    out: { write(line: string): unknown } = process.stderr,
    base: LogFields = {},
    format: LogFormat = 'json',
    color?: boolean,
  ) {
    const isStderr = out === process.stderr;
    const json: DestinationStream = isStderr ? pino.destination({ dest: 2, sync: true }) : { write: (line: string) => void out.write(line) };
    const destination: DestinationStream =
      format === 'pretty' ? new PrettyDestination(out, color ?? (isStderr && process.stderr.isTTY === true)) : json;
    this.pino = pino(
      {
        level: levelMin,
        base: null,
        messageKey: 'event',
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
        serializers: { error: serializeError, cause: serializeError },
      },
      destination,
    ).child(base);
  }

  private write(level: Level, event: string, fields?: LogFields): void {
    if (!this.pino.isLevelEnabled(level)) return;
    // An error is logged once, where it is handled, with its stable code at the top level.
    const code = fields === undefined || fields['code'] !== undefined ? undefined : errorCode(fields['error']);
    this.pino[level](code === undefined ? (fields ?? {}) : { code, ...fields }, event);
  }

  debug(event: string, fields?: LogFields): void {
    this.write('debug', event, fields);
  }
  info(event: string, fields?: LogFields): void {
    this.write('info', event, fields);
  }
  warn(event: string, fields?: LogFields): void {
    this.write('warn', event, fields);
  }
  error(event: string, fields?: LogFields): void {
    this.write('error', event, fields);
  }
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Errors as plain objects with their code; the stack only for errors without one (bugs). */
function serializeError(value: unknown): unknown {
  if (!(value instanceof Error)) return value;
  const code = errorCode(value);
  return {
    name: value.name,
    message: value.message,
    ...(code === undefined ? { stack: value.stack } : { code }),
    ...(value.cause === undefined ? {} : { cause: serializeError(value.cause) }),
  };
}

const LEVEL_LABELS: Record<string, string> = { debug: 'DEBUG', info: 'INFO ', warn: 'WARN ', error: 'ERROR' };
const LEVEL_COLORS: Record<string, string> = { debug: '\x1b[90m', info: '\x1b[36m', warn: '\x1b[33m', error: '\x1b[31m' };
const RESET = '\x1b[0m';
const DIM = '\x1b[2m';
/** Fields pino adds that the readable line shows in its own places. */
const LINE_KEYS = new Set(['level', 'time', 'event']);

/** `12:00:01.234 INFO  broker.listening host=127.0.0.1 port=7700`: pino's JSON turned into a line for people. */
export class PrettyDestination implements DestinationStream {
  constructor(
    private readonly out: { write(line: string): unknown },
    private readonly color: boolean,
  ) {}

  write(line: string): void {
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.out.write(line);
      return;
    }
    this.out.write(formatPretty(entry, this.color) + '\n');
  }
}

export function formatPretty(entry: Record<string, unknown>, color: boolean): string {
  const level = String(entry['level']);
  const time = typeof entry['time'] === 'string' ? entry['time'].slice(11, 23) : '';
  const label = LEVEL_LABELS[level] ?? level.toUpperCase();
  const stacks: string[] = [];
  const fields = Object.entries(entry)
    .filter(([key]) => !LINE_KEYS.has(key))
    .map(([key, value]) => {
      if (isSerializedError(value)) {
        // Errors read best as their message inline and the stack (bugs only) on the lines below.
        if (typeof value.stack === 'string') stacks.push(value.stack.split('\n').slice(1).join('\n'));
        return `${key}=${JSON.stringify(value.message)}${typeof value.code === 'string' ? `(${value.code})` : ''}`;
      }
      return `${key}=${formatValue(value)}`;
    })
    .join(' ');
  const head = color ? `${DIM}${time}${RESET} ${LEVEL_COLORS[level] ?? ''}${label}${RESET}` : `${time} ${label}`;
  const text = `${head} ${String(entry['event'] ?? '')}${fields === '' ? '' : ' ' + fields}`;
  return stacks.length === 0 ? text : `${text}\n${stacks.join('\n')}`;
}

function isSerializedError(value: unknown): value is { message: string; code?: unknown; stack?: unknown } {
  return typeof value === 'object' && value !== null && typeof (value as { message?: unknown }).message === 'string' && 'name' in value;
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}
