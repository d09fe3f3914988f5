/**
 * How the client reaches an endpoint: node:http for `http://`, node:https for `https://` with the
 * CA to trust and, for etcd's client-certificate authentication (`--client-cert-auth`), a
 * certificate and key to present. Unary calls share one keep-alive agent per scheme; a watch
 * stream gets a connection of its own. New TLS options (a renewed certificate) apply to
 * connections opened from then on: the agent is replaced, and the old one's connections close
 * once their request is answered, so no call in flight is cut off.
 */
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { EtcdError } from './errors.js';
import type { Endpoint } from './endpoint.js';
import { SOCKETS_PER_ENDPOINT_MAX } from './limits.js';

/** TLS to etcd, as PEM text or buffers. Without `ca`, the system's CAs are trusted. */
export interface EtcdTlsOptions {
  /** CA certificates etcd's server certificate must be signed by. */
  ca?: string | Buffer;
  /** A client certificate and its key, for etcd's `--client-cert-auth`; both or neither. */
  cert?: string | Buffer;
  key?: string | Buffer;
}

/** What a request needs beyond its path: for a unary call the shared agent, for a stream a connection of its own. */
export type ConnectionUse = 'pooled' | 'own';

export class EtcdConnector {
  private readonly httpAgent = new HttpAgent({ keepAlive: true, maxSockets: SOCKETS_PER_ENDPOINT_MAX, maxFreeSockets: SOCKETS_PER_ENDPOINT_MAX });
  private httpsAgent: HttpsAgent;
  private tls: EtcdTlsOptions;

  constructor(tls: EtcdTlsOptions = {}) {
    this.tls = checkTlsOptions(tls);
    this.httpsAgent = newHttpsAgent(this.tls);
  }

  /**
   * TLS options for connections opened from now on (a renewed CA or client certificate). Throws
   * ETCD_REJECTED, and keeps the old ones, when they do not make a usable TLS context.
   */
  setTls(tls: EtcdTlsOptions): void {
    const checked = checkTlsOptions(tls);
    const retired = this.httpsAgent;
    this.tls = checked;
    this.httpsAgent = newHttpsAgent(checked);
    retire(retired);
  }

  /** A POST request to `endpoint`; the caller writes the body and listens for its events. */
  request(endpoint: Endpoint, path: string, headers: RequestOptions['headers'], use: ConnectionUse): ClientRequest {
    const options: RequestOptions = { host: endpoint.host, port: endpoint.port, path, method: 'POST', headers };
    if (!endpoint.secure) return httpRequest({ ...options, agent: use === 'pooled' ? this.httpAgent : false });
    // node:https checks the certificate against the host: its DNS name, or an IP address's IP SANs.
    if (use === 'pooled') return httpsRequest({ ...options, agent: this.httpsAgent });
    return httpsRequest({ ...options, agent: false, ...this.tls });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

function newHttpsAgent(tls: EtcdTlsOptions): HttpsAgent {
  return new HttpsAgent({ keepAlive: true, maxSockets: SOCKETS_PER_ENDPOINT_MAX, maxFreeSockets: SOCKETS_PER_ENDPOINT_MAX, ...tls });
}

/**
 * An agent no longer used for new requests: its idle connections close now, and each busy one once
 * its answer is read (an agent without keep-alive closes a connection when its request is done).
 */
function retire(agent: HttpsAgent): void {
  (agent as unknown as { keepAlive: boolean }).keepAlive = false;
  for (const sockets of Object.values(agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
}

/** The options, checked once: a certificate needs its key, and the PEM must make a TLS context. */
function checkTlsOptions(tls: EtcdTlsOptions): EtcdTlsOptions {
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new EtcdError('ETCD_REJECTED', 'etcd TLS: a client certificate and its key go together (give both or neither)');
  }
  const options: EtcdTlsOptions = {
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
    ...(tls.cert === undefined ? {} : { cert: tls.cert, key: tls.key! }),
  };
  try {
    if (options.ca !== undefined) checkCertificates(options.ca);
    createSecureContext(options);
  } catch (error) {
    throw new EtcdError('ETCD_REJECTED', `etcd TLS: the CA, certificate or key is not usable: ${(error as Error).message}`, { cause: error });
  }
  return options;
}

/** A CA bundle holds at least one certificate, each readable (a TLS context ignores what is not). */
function checkCertificates(pem: string | Buffer): void {
  const blocks = pem.toString().match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error('no PEM certificate in the CA');
  for (const block of blocks) new X509Certificate(block);
}

/**
 * Errors of the TLS handshake itself: the server's certificate did not verify (OpenSSL's
 * verification codes, Node's host-name check), or the server refused the handshake or this
 * client's certificate (an alert, `ERR_SSL_…`). nothing reaches etcd's server in any of these.
 * With TLS 1.3 a refused client certificate is heard only after the client sent its request (the
 * client's side of the handshake was done), which is why the code, not the moment, decides.
 */
const CERTIFICATE_ERROR_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);
/** OpenSSL errors that only a handshake gives: alerts about certificates, versions, or no TLS at all. */
const HANDSHAKE_ERROR_PATTERN = /^ERR_SSL_.*(CERTIFICATE|UNKNOWN_CA|HANDSHAKE_FAILURE|PROTOCOL_VERSION|WRONG_VERSION_NUMBER|UNSUPPORTED_PROTOCOL|NO_PROTOCOLS_AVAILABLE)/;
/** Alerts in which the server refused this client's certificate (or its absence). */
const CLIENT_CERTIFICATE_REFUSED_PATTERN = /CERTIFICATE|UNKNOWN_CA|HANDSHAKE_FAILURE/;

export function isTlsFailure(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && (CERTIFICATE_ERROR_CODES.has(code) || HANDSHAKE_ERROR_PATTERN.test(code));
}

/** The typed error of a TLS failure with `endpoint`, saying which side refused and what fixes it. */
export function tlsFailure(error: unknown, endpoint: Endpoint): EtcdError {
  const cause = error as NodeJS.ErrnoException;
  return new EtcdError('ETCD_TLS_FAILED', `etcd at ${endpoint.url}: ${tlsHint(cause.code ?? '', cause.message, endpoint)}`, { cause: error, endpoint: endpoint.url });
}

function tlsHint(code: string, message: string, endpoint: Endpoint): string {
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return `etcd's certificate is not valid now (${code})`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH') return `etcd's certificate does not name ${endpoint.host} (${code})`;
  if (CERTIFICATE_ERROR_CODES.has(code)) return `etcd's certificate is not trusted (${code}): give the CA that signed it (--etcd-ca FILE)`;
  if (CLIENT_CERTIFICATE_REFUSED_PATTERN.test(code)) {
    return `etcd refused the TLS handshake (${code}): it requires a client certificate signed by its --trusted-ca-file (--etcd-cert FILE --etcd-key FILE)`;
  }
  return `the TLS handshake failed (${code || message}); does etcd serve TLS on this port?`;
}
