/**
 * What a person sees when a command fails in an expected way — a usage mistake, a server's
 * refusal, a login refused, a TLS failure — and the exit code a script can test: one line, no stack
 * trace, the error code, and a hint at the flag that fixes it. A bug (anything else) keeps its stack.
 */
import { FerryError } from '../errors.js';
import { UsageError } from './args.js';

export const EXIT_CODES = {
  ok: 0,
  /** The request failed: unknown topic, forbidden, server unreachable, ... */
  failed: 1,
  usage: 2,
  /** The server refused the login: AUTH_FAILED (wrong credentials, untrusted client certificate) or AUTH_REQUIRED. */
  loginRefused: 3,
  /** TLS failed: the server's certificate is not trusted or not for that host, or the handshake failed. */
  tls: 4,
  /** `ferry serve`: another process holds the data directory (DATA_DIR_LOCKED). */
  dataDirLocked: 5,
} as const;

/** Node's certificate verification codes that mean "signed by a CA this client does not trust". */
const UNKNOWN_CA_CODES: ReadonlySet<string> = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_UNTRUSTED',
]);
const CERT_DATE_CODES: ReadonlySet<string> = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

export interface Failure {
  message: string;
  exitCode: number;
}

/** The message and exit code for an expected failure; undefined for a bug (show the stack). */
export function describeFailure(error: unknown): Failure | undefined {
  if (error instanceof UsageError) return { message: error.message, exitCode: EXIT_CODES.usage };
  if (error instanceof FerryError) return describeFerryError(error);
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ECONNREFUSED') return { message: `connection refused: is a Ferry broker running there? (${(error as Error).message})`, exitCode: EXIT_CODES.failed };
  if (error instanceof Error && code !== undefined) return { message: error.message, exitCode: EXIT_CODES.failed };
  return undefined;
}

function describeFerryError(error: FerryError): Failure {
  const said = `${error.message} (${error.code})`;
  switch (error.code) {
    case 'AUTH_FAILED':
      return {
        message: `login refused: ${said}; check the user and password, the token or the client certificate`,
        exitCode: EXIT_CODES.loginRefused,
      };
    case 'AUTH_REQUIRED':
      // Said for a missing login, and for plaintext on a TLS-only port (src/transport/tcp/server.ts).
      return {
        message: /\bTLS\b/i.test(error.message)
          ? `${said}; connect with --tls (and --tls-ca FILE for a private CA), or a ferrys:// FERRY_URL`
          : `${said}; log in with --user NAME and --password-file FILE or --password-stdin (or FERRY_USER, FERRY_PASSWORD), or --token-file FILE`,
        exitCode: EXIT_CODES.loginRefused,
      };
    case 'CONNECTION_REFUSED': {
      const unreachable = (error.cause as NodeJS.ErrnoException | undefined)?.code === 'ECONNREFUSED';
      return describeTlsFailure(error) ?? { message: unreachable ? `${said}; is a Ferry broker running there?` : said, exitCode: EXIT_CODES.failed };
    }
    default:
      return { message: said, exitCode: EXIT_CODES.failed };
  }
}

/** A TLS failure under a CONNECTION_REFUSED, told in the terms of the flags that fix it. */
function describeTlsFailure(error: FerryError): Failure | undefined {
  const cause = error.cause as NodeJS.ErrnoException | undefined;
  const code = cause?.code;
  if (code === undefined) return undefined;
  const tls = (message: string, detail = `: ${cause!.message}`): Failure => ({ message: `TLS failed: ${message} (${error.code}${detail})`, exitCode: EXIT_CODES.tls });
  if (UNKNOWN_CA_CODES.has(code)) {
    return tls(`the server's certificate is signed by an unknown CA (${code}); give the CA that signed it with --tls-ca FILE`);
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return tls(`the server's certificate is not for the host connected to; connect by a name or address it lists`);
  if (CERT_DATE_CODES.has(code)) return tls(`the server's certificate is outside its validity dates (${code})`);
  // OpenSSL's own text (a source file and line) says no more than its code.
  if (code.startsWith('ERR_SSL_')) return tls(`the TLS handshake failed (${code}); does the server have TLS on? (if not, drop --tls or use ferry://)`, '');
  if (code.startsWith('ERR_TLS_')) return tls(`the TLS handshake failed (${code})`);
  return undefined;
}
