/**
 * The `ferry` command, run as a child process (bin/ferry.js over the compiled dist/, which
 * `npm test` builds first) against a broker in this process or one it starts itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Broker } from '../../src/broker/broker.js';
import { tempDir } from '../helpers.js';
import { BIN, COMMAND_TIMEOUT_MS, ferry, withBroker } from './run-ferry.js';

/** The JSON log lines among a process's stderr. */
function logEvents(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

test('cli - topics create, list, describe and delete', async () => {
  await withBroker(async (port) => {
    const created = await ferry(['topics', 'create', 'orders', '--partitions', '2', '--durability', 'interval', '--port', port]);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /created orders +partitions=2 durability=interval/);
    const listed = await ferry(['topics', 'list', '--port', port]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^orders /m);
    const described = await ferry(['topics', 'describe', 'orders', '--json', '--port', port]);
    assert.equal(described.code, 0, described.stderr);
    assert.equal(JSON.parse(described.stdout).config.partitions, 2);
    const deleted = await ferry(['topics', 'delete', 'orders', '--port', port]);
    assert.equal(deleted.code, 0, deleted.stderr);
    const missing = await ferry(['topics', 'describe', 'orders', '--port', port]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /UNKNOWN_TOPIC/);
    assert.doesNotMatch(missing.stderr, /\n\s+at /, 'no stack trace for an expected error');
  });
});

test('cli - pub a value, a generated run and stdin lines; sub prints them, --json too', async () => {
  await withBroker(async (port) => {
    assert.equal((await ferry(['topics', 'create', 'orders', '--port', port])).code, 0);
    const one = await ferry(['pub', 'orders', 'hello', '--key', 'k1', '--header', 'source=web', '--port', port]);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /offset 0/);
    const lines = await ferry(['pub', 'orders', '--port', port], { input: 'a\nb\nc\n' });
    assert.equal(lines.code, 0, lines.stderr);
    const generated = await ferry(['pub', 'orders', '--count', '5', '--size', '8', '--port', port]);
    assert.equal(generated.code, 0, generated.stderr);

    const read = await ferry(['sub', 'orders', '--from', 'earliest', '--count', '4', '--port', port]);
    assert.equal(read.code, 0, read.stderr);
    assert.deepEqual(read.stdout.trim().split('\n'), ['hello', 'a', 'b', 'c']);

    const json = await ferry(['sub', 'orders', '--from', '0', '--count', '1', '--json', '--port', port]);
    assert.equal(json.code, 0, json.stderr);
    const message = JSON.parse(json.stdout);
    assert.equal(message.value, 'hello');
    assert.equal(message.key, 'k1');
    assert.deepEqual(message.headers, { source: 'web' });
    assert.equal(message.offset, 0);

    const grouped = await ferry(['sub', 'orders', '--group', 'g', '--from', 'earliest', '--count', '9', '--port', port]);
    assert.equal(grouped.code, 0, grouped.stderr);
    assert.equal(grouped.stdout.trim().split('\n').length, 9);
    const after = await ferry(['sub', 'orders', '--group', 'g', '--count', '0', '--port', port]);
    assert.equal(after.code, 0, after.stderr);
  });
});

test('cli - FERRY_URL names the broker; errors are clear with non-zero exit codes', async () => {
  await withBroker(async (port) => {
    const viaUrl = await ferry(['topics', 'list'], { env: { FERRY_URL: `ferry://127.0.0.1:${port}` } });
    assert.equal(viaUrl.code, 0, viaUrl.stderr);
    const unknown = await ferry(['pub', 'missing', 'x', '--port', port]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /UNKNOWN_TOPIC/);
    // It used to hang with its connection open until the harness killed it (no exit code 1).
    const unknownSub = await ferry(['sub', 'missing', '--port', port]);
    assert.equal(unknownSub.code, 1, 'sub of an unknown topic exits');
    assert.match(unknownSub.stderr, /UNKNOWN_TOPIC/);
  });
  const refused = await ferry(['topics', 'list', '--port', '1']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /refused/i);
  assert.doesNotMatch(refused.stderr, /\n\s+at /);
  const usage = await ferry(['pub']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /usage/);
  const badCommand = await ferry(['frobnicate']);
  assert.equal(badCommand.code, 2);
});

test('cli - serve recovers its directory, serves clients, and exits 0 on SIGTERM', async () => {
  await using dir = await tempDir();
  const child = spawn(process.execPath, [BIN, 'serve', '--dir', dir.path, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  try {
    const port = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), COMMAND_TIMEOUT_MS);
      child.stderr.on('data', () => {
        const listening = logEvents(stderr).find((line) => line['event'] === 'broker.listening');
        if (listening !== undefined) {
          clearTimeout(timer);
          resolve(String(listening['port']));
        }
      });
    });
    assert.ok(logEvents(stderr).some((line) => line['event'] === 'broker.recovered'), stderr);
    assert.equal((await ferry(['topics', 'create', 't', '--port', port])).code, 0);
    assert.equal((await ferry(['pub', 't', 'kept', '--port', port])).code, 0);
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    assert.equal(code, 0, stderr);
    assert.ok(logEvents(stderr).some((line) => line['event'] === 'broker.shutdown.finished'), stderr);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  const broker = await Broker.open({ dir: dir.path });
  try {
    assert.equal(broker.describeTopic('t').partitions[0]!.nextOffset, 1);
  } finally {
    await broker.close();
  }
});
