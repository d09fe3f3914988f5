/** The CLI progress bar (src/cli/progress.ts): drawn on a terminal with rate and time left, silent when piped. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createProgress, formatProgress } from '../../src/cli/progress.js';

test('progress - a bar with percentage, counts, rate and time left', () => {
  assert.equal(formatProgress('publishing', 450, 1000, 150, 'messages'), 'publishing [#############---------------] 45% 450/1,000 messages 150/s 4s left');
  assert.equal(formatProgress('publishing', 1000, 1000, 2000, ''), 'publishing [############################] 100% 1,000/1,000 2,000/s done');
  assert.equal(formatProgress('redriving', 12, undefined, 6, 'messages'), 'redriving 12 messages 6/s');
  assert.doesNotMatch(formatProgress('x', 5, 10, 1, '', 30), /\[/, 'a narrow terminal gets no bar');
});

test('progress - draws at most every 100 ms on a terminal and ends the line; silent when not a terminal', () => {
  let nowMs = 0;
  const written: string[] = [];
  const tty = { isTTY: true, write: (text: string) => void written.push(text) };
  const progress = createProgress('publishing', 10, { stream: tty, nowMs: () => nowMs, unit: 'messages' });
  assert.equal(progress.enabled, true);
  progress.tick();
  progress.tick();
  nowMs = 50;
  progress.tick();
  nowMs = 150;
  progress.tick(6);
  assert.equal(written.length, 2, 'the first tick and the one after 100 ms');
  assert.match(written[1]!, /^\r.*90% 9\/10 messages 60\/s/);
  progress.done();
  assert.equal(written.at(-1), '\n');
  progress.tick();
  assert.equal(written.at(-1), '\n', 'nothing after done');

  const piped: string[] = [];
  const quiet = createProgress('publishing', 10, { stream: { isTTY: false, write: (text: string) => void piped.push(text) } });
  quiet.tick(10);
  quiet.done();
  assert.equal(quiet.enabled, false);
  assert.deepEqual(piped, []);
});
