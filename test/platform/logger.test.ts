/** The pino-based logger: JSON lines with the event name, levels, errors with their code; the readable format. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, formatPretty } from '../../src/platform/logger.js';
import { FerryError } from '../../src/errors.js';
import { CountingLogger } from '../../src/admin/log-tap.js';

function capture(): { lines: string[]; write(line: string): void } {
  const lines: string[] = [];
  return { lines, write: (line: string) => void lines.push(...line.split('\n').filter(Boolean)) };
}

test('logger - one JSON object per line with level, time, event and fields; below the level nothing', () => {
  const out = capture();
  const logger = createLogger({ level: 'info', out, base: { node: 'a' } });
  logger.debug('hidden.event', {});
  logger.info('broker.listening', { host: '127.0.0.1', port: 7700 });
  logger.warn('transport.slow_consumer', { connection: 3 });
  assert.equal(out.lines.length, 2);
  const first = JSON.parse(out.lines[0]!);
  assert.deepEqual([first.level, first.event, first.host, first.port, first.node], ['info', 'broker.listening', '127.0.0.1', 7700, 'a']);
  assert.match(first.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(JSON.parse(out.lines[1]!).level, 'warn');
});

test('logger - an error is logged with its code at the top level; a bug keeps its stack', () => {
  const out = capture();
  const logger = createLogger({ level: 'debug', out });
  logger.error('storage.failed', { error: new FerryError('DISK_FULL', 'no space left', { cause: new Error('ENOSPC') }) });
  logger.error('admin.request_failed', { error: new TypeError('x is undefined') });
  const [known, bug] = out.lines.map((line) => JSON.parse(line));
  assert.equal(known.code, 'DISK_FULL');
  assert.deepEqual([known.error.code, known.error.message, known.error.stack], ['DISK_FULL', 'no space left', undefined]);
  assert.equal(known.error.cause.message, 'ENOSPC');
  assert.equal(bug.code, undefined);
  assert.match(bug.error.stack, /TypeError: x is undefined/);
});

test('logger - the readable format: time, level, event, key=value; errors inline with their code', () => {
  const out = capture();
  const logger = createLogger({ level: 'info', format: 'pretty', out, color: false });
  logger.info('broker.listening', { host: '127.0.0.1', port: 7700, note: 'two words' });
  logger.error('storage.failed', { error: new FerryError('STORAGE_FAILED', 'fsync failed') });
  assert.match(out.lines[0]!, /^\d\d:\d\d:\d\d\.\d{3} INFO  broker\.listening host=127\.0\.0\.1 port=7700 note="two words"$/);
  assert.match(out.lines[1]!, /ERROR storage\.failed code=STORAGE_FAILED error="fsync failed"\(STORAGE_FAILED\)$/);
  const coloured = formatPretty({ level: 'warn', time: '2024-01-01T10:00:00.000Z', event: 'x' }, true);
  assert.match(coloured, /\x1b\[33mWARN/);
});

test('logger - CountingLogger counts warnings and errors by event and code, and passes everything on', () => {
  const out = capture();
  const logger = new CountingLogger(createLogger({ level: 'debug', out }));
  logger.info('a.info');
  logger.warn('transport.slow_consumer', { connection: 1 });
  logger.warn('transport.slow_consumer', { connection: 2 });
  logger.error('storage.failed', { error: new FerryError('DISK_FULL', 'full') });
  assert.equal(out.lines.length, 4);
  assert.deepEqual(
    [...logger.eventCounts()].map(({ level, event, code, count }) => [level, event, code, count]),
    [
      ['warn', 'transport.slow_consumer', '', 2],
      ['error', 'storage.failed', 'DISK_FULL', 1],
    ],
  );
});
