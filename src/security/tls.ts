/**
 * TLS material and what a server needs around it: reading the certificate, key and CA files once
 * at start (with errors that name the file), the secure context both ports use, the subject CN of
 * a verified client certificate (mutual TLS maps it to a user), and the loopback test that keeps
 * a broker without users off the network.
 */
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

/**
 * The subject CN of the certificate the client presented, if it verified against the CA; null
 * when the client presented none. A certificate that does not verify is an AUTH_FAILED.
 */
export function verifiedPeerName(socket: TLSSocket): string | null {
  const certificate = socket.getPeerCertificate();
  if (certificate === null || certificate === undefined || Object.keys(certificate).length === 0) return null;
  if (!socket.authorized) {
    throw new FerryError('AUTH_FAILED', `the client certificate is not trusted: ${String(socket.authorizationError ?? 'not signed by the configured CA')}`);
  }
  const cn = certificate.subject?.CN;
  const name = Array.isArray(cn) ? cn[0] : cn;
  if (typeof name !== 'string' || name === '') throw new FerryError('AUTH_FAILED', 'the client certificate has no subject CN to name a user');
  return name;
}

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (bare === 'localhost') return true;
  const v4 = bare.startsWith('::ffff:') ? bare.slice('::ffff:'.length) : bare;
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return isIP(bare) === 6 && (bare === '::1' || bare === '0:0:0:0:0:0:0:1');
}
