/**
 * A Logger that counts the warnings and errors passing through it, by event and error code, before
 * handing them on. Every component already logs its trouble as a named event (a slow consumer,
 * a full disk, a failed fsync), so counting those events gives an alertable metric for each
 * without a hook per component: `ferry_log_events_total{level,event,code}`.
 */
import type { LogFields, Logger } from '../platform/logger.js';

/** Distinct (level, event, code) series at most: event names are constants, so this is only a guard. */
const SERIES_MAX = 1000;

export interface LogEventCount {
  level: 'warn' | 'error';
  event: string;
  code: string;
  count: number;
}

export class CountingLogger implements Logger {
  private readonly counts = new Map<string, LogEventCount>();

  constructor(private readonly inner: Logger) {}

  debug(event: string, fields?: LogFields): void {
    this.inner.debug(event, fields);
  }
  info(event: string, fields?: LogFields): void {
    this.inner.info(event, fields);
  }
  warn(event: string, fields?: LogFields): void {
    this.count('warn', event, fields);
    this.inner.warn(event, fields);
  }
  error(event: string, fields?: LogFields): void {
    this.count('error', event, fields);
    this.inner.error(event, fields);
  }

  eventCounts(): Iterable<LogEventCount> {
    return this.counts.values();
  }

  private count(level: 'warn' | 'error', event: string, fields: LogFields | undefined): void {
    const code = codeOf(fields);
    const key = `${level}\u0000${event}\u0000${code}`;
    const entry = this.counts.get(key);
    if (entry !== undefined) entry.count += 1;
    else if (this.counts.size < SERIES_MAX) this.counts.set(key, { level, event, code, count: 1 });
  }
}

function codeOf(fields: LogFields | undefined): string {
  if (fields === undefined) return '';
  if (typeof fields['code'] === 'string') return fields['code'];
  const code = (fields['error'] as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : '';
}
