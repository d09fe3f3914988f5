/**
 * An etcd endpoint as the client holds it: scheme, host and port, parsed once from its URL so a
 * wrong one is refused at construction. Below the connector (which opens connections to it) and the
 * HTTP exchange (which names it in errors), so neither needs the other for it.
 */
import { EtcdError } from './errors.js';

/** A parsed endpoint: `http://host:port` or `https://host:port` with no path. */
export interface Endpoint {
  url: string;
  host: string;
  port: number;
  /** `https://`: TLS, with the client's CA and client certificate. */
  secure: boolean;
}

/** Parses `http://host:port` or `https://host:port`; anything else is a clear error at construction, not at first use. */
export function parseEndpoint(text: string): Endpoint {
  let url: URL;
  try {
    url = new URL(text);
  } catch (error) {
    throw new EtcdError('ETCD_REJECTED', `etcd endpoint ${JSON.stringify(text)} is not a URL (expected http://host:port or https://host:port)`, { cause: error });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new EtcdError('ETCD_REJECTED', `etcd endpoint ${text}: the scheme must be http:// or https://`);
  }
  if (url.pathname !== '/' || url.search !== '' || url.username !== '') {
    throw new EtcdError('ETCD_REJECTED', `etcd endpoint ${text}: give only scheme, host and port`);
  }
  const secure = url.protocol === 'https:';
  const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port);
  // URL keeps the brackets of an IPv6 host; node:http wants the address alone.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return { url: `${url.protocol}//${url.host}`, host, port, secure };
}
