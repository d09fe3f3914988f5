/**
 * Certificates renewed without a restart: the certificate, key and CA files are read again when
 * they change (polled, like the users file) or on SIGHUP. A new set that does not make a usable
 * context (unreadable, not PEM, a key that does not match) is refused with a logged error and the
 * old one stays in use; a good one is handed to the listeners (the TCP and HTTP ports), which give
 * it to new connections while open ones keep the certificate they shook hands with.
 */
import { watchFile, unwatchFile } from 'node:fs';
import type { Logger } from '../platform/logger.js';
import { readTlsFiles, type TlsFiles, type TlsMaterial } from './tls.js';

/** How often the files are looked at: a renewal applies within a second, at the cost of a stat. */
export const TLS_FILES_POLL_MS = 500;

export class TlsReloader {
  private material: TlsMaterial;
  private readonly listeners = new Set<(material: TlsMaterial) => void>();
  private watched: string[] = [];

  constructor(
    private readonly files: TlsFiles,
    private readonly logger: Logger,
    initial?: TlsMaterial,
  ) {
    this.material = initial ?? readTlsFiles(files);
  }

  /** The certificate, key and CA in use now. */
  get current(): TlsMaterial {
    return this.material;
  }

  /** Calls `listener` with every new set that was accepted; returns an unsubscribe. */
  onChange(listener: (material: TlsMaterial) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Reads the files again; false (logged, the old set kept) when they are not usable or unchanged. */
  reload(): boolean {
    let next: TlsMaterial;
    try {
      next = readTlsFiles(this.files);
    } catch (error) {
      this.logger.error('security.tls.reload_failed', { cert: this.files.cert, key: this.files.key, error });
      return false;
    }
    if (sameMaterial(next, this.material)) return false;
    for (const listener of this.listeners) {
      try {
        listener(next);
      } catch (error) {
        // A listener that refuses it keeps the old set; the others have the new one: report it.
        this.logger.error('security.tls.reload_failed', { cert: this.files.cert, error });
        return false;
      }
    }
    this.material = next;
    this.logger.info('security.tls.reloaded', { cert: this.files.cert });
    return true;
  }

  /** Reloads whenever one of the files changes (a renewal often writes the key and the certificate one after the other: each change is tried). */
  watch(): void {
    if (this.watched.length > 0) return;
    this.watched = [this.files.cert, this.files.key, ...(this.files.ca === undefined ? [] : [this.files.ca])];
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

function sameMaterial(a: TlsMaterial, b: TlsMaterial): boolean {
  return a.cert.equals(b.cert) && a.key.equals(b.key) && (a.ca === undefined ? b.ca === undefined : b.ca !== undefined && a.ca.equals(b.ca));
}
