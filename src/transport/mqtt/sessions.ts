/**
 * MQTT sessions by client id: at most one connection each (a new CONNECT takes the session over and
 * closes the old connection), and persistent sessions (3.1.1 clean session 0, 5.0 a session expiry
 * above 0) that outlive their connection. A persistent session's subscriptions are durable queue
 * groups, one per client id and filter (topics.ts sessionGroupName), so QoS 1 and 2 messages wait on
 * disk while the client is away; the session itself (its filters, its expiry) is a small JSON file
 * per client under `<data dir>/mqtt/sessions/`, written atomically before the SUBACK, so it survives
 * a broker restart. An expired session is forgotten: its file is removed (its groups stay in the
 * broker, listed by `ferry groups`, until deleted by an operator).
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { mkdirDurable, writeFileAtomic } from '../../platform/atomic-write.js';
import type { Clock, TimerHandle } from '../../platform/clock.js';
import type { FileSystem } from '../../platform/fs.js';
import type { Logger } from '../../platform/logger.js';
import { ConnectRefusal } from './connect.js';
import { MQTT_STORED_SESSIONS_MAX } from './limits.js';
import type { FilterSubscription } from './outbound.js';
import { CONNACK_V4, REASON } from './reason-codes.js';

/** What a session file holds. */
interface StoredSession {
  version: 1;
  clientId: string;
  subscriptions: FilterSubscription[];
  /** Seconds the session lives after its connection closes. */
  expirySeconds: number;
  /** Wall-clock ms when the session expires, while no connection holds it; null while connected. */
  expiresAtMs: number | null;
}

/** The live part of a session the registry keeps: who holds it now, and how to end that. */
export interface SessionHolder {
  /** Another connection took the session (`resumed`: it carries the session on, clean start 0): close this one (5.0: DISCONNECT 0x8E). */
  takenOver(resumed: boolean): void;
}

export class SessionRegistry {
  private readonly holders = new Map<string, SessionHolder>();
  private readonly expiries = new Map<string, TimerHandle>();
  /** The stored sessions as last written (all of them without a data directory, e.g. embedded). */
  private readonly memory = new Map<string, StoredSession>();
  private readonly dir: string | null;
  /** The file write or removal under way per client id: the next one waits for it (they share a temp file name). */
  private readonly fileWork = new Map<string, Promise<void>>();

  constructor(
    private readonly options: { fs: FileSystem | null; dataDir: string | null; clock: Clock; logger: Logger },
  ) {
    this.dir = options.dataDir === null ? null : join(options.dataDir, 'mqtt', 'sessions');
  }

  /** Opens the store and arms the expiry of every stored session (after a restart, none is connected). */
  async open(): Promise<void> {
    const { fs } = this.options;
    if (fs === null || this.dir === null) return;
    await mkdirDurable(fs, this.dir);
    for (const name of await fs.readdir(this.dir)) {
      if (!name.endsWith('.json')) continue;
      const stored = await this.readFile(join(this.dir, name));
      if (stored === null) continue;
      this.memory.set(stored.clientId, stored);
      const expiresAtMs = stored.expiresAtMs ?? this.options.clock.nowMs() + stored.expirySeconds * 1000;
      this.armExpiry(stored.clientId, expiresAtMs);
    }
  }

  /** Persistent sessions without a connection, waiting to expire. */
  get storedCount(): number {
    return this.expiries.size;
  }

  /** Makes `holder` the session's connection, closing the one before it (`resumes`: the new one carries the session on). */
  claim(clientId: string, holder: SessionHolder, resumes: boolean): void {
    const previous = this.holders.get(clientId);
    this.holders.set(clientId, holder);
    this.expiries.get(clientId)?.cancel();
    this.expiries.delete(clientId);
    if (previous !== undefined && previous !== holder) previous.takenOver(resumes);
  }

  /** The connection closed: a persistent session starts to expire, a clean one is gone. */
  async release(clientId: string, holder: SessionHolder, persistent: { expirySeconds: number; subscriptions: FilterSubscription[] } | null): Promise<void> {
    if (this.holders.get(clientId) !== holder) return;
    this.holders.delete(clientId);
    if (persistent === null || persistent.expirySeconds === 0) {
      await this.forget(clientId);
      return;
    }
    const expiresAtMs = this.options.clock.nowMs() + persistent.expirySeconds * 1000;
    await this.save({ version: 1, clientId, subscriptions: persistent.subscriptions, expirySeconds: persistent.expirySeconds, expiresAtMs });
    this.armExpiry(clientId, expiresAtMs);
  }

