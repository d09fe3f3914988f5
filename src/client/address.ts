/**
 * Server addresses: `host:port` strings (IPv6 hosts in brackets), a `ferry://` URL naming one
 * server or several (`ferry://h1:7701,h2:7702`), and the key one address has in the client's maps.
 */
import { FerryError } from '../errors.js';
import { DEFAULT_HOST, DEFAULT_PORT } from '../protocol/limits.js';

export { DEFAULT_HOST, DEFAULT_PORT };

export interface ServerAddress {
  host: string;
  port: number;
}

/** `host:port`, `host` (default port), `[v6]:port` or `[v6]`; a bare IPv6 address takes the default port. */
export function parseServer(text: string): ServerAddress {
  const trimmed = text.trim();
  const bracketed = /^\[([^\]]+)\](?::(\d*))?$/.exec(trimmed);
  let host: string;
  let portText: string | undefined;
  if (bracketed !== null) {
    host = bracketed[1]!;
    portText = bracketed[2];
  } else if ((trimmed.match(/:/g) ?? []).length > 1) {
    host = trimmed; // an IPv6 address without brackets: no port can follow it
  } else {
    const colon = trimmed.indexOf(':');
    host = colon < 0 ? trimmed : trimmed.slice(0, colon);
    portText = colon < 0 ? undefined : trimmed.slice(colon + 1);
  }
  if (host === '' || /[\s/@,]/.test(host)) throw new FerryError('INVALID_ARGUMENT', `server '${text}' is not host:port`);
  const port = portText === undefined || portText === '' ? DEFAULT_PORT : Number(portText);
  if (!/^\d*$/.test(portText ?? '') || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new FerryError('INVALID_ARGUMENT', `server '${text}': the port must be a number from 1 to 65535`);
  }
  return { host, port };
}

/** The address as the client keys it, and as brokers advertise it: `host:port`, `[v6]:port`. */
export function addressKey(address: ServerAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** Parses `ferry://host:port` or `ferry://h1:p1,h2:p2` (ports optional; IPv6 hosts in brackets). */
export function parseUrl(url: string): ServerAddress[] {
  const match = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)(?:[/?#].*)?$/is.exec(url.trim());
  if (match === null) throw new FerryError('INVALID_ARGUMENT', `not a URL: ${url}`);
  if (match[1]!.toLowerCase() !== 'ferry') throw new FerryError('INVALID_ARGUMENT', `URL scheme must be ferry://, got ${url}`);
  // Credentials in the URL are not read here (they are options: user, password, token).
  const authority = match[2]!.slice(match[2]!.lastIndexOf('@') + 1);
  if (authority === '') return [{ host: DEFAULT_HOST, port: DEFAULT_PORT }];
  return authority.split(',').map((part) => parseServer(part));
}
