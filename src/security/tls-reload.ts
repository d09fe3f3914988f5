/**
 * Certificates renewed without a restart: a set of PEM files is read again when one of them
 * changes (polled, like the users file) or on SIGHUP. A new set that does not make a usable
 * context (unreadable, not PEM, a key that does not match) is refused with a logged error and the
 * old one stays in use; a good one is handed to the listeners, which give it to new connections
 * while open ones keep the certificate they shook hands with.
 *
 * The server's set (`TlsReloader`: certificate, key, client CA) goes to the TCP and HTTP ports
 * and to the CA the brokers' own client trusts; the etcd client's set (`clientTlsReloader`: CA,
 * client certificate and key) to the etcd client.
 */
import { watchFile, unwatchFile } from 'node:fs';
import type { LogFields, Logger } from '../platform/logger.js';
import { readClientTlsFiles, readTlsFiles, type ClientTlsFiles, type ClientTlsMaterial, type TlsFiles, type TlsMaterial } from './tls.js';

/** How often the files are looked at: a renewal applies within a second, at the cost of a stat. */
export const TLS_FILES_POLL_MS = 500;

/** One set of certificate files: where they are, how they are read and checked, and when two readings are the same. */
export interface CertificateFiles<T> {
  /** The files watched for changes. */
  paths: readonly string[];
  /** Reads and checks them; throws when they do not make a usable set. */
  read(): T;
  same(a: T, b: T): boolean;
  /** What the log lines say about the set (its file names). */
  fields: LogFields;
}

export class CertificateReloader<T> {
  private material: T;
  private readonly listeners = new Set<(material: T) => void>();
  private watched: readonly string[] = [];

  constructor(
    private readonly files: CertificateFiles<T>,
    private readonly logger: Logger,
    initial?: T,
  ) {
    this.material = initial ?? files.read();
  }

  /** The set in use now. */
  get current(): T {
    return this.material;
  }

  /** Calls `listener` with every new set that was accepted; returns an unsubscribe. */
  onChange(listener: (material: T) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Reads the files again; false (logged, the old set kept) when they are not usable or unchanged. */
  reload(): boolean {
    let next: T;
    try {
      next = this.files.read();
    } catch (error) {
      this.logger.error('security.tls.reload_failed', { ...this.files.fields, error });
      return false;
    }
    if (this.files.same(next, this.material)) return false;
    for (const listener of this.listeners) {
      try {
        listener(next);
      } catch (error) {
        // A listener that refuses it keeps the old set; the others have the new one: report it.
        this.logger.error('security.tls.reload_failed', { ...this.files.fields, error });
        return false;
      }
    }
    this.material = next;
    this.logger.info('security.tls.reloaded', this.files.fields);
    return true;
  }

  /** Reloads whenever one of the files changes (a renewal often writes the key and the certificate one after the other: each change is tried). */
  watch(): void {
    if (this.watched.length > 0) return;
    this.watched = [...this.files.paths];
    for (const path of this.watched) {
      watchFile(path, { interval: TLS_FILES_POLL_MS, persistent: false }, (now, before) => {
        if (now.mtimeMs !== before.mtimeMs || now.size !== before.size) this.reload();
      });
    }
  }

  close(): void {
    for (const path of this.watched) unwatchFile(path);
    this.watched = [];
  }
}

/** The server's certificate, key and client CA (`tls.*`), for both ports. */
export class TlsReloader extends CertificateReloader<TlsMaterial> {
  constructor(files: TlsFiles, logger: Logger, initial?: TlsMaterial) {
    super(
      {
        paths: [files.cert, files.key, ...(files.ca === undefined ? [] : [files.ca])],
        read: () => readTlsFiles(files),
        same: (a, b) => a.cert.equals(b.cert) && a.key.equals(b.key) && samePem(a.ca, b.ca),
        fields: { cert: files.cert, key: files.key },
      },
      logger,
      initial,
    );
  }
}

/** A client's CA and optional certificate and key (TLS to etcd); `fields` names them in the log. */
export function clientTlsReloader(files: ClientTlsFiles, fields: LogFields, logger: Logger, initial?: ClientTlsMaterial): CertificateReloader<ClientTlsMaterial> {
  return new CertificateReloader(
    {
      paths: [files.ca, files.cert, files.key].filter((path): path is string => path !== undefined),
      read: () => readClientTlsFiles(files),
      same: (a, b) => samePem(a.ca, b.ca) && samePem(a.cert, b.cert) && samePem(a.key, b.key),
      fields,
    },
    logger,
    initial,
  );
}

function samePem(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === undefined ? b === undefined : b !== undefined && a.equals(b);
}
