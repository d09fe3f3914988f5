/**
 * How a client command (pub, sub, topics, groups, dlq, cluster) reaches the broker and logs in: the
 * address (one broker, or several brokers of a cluster), the credentials and TLS, from flags, then
 * the environment, then FERRY_URL, then the defaults.
 *
 * A password or token is never taken as a flag's value: the command line of every process is
 * readable by every local user (`ps`, /proc/PID/cmdline), lands in shell history and in CI and
 * audit logs. It comes from a file (--password-file, --token-file), from stdin (--password-stdin)
 * or from the environment (FERRY_PASSWORD, FERRY_TOKEN, FERRY_URL), which only the same user and
 * root can read.
 */
import { readFileSync, statSync } from 'node:fs';
import { parseServer } from '../client/address.js';
import type { ConnectOptions, TlsOptions } from '../client/index.js';
import { HELLO_CREDENTIAL_CHARS_MAX } from '../protocol/codec-session.js';
import { isLoopbackHost } from '../security/tls.js';
import { DEFAULT_HOST, DEFAULT_PORT, parsePort, UsageError } from './args.js';

export const CONNECTION_FLAGS = {
  host: { type: 'string' },
  port: { type: 'string' },
  server: { type: 'string', multiple: true },
  url: { type: 'string' },
  user: { type: 'string' },
  'password-stdin': { type: 'boolean' },
  'password-file': { type: 'string' },
  'token-file': { type: 'string' },
  tls: { type: 'boolean' },
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
} as const;

export const CONNECTION_USAGE = `Connection flags of the client commands (flags first, then the environment, then FERRY_URL):
  --host H --port P                   default ${DEFAULT_HOST}:${DEFAULT_PORT}
  --server H:P [--server H:P]...      the brokers of a cluster (or --server h1:p1,h2:p2); any one that answers will do
  --url URL                           like FERRY_URL, which it replaces
  --user NAME --password-file FILE    log in; or --password-stdin (the first line of stdin); or FERRY_USER, FERRY_PASSWORD
  --token-file FILE                   log in with a service token (or FERRY_TOKEN)
  --tls | --tls-ca FILE               TLS, trusting the system's CAs or FILE (or FERRY_CA)
  --tls-cert FILE --tls-key FILE      a client certificate (mutual TLS: its CN is the user)
  FERRY_URL=ferry://[user[:password]@]host[:port][,host[:port]]..., or ferrys://... for TLS
A password is never a flag's value: 'ps' would show it to every user of the machine.
Exit codes: 0 ok, 1 failed, 2 usage, 3 login refused (AUTH_FAILED, AUTH_REQUIRED), 4 TLS failed.`;

/** The environment variables read here (a parameter, so that tests need not touch process.env). */
export interface ConnectionEnv {
  FERRY_URL?: string | undefined;
  FERRY_USER?: string | undefined;
  FERRY_PASSWORD?: string | undefined;
  FERRY_TOKEN?: string | undefined;
  FERRY_CA?: string | undefined;
}

export interface ConnectionFlags {
  host?: string | undefined;
  port?: string | undefined;
  server?: string[] | undefined;
  url?: string | undefined;
  user?: string | undefined;
  'password-stdin'?: boolean | undefined;
  'password-file'?: string | undefined;
  'token-file'?: string | undefined;
  tls?: boolean | undefined;
  'tls-ca'?: string | undefined;
  'tls-cert'?: string | undefined;
  'tls-key'?: string | undefined;
}

export interface ConnectionContext {
  env?: ConnectionEnv;
  /** Where --password-stdin reads (process.stdin by default). */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  /** The command reads its own input from stdin (`ferry pub` without a value): --password-stdin would take a message. */
  stdinCarriesMessages?: boolean;
  /** Where warnings go (process.stderr by default). */
  warn?: (line: string) => void;
}

/** What FERRY_URL says: every part optional. */
export interface ParsedFerryUrl {
  host?: string;
  port?: number;
  /** Several hosts (`ferry://h1:7701,h2:7702`), each as host:port; then host and port are absent. */
  servers?: string[];
  tls: boolean;
  user?: string;
  password?: string;
}

const URL_SCHEMES: Record<string, boolean> = { 'ferry:': false, 'ferrys:': true };

/**
 * Parses FERRY_URL (or --url, named by `source`): `ferry://host:port`, `host:port` (scheme
 * optional, as before), `ferrys://` for TLS, `user:password@` (percent-encoded) in front of the
 * host, and several hosts separated by commas (`ferry://h1:7701,h2:7702`): the brokers of a cluster.
 */
