/**
 * TLS material and what a server needs around it: reading the certificate, key and CA files (with
 * errors that name the file), the secure context both ports use, the client certificate a peer
 * presented (mutual TLS maps its subject CN to a user; the audit log names its subject and
 * fingerprint), and the loopback test that keeps a broker without users off the network. Also the
 * files of a TLS client (the etcd client): a CA and an optional certificate and key.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { createSecureContext, type TLSSocket } from 'node:tls';
import { FerryError } from '../errors.js';

/** First byte of a TLS connection: a handshake record (RFC 8446, 5.1). Ferry frames start with 0xFE. */
export const TLS_HANDSHAKE_RECORD = 0x16;

/**
 * Longest TLS handshake allowed by default: NATS allows 2 s (TLS_TIMEOUT), RabbitMQ 5 s
 * (ssl_handshake_timeout); 5 s tolerates a slow client on a long path with a certificate chain,
 * and a silent socket still goes within seconds.
 */
export const TLS_HANDSHAKE_TIMEOUT_MS_DEFAULT = 5_000;

export interface TlsFiles {
  /** PEM certificate (chain) of the server. */
  cert: string;
  /** PEM private key of the certificate. */
  key: string;
  /** PEM CA bundle: when set, clients may present a certificate signed by it (mutual TLS). */
  ca?: string | undefined;
}

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
}

function readPem(kind: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new FerryError('INVALID_ARGUMENT', `cannot read the TLS ${kind} file ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/** Reads the files and checks that they make a usable context (a key that matches the certificate). */
export function readTlsFiles(files: TlsFiles): TlsMaterial {
  const material: TlsMaterial = { cert: readPem('certificate', files.cert), key: readPem('key', files.key) };
  if (files.ca !== undefined) material.ca = readPem('CA', files.ca);
  try {
    createSecureContext(material);
  } catch (error) {
    throw new FerryError('INVALID_ARGUMENT', `TLS certificate ${files.cert} and key ${files.key} are not usable: ${(error as Error).message}`, { cause: error });
  }
  return material;
}

/** The files of a TLS client: the CA to trust (default: the system's), and a certificate and key to present. */
export interface ClientTlsFiles {
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
}

export interface ClientTlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** Reads a client's files and checks that they make a usable context (a key that matches the certificate). */
export function readClientTlsFiles(files: ClientTlsFiles): ClientTlsMaterial {
  const material: ClientTlsMaterial = {};
  if (files.ca !== undefined) material.ca = readPem('CA', files.ca);
  if (files.cert !== undefined) material.cert = readPem('certificate', files.cert);
  if (files.key !== undefined) material.key = readPem('key', files.key);
  try {
    if (material.ca !== undefined) checkCertificates(material.ca);
    createSecureContext(material);
  } catch (error) {
    const named = [files.ca, files.cert, files.key].filter((path) => path !== undefined).join(', ');
    throw new FerryError('INVALID_ARGUMENT', `TLS files ${named} are not usable: ${(error as Error).message}`, { cause: error });
  }
  return material;
}

/** A CA bundle holds at least one certificate, each readable (a TLS context silently ignores what is not). */
function checkCertificates(pem: Buffer): void {
  const blocks = pem.toString('utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error('the CA file holds no PEM certificate');
  for (const block of blocks) new X509Certificate(block);
}

/** A client certificate as presented, for the audit log: who it names and which one it is. */
export interface PresentedCertificate {
  /** The subject, `CN=alice, O=Example` (as far as it has one). */
  subject: string;
  /** The subject CN: the user it logs in as; null when it has none. */
  commonName: string | null;
  /** SHA-256 fingerprint, `AB:CD:…`. */
  fingerprint: string;
  /** Whether it verified against the configured CA. */
  trusted: boolean;
  /** Why not, when it did not. */
  untrustedReason: string | null;
}

/** The certificate the client presented on `socket`, verified or not; null when it presented none. */
export function presentedCertificate(socket: TLSSocket): PresentedCertificate | null {
  const certificate = socket.getPeerCertificate();
  if (certificate === null || certificate === undefined || Object.keys(certificate).length === 0) return null;
  const subject = certificate.subject ?? {};
  const cn = subject.CN;
  const name = Array.isArray(cn) ? cn[0] : cn;
  return {
    subject: Object.entries(subject)
      .map(([field, value]) => `${field}=${Array.isArray(value) ? value.join('+') : String(value)}`)
      .join(', '),
    commonName: typeof name === 'string' && name !== '' ? name : null,
    fingerprint: certificate.fingerprint256 ?? '',
    trusted: socket.authorized,
    untrustedReason: socket.authorized ? null : String(socket.authorizationError ?? 'not signed by the configured CA'),
  };
}

/** Why a presented certificate cannot log in (AUTH_FAILED), or null when it verified and names someone. */
export function certificateRefusal(certificate: PresentedCertificate): FerryError | null {
  if (!certificate.trusted) return new FerryError('AUTH_FAILED', `the client certificate is not trusted: ${certificate.untrustedReason}`);
  if (certificate.commonName === null) return new FerryError('AUTH_FAILED', 'the client certificate has no subject CN to name a user');
  return null;
}

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (bare === 'localhost') return true;
  const v4 = bare.startsWith('::ffff:') ? bare.slice('::ffff:'.length) : bare;
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return isIP(bare) === 6 && (bare === '::1' || bare === '0:0:0:0:0:0:0:1');
}
