/**
 * The logging interface every component takes in its constructor. Events are structured: a short
 * stable message (`event`) plus fields, so an operator can grep for them. main.ts builds the real one.
 */
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

type Level = 'debug' | 'info' | 'warn' | 'error';
const LEVEL_RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** One JSON object per line on a stream (stderr by default). */
export class JsonLogger implements Logger {
  constructor(
    private readonly levelMin: Level = 'info',
    private readonly out: NodeJS.WritableStream = process.stderr,
    private readonly base: LogFields = {},
  ) {}

  private write(level: Level, event: string, fields?: LogFields): void {
    if (LEVEL_RANK[level] < LEVEL_RANK[this.levelMin]) return;
    const line = { time: new Date().toISOString(), level, event, ...this.base, ...fields };
    this.out.write(JSON.stringify(line, replaceErrors) + '\n');
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

function replaceErrors(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return { name: value.name, message: value.message, ...(code === undefined ? {} : { code }) };
  }
  return value;
}