export function parseFerryUrl(url: string, source = 'FERRY_URL'): ParsedFerryUrl {
  const withScheme = url.includes('://') ? url : `ferry://${url}`;
  const parts = /^([^:/?#]+:)\/\/([^/?#]*)(.*)$/s.exec(withScheme);
  const authority = parts?.[2] ?? '';
  const at = authority.lastIndexOf('@');
  const hosts = authority.slice(at + 1).split(',');
  if (parts === null || hosts.length === 1) return parseOneHost(withScheme, source);
  const [, scheme, , rest] = parts;
  const first = parseOneHost(`${scheme}//${authority.slice(0, at + 1)}${hosts[0]}${rest}`, source);
  const servers = hosts.map((text, i) => {
    const one = i === 0 ? first : parseOneHost(`${scheme}//${text}`, source);
    if (one.host === undefined) throw new UsageError(`${source} lists an empty host`);
    return serverText(one.host, one.port ?? DEFAULT_PORT);
  });
  const { host: _host, port: _port, ...common } = first;
  return { ...common, servers };
}

function parseOneHost(url: string, source: string): ParsedFerryUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`${source} is not a URL like ferry://127.0.0.1:7700, ferrys://user@host:7700 or ferry://h1:7701,h2:7702`);
  }
  const tls = URL_SCHEMES[parsed.protocol];
  // A typo in the scheme must not quietly mean plaintext.
  if (tls === undefined) throw new UsageError(`${source} scheme must be ferry:// or ferrys:// (TLS), not ${parsed.protocol}//`);
  const result: ParsedFerryUrl = { tls };
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host !== '') result.host = host;
  if (parsed.port !== '') result.port = Number(parsed.port);
  try {
    if (parsed.username !== '') result.user = decodeURIComponent(parsed.username);
    if (parsed.password !== '') result.password = decodeURIComponent(parsed.password);
  } catch {
    throw new UsageError(`${source} has a badly percent-encoded user or password`);
  }
  return result;
}

function serverText(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

type Address = { host: string; port: number } | { servers: string[] };

/** The broker or brokers to dial: --server, else --host and --port, else the URL's, else the default. */
function addressFrom(flags: ConnectionFlags, url: ParsedFerryUrl, source: string): Address {
  const listed = (flags.server ?? []).flatMap((value) => value.split(',')).map((value) => value.trim());
  if (listed.length > 0) {
    if (flags.host !== undefined || flags.port !== undefined) throw new UsageError('give --server, or --host and --port, not both');
    const servers = listed.map((text) => {
      try {
        const { host, port } = parseServer(text);
        return { host, port };
      } catch (error) {
        throw new UsageError(`--server '${text}' is not host:port (${(error as Error).message})`);
      }
    });
    return servers.length === 1 ? servers[0]! : { servers: servers.map(({ host, port }) => serverText(host, port)) };
  }
  if (url.servers !== undefined && flags.host === undefined) {
    if (flags.port !== undefined) throw new UsageError(`--port alone cannot apply to the several hosts of ${source}: give --server host:port for each`);
    return { servers: url.servers };
  }
  return { host: flags.host ?? url.host ?? DEFAULT_HOST, port: flags.port !== undefined ? parsePort(flags.port) : (url.port ?? DEFAULT_PORT) };
}

function addressHosts(address: Address): string[] {
  return 'servers' in address ? address.servers.map((text) => parseServer(text).host) : [address.host];
}

/** The client's connect options for the flags, the environment and FERRY_URL; reads stdin for --password-stdin. */
export async function connectOptions(flags: ConnectionFlags, context: ConnectionContext = {}): Promise<ConnectOptions> {
  const env = context.env ?? (process.env as ConnectionEnv);
  const warn = context.warn ?? ((line: string) => void process.stderr.write(line + '\n'));
  const urlSource = flags.url !== undefined ? '--url' : 'FERRY_URL';
  const urlText = flags.url ?? env.FERRY_URL;
  const url: ParsedFerryUrl = urlText === undefined || urlText === '' ? { tls: false } : parseFerryUrl(urlText, urlSource);
  const address = addressFrom(flags, url, urlSource);

  const user = flags.user ?? nonEmpty(env.FERRY_USER) ?? url.user;
  const password = await passwordFrom(flags, env, url, context, warn);
  const token = flags['token-file'] !== undefined ? readSecretFile('--token-file', flags['token-file'], warn) : nonEmpty(env.FERRY_TOKEN);
  if (token !== undefined && user !== undefined) throw new UsageError('give a token or a user and password, not both');
  if (password !== undefined && user === undefined) throw new UsageError('a password needs a user: --user NAME or FERRY_USER');
  if (user !== undefined && password === undefined) {
    throw new UsageError(`user ${user} needs a password: --password-file FILE, --password-stdin or FERRY_PASSWORD`);
  }

  const tls = tlsOptions(flags, env, url.tls);
  const remote = addressHosts(address).find((host) => !isLoopbackHost(host));
  if (tls === undefined && (password !== undefined || token !== undefined) && remote !== undefined) {
    warn(`warning: sending credentials to ${remote} without TLS: anyone on the path can read them (add --tls)`);
  }
  return {
    ...address,
    ...(user === undefined ? {} : { user, password: password! }),
    ...(token === undefined ? {} : { token }),
    ...(tls === undefined ? {} : { tls }),
    reconnect: false,
  };
}

async function passwordFrom(
  flags: ConnectionFlags,
  env: ConnectionEnv,
  url: ParsedFerryUrl,
  context: ConnectionContext,
  warn: (line: string) => void,
): Promise<string | undefined> {
  const fromStdin = flags['password-stdin'] === true;
  const file = flags['password-file'];
  if (fromStdin && file !== undefined) throw new UsageError('give --password-stdin or --password-file, not both');
  if (fromStdin) {
    if (context.stdinCarriesMessages === true) {
      throw new UsageError('this command reads its messages from stdin, so the password cannot come from there: use --password-file FILE or FERRY_PASSWORD');
    }
    return readPasswordLine(context.stdin ?? process.stdin);
  }
  if (file !== undefined) return readSecretFile('--password-file', file, warn);
  return nonEmpty(env.FERRY_PASSWORD) ?? url.password;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** The first line of a file; warns when others may read it (as ssh does for keys). */
function readSecretFile(flag: string, path: string, warn: (line: string) => void): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
    if (process.platform !== 'win32' && (statSync(path).mode & 0o077) !== 0) {
      warn(`warning: ${path} can be read by other users; chmod 600 it`);
    }
  } catch (error) {
    throw new UsageError(`cannot read ${flag} ${path}: ${(error as Error).message}`);
  }
  return checkedSecret(firstLine(text), `${flag} ${path}`);
}

