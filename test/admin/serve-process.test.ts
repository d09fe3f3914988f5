/**
 * `ferry serve` as a process (bin/ferry.js over dist/, built by `npm test`): config from a file,
 * the admin port ready after recovery, JSON log lines with the greppable lifecycle events, and a
 * graceful SIGTERM.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '../../src/client/index.js';
import { eventually, tempDir } from '../helpers.js';

const BIN = fileURLToPath(new URL('../../bin/ferry.js', import.meta.url));
/** Start, one publish, scrape and shutdown: a few seconds even on a loaded machine. */
const TEST_TIMEOUT_MS = 30_000;

test('serve process - config file, declared topics, readiness, metrics, JSON logs and graceful shutdown', { timeout: TEST_TIMEOUT_MS }, async () => {
  await using dir = await tempDir();
  const config = join(dir.path, 'ferry.yaml');
  writeFileSync(config, `dir: ${JSON.stringify(join(dir.path, 'data'))}\nserver:\n  port: 0\nhttp:\n  port: 0\ntopics:\n  orders:\n    partitions: 2\n`);
  const child = spawn(process.execPath, [BIN, 'serve', '--config', config, '--log-format', 'json'], { env: { ...process.env, FERRY_URL: '' } });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const events = (): Array<Record<string, any>> => stderr.split('\n').filter(Boolean).map((line) => JSON.parse(line));
  try {
    const listening = await eventually(() => events().find((line) => line['event'] === 'broker.listening') ?? false, { timeoutMs: 15_000 });
    const base = String(listening['http']).replace(/\/$/, '');
    assert.deepEqual(await (await fetch(`${base}/readyz`)).json(), { status: 'ready' });
    const info = await (await fetch(`${base}/api/info`)).json();
    assert.equal(info.tcp.port, listening['port']);
    const topics = await (await fetch(`${base}/api/topics`)).json();
    assert.deepEqual(topics.map((topic: any) => [topic.name, topic.partitions]), [['orders', 2]]);

    const client = await connect({ host: '127.0.0.1', port: listening['port'], reconnect: false });
    await client.publish('orders', Buffer.from('hello'), { key: 'k' });
    await client.close();
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /^ferry_topic_messages_in_total\{topic="orders"\} 1$/m);
    assert.match(metrics, /^ferry_connections_opened_total 1$/m);

    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    assert.equal(code, 0, stderr);
    const names = events().map((line) => line['event']);
    for (const event of ['broker.starting', 'admin.listening', 'broker.recovered', 'config.topics.created', 'broker.listening', 'broker.shutdown.started', 'broker.shutdown.finished']) {
      assert.ok(names.includes(event), `${event} logged; got ${names.join(', ')}`);
    }
    assert.ok(events().every((line) => typeof line['time'] === 'string' && typeof line['level'] === 'string'));
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