  /** The stored session of a client id (null: none, or it expired). */
  async load(clientId: string): Promise<StoredSession | null> {
    const stored = this.memory.get(clientId) ?? (this.dir === null ? null : await this.readFile(this.pathOf(clientId)));
    if (stored === null || stored.clientId !== clientId) return null;
    if (stored.expiresAtMs !== null && stored.expiresAtMs <= this.options.clock.nowMs()) {
      await this.forget(clientId);
      return null;
    }
    return stored;
  }

  /**
   * Writes a connected persistent session's filters (before its SUBACK, so an acknowledged
   * subscription survives a restart). A new session past MQTT_STORED_SESSIONS_MAX is refused.
   */
  async store(clientId: string, expirySeconds: number, subscriptions: FilterSubscription[]): Promise<void> {
    if (!this.memory.has(clientId) && this.memory.size >= MQTT_STORED_SESSIONS_MAX) {
      throw new ConnectRefusal(REASON.quotaExceeded, CONNACK_V4.serverUnavailable, `${MQTT_STORED_SESSIONS_MAX} persistent sessions are stored: connect with a clean session, or let some expire`);
    }
    await this.save({ version: 1, clientId, subscriptions, expirySeconds, expiresAtMs: null });
  }

  async forget(clientId: string): Promise<void> {
    this.expiries.get(clientId)?.cancel();
    this.expiries.delete(clientId);
    this.memory.delete(clientId);
    const { fs } = this.options;
    if (fs === null || this.dir === null) return;
    await this.onFile(clientId, () => fs.unlink(this.pathOf(clientId)).catch(() => undefined));
  }

  /** Runs `work` on a client id's file once the work before it on that file is done (a release and the next CONNECT's store may overlap). */
  private onFile(clientId: string, work: () => Promise<void>): Promise<void> {
    const previous = this.fileWork.get(clientId) ?? Promise.resolve();
    const done = previous.catch(() => undefined).then(work);
    const settled = done.catch(() => undefined);
    this.fileWork.set(clientId, settled);
    void settled.then(() => {
      if (this.fileWork.get(clientId) === settled) this.fileWork.delete(clientId);
    });
    return done;
  }

  close(): void {
    for (const timer of this.expiries.values()) timer.cancel();
    this.expiries.clear();
  }

  private armExpiry(clientId: string, expiresAtMs: number): void {
    this.expiries.get(clientId)?.cancel();
    const delayMs = Math.max(0, expiresAtMs - this.options.clock.nowMs());
    this.expiries.set(
      clientId,
      this.options.clock.schedule(delayMs, () => {
        this.expiries.delete(clientId);
        if (this.holders.has(clientId)) return;
        this.options.logger.info('mqtt.session.expired', { clientId });
        void this.forget(clientId);
      }),
    );
  }

  private pathOf(clientId: string): string {
    return join(this.dir!, `${createHash('sha256').update(clientId).digest('hex').slice(0, 32)}.json`);
  }

  private async save(stored: StoredSession): Promise<void> {
    this.memory.set(stored.clientId, stored);
    const { fs } = this.options;
    if (fs === null || this.dir === null) return;
    const bytes = Buffer.from(JSON.stringify(stored));
    await this.onFile(stored.clientId, () => writeFileAtomic(fs, this.pathOf(stored.clientId), bytes));
  }

  /** A file that does not read back as a session is logged and skipped, never fatal. */
  private async readFile(path: string): Promise<StoredSession | null> {
    const { fs } = this.options;
    if (fs === null) return null;
    try {
      const stored = JSON.parse((await fs.readFile(path)).toString('utf8')) as StoredSession;
      return stored.version === 1 && typeof stored.clientId === 'string' && Array.isArray(stored.subscriptions) ? stored : null;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.options.logger.warn('mqtt.session.unreadable', { path, error });
      return null;
    }
  }
}