function firstLine(text: string): string {
  const newline = text.indexOf('\n');
  return (newline < 0 ? text : text.slice(0, newline)).replace(/\r$/, '');
}

function checkedSecret(secret: string, source: string): string {
  if (secret === '') throw new UsageError(`${source}: the first line is empty`);
  if (secret.length > HELLO_CREDENTIAL_CHARS_MAX) throw new UsageError(`${source}: longer than the ${HELLO_CREDENTIAL_CHARS_MAX} characters the server accepts`);
  return secret;
}

/**
 * The first line of stdin, read no further. At a terminal it prompts on stderr and turns echo
 * off, so the password is not left on the screen.
 */
export async function readPasswordLine(stdin: NonNullable<ConnectionContext['stdin']>): Promise<string> {
  if (stdin.isTTY === true && stdin.setRawMode !== undefined) return checkedSecret(await readHidden(stdin), 'the password typed');
  let text = '';
  for await (const chunk of stdin) {
    text += String(chunk);
    // Breaking out of the loop ends the stream: nothing past the first line is read or kept.
    if (text.includes('\n') || text.length > HELLO_CREDENTIAL_CHARS_MAX) break;
  }
  return checkedSecret(firstLine(text), '--password-stdin');
}

function readHidden(stdin: NonNullable<ConnectionContext['stdin']>): Promise<string> {
  process.stderr.write('password: ');
  stdin.setRawMode!(true);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let typed = '';
    const finish = (error: Error | null): void => {
      stdin.off('data', onData);
      stdin.setRawMode!(false);
      stdin.pause();
      process.stderr.write('\n');
      if (error === null) resolve(typed);
      else reject(error);
    };
    const onData = (chunk: Buffer | string): void => {
      for (const char of String(chunk)) {
        if (char === '\r' || char === '\n' || char === '\u0004') return finish(null);
        if (char === '\u0003') return finish(new UsageError('cancelled'));
        if (char === '\u007f' || char === '\b') typed = Array.from(typed).slice(0, -1).join('');
        else typed += char;
      }
    };
    stdin.on('data', onData);
  });
}

/** undefined: plaintext. Any TLS flag, FERRY_CA or a ferrys:// URL turns TLS on; the server is always verified. */
function tlsOptions(flags: ConnectionFlags, env: ConnectionEnv, urlTls: boolean): TlsOptions | undefined {
  const caPath = flags['tls-ca'] ?? nonEmpty(env.FERRY_CA);
  const certPath = flags['tls-cert'];
  const keyPath = flags['tls-key'];
  if ((certPath === undefined) !== (keyPath === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  if (!(flags.tls === true || urlTls || caPath !== undefined || certPath !== undefined)) return undefined;
  const tls: TlsOptions = {};
  if (caPath !== undefined) tls.ca = readPem(flags['tls-ca'] !== undefined ? '--tls-ca' : 'FERRY_CA', caPath);
  if (certPath !== undefined) {
    tls.cert = readPem('--tls-cert', certPath);
    tls.key = readPem('--tls-key', keyPath!);
  }
  return tls;
}

function readPem(source: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new UsageError(`cannot read ${source} ${path}: ${(error as Error).message}`);
  }
}
