/**
 * Expected failures of the client commands are one clean line on stderr and the exit code the
 * usage text lists (1 failed, 2 usage), never a stack trace: every client command against an
 * unknown topic, a closed port, the HTTP port and bad flags; publish runs that fail on every
 * message say it once; a closed stdout (`ferry sub … | head`) ends the command quietly with 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { startAdmin } from '../admin/harness.js';
import { BIN, COMMAND_TIMEOUT_MS, ferry, ferryAll, type Run } from './run-ferry.js';

/** Lines a stack trace or an uncaught error leaves on stderr. */
const TRACE_LINE = /^\s+at |node:internal|^Node\.js v\d|^\S*Error: |Unhandled|^\s*\^$/m;

/** Every client command, each naming the topic `nosuch` where it takes one. */
const CLIENT_COMMANDS: string[][] = [
  ['pub', 'nosuch', 'x'],
  ['pub', 'nosuch', '--count', '2'],
  ['pub', 'nosuch', '--count', '10000', '--size', '1024'],
  ['sub', 'nosuch'],
  ['sub', 'nosuch', '--group', 'g'],
  ['topics', 'list'],
  ['topics', 'describe', 'nosuch'],
  ['topics', 'delete', 'nosuch'],
  ['groups', 'list', 'nosuch'],
  ['groups', 'describe', 'nosuch', 'g'],
  ['groups', 'reset', 'nosuch', 'g', '--to', 'earliest'],
  ['dlq', 'redrive', 'nosuch'],
  ['cluster', 'status'],
];

function assertClean(run: Run, what: string, exitCode: number): void {
  assert.doesNotMatch(run.stderr, TRACE_LINE, `${what}: no stack trace\n${run.stderr}`);
  assert.equal(run.code, exitCode, `${what}: exit code\n${run.stderr}`);
  const lines = run.stderr.split('\n').filter((line) => line.trim() !== '');
  assert.equal(lines.length, 1, `${what}: the error said once\n${run.stderr}`);
  assert.match(lines[0]!, /^ferry \w+: /, what);
}

/** A port nothing listens on (one that was free a moment ago). */
async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

test('cli errors - every client command fails cleanly on an unknown topic, a closed port and the HTTP port', async () => {
  const fixture = await startAdmin({ tcp: true });
  try {
    const closed = await closedPort();
    const cases: Array<{ args: string[]; what: string }> = [];
    for (const command of CLIENT_COMMANDS) {
      const what = command.join(' ');
      const takesTopic = !(command[0] === 'topics' && command[1] === 'list') && command[0] !== 'cluster';
      if (takesTopic) cases.push({ args: [...command, '--port', String(fixture.tcpPort)], what: `${what} (unknown topic)` });
      cases.push({ args: [...command, '--port', String(closed)], what: `${what} (closed port)` });
      cases.push({ args: [...command, '--port', String(fixture.admin.port)], what: `${what} (HTTP port)` });
    }
    const runs = await ferryAll(cases.map((c) => c.args));
    cases.forEach(({ what }, i) => {
      assertClean(runs[i]!, what, 1);
      if (what.endsWith('(HTTP port)')) assert.match(runs[i]!.stderr, /answers HTTP: it is an HTTP port .* the Ferry protocol listens on port 7700 by default/, what);
    });
  } finally {
    await fixture.close();
  }
});

test('cli errors - stdin lines to an unknown topic fail once, cleanly', async () => {
  const fixture = await startAdmin({ tcp: true });
  try {
    const run = await ferry(['pub', 'nosuch', '--port', String(fixture.tcpPort)], { input: 'a\nb\nc\n' });
    assertClean(run, 'pub from stdin', 1);
    assert.match(run.stderr, /UNKNOWN_TOPIC/);
  } finally {
    await fixture.close();
  }
});

test('cli errors - bad flags are usage errors with exit code 2', async () => {
  const commands = [...CLIENT_COMMANDS, ['serve'], ['users', 'list', '--file', 'users.json']];
  const runs = await ferryAll(commands.map((command) => [...command, '--no-such-flag']));
  commands.forEach((command, i) => assertClean(runs[i]!, `${command.join(' ')} --no-such-flag`, 2));
});

/** Runs `ferry args`, closes its stdout after the first bytes arrive (as `| head -c 50` does), and waits for it to end. */
async function readThenClose(args: string[]): Promise<Run> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), COMMAND_TIMEOUT_MS);
  try {
    await once(child.stdout, 'data');
    child.stdout.destroy();
    const [code] = (await once(child, 'close')) as [number | null];
    return { code, stdout: '', stderr };
  } finally {
    clearTimeout(timer);
  }
}

test('cli errors - a closed stdout ends sub quietly with 0, and a group does not ack what nobody read', async () => {
  const fixture = await startAdmin({ tcp: true });
  try {
    const port = String(fixture.tcpPort);
    await fixture.broker.createTopic('bulk');
    const value = Buffer.alloc(1000, 'a');
    for (let i = 0; i < 20; i++) await fixture.broker.publish('bulk', Array.from({ length: 500 }, () => ({ value })));
    for (const extra of [[], ['--json'], ['--group', 'g']]) {
      const run = await readThenClose(['sub', 'bulk', '--from', 'earliest', ...extra, '--port', port]);
      assert.doesNotMatch(run.stderr, TRACE_LINE, run.stderr);
      assert.equal(run.stderr, '', `sub ${extra.join(' ')}: nothing on stderr`);
      assert.equal(run.code, 0, `sub ${extra.join(' ')}: exit code`);
    }
    const group = fixture.broker.describeGroup('bulk', 'g');
    assert.ok(group.pending > 9_000, `what nobody read stays pending (${group.pending} of 10000)`);
    const listed = await readThenClose(['topics', 'list', '--port', port]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(listed.stderr, '');
  } finally {
    await fixture.close();
  }
});
