/** Small helpers shared by the CLI commands: typed flag parsing and the client address. */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type FlagOptions = NonNullable<ParseArgsConfig['options']>;
import { FerryError } from '../protocol/errors.js';

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 7700;

/** Usage errors: printed without a stack trace, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type Parsed<O extends FlagOptions> = ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>>;

export function parse<const O extends FlagOptions>(args: string[], options: O, positionalsMax: number): Parsed<O> {
  let parsed: Parsed<O>;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true as const, strict: true as const });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (parsed.positionals.length > positionalsMax) {
    throw new UsageError(`unexpected argument '${parsed.positionals[positionalsMax]}'`);
  }
  return parsed;
}

export const CONNECTION_FLAGS = {
  host: { type: 'string' },
  port: { type: 'string' },
} as const;

/** --host/--port, else FERRY_URL (ferry://host:port), else the defaults. */
export function serverAddress(values: { host?: string | undefined; port?: string | undefined }): { host: string; port: number } {
  let host = DEFAULT_HOST;
  let port = DEFAULT_PORT;
  const url = process.env['FERRY_URL'];
  if (url !== undefined && url !== '') {
    let parsed: URL;
    try {
      parsed = new URL(url.includes('://') ? url : `ferry://${url}`);
    } catch {
      throw new UsageError(`FERRY_URL '${url}' is not a URL like ferry://127.0.0.1:7700`);
    }
    host = parsed.hostname || host;
    if (parsed.port !== '') port = Number(parsed.port);
  }
  if (values.host !== undefined) host = values.host;
  if (values.port !== undefined) port = parsePort(values.port);
  return { host, port };
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

/** The message a person should see for an expected failure; undefined for a bug (show the stack). */
export function describeExpectedError(error: unknown): string | undefined {
  if (error instanceof UsageError) return error.message;
  if (error instanceof FerryError) return `${error.message} (${error.code})`;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ECONNREFUSED') return `connection refused: is a Ferry broker running there? (${(error as Error).message})`;
  if (typeof code === 'string' && code.startsWith('E')) return `${(error as Error).message}`;
  if (error instanceof Error && (error as { code?: unknown }).code !== undefined) return error.message;
  return undefined;
}
