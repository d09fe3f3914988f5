/**
 * Two brokers on one host: the second, started with the first's HTTP port, exits saying which flag
 * gives it its own; with `--http-port 0` it takes any free port and logs it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { tempDir } from '../helpers.js';
import { serve } from './run-ferry.js';

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

test('serve ports - a second broker on a taken HTTP port names --http-port; --http-port 0 picks a free one and logs it', async () => {
  await using first = await tempDir();
  await using second = await tempDir();
  const httpPort = await freePort();
  const a = serve(['--dir', first.path, '--port', '0', '--http-port', String(httpPort)]);
  const brokers: ChildProcess[] = [a.child];
  try {
    assert.ok(await a.waitFor('broker.listening'), JSON.stringify(a.events));

    const b = serve(['--dir', second.path, '--port', '0', '--http-port', String(httpPort)]);
    brokers.push(b.child);
    const [code] = (await once(b.child, 'exit')) as [number | null];
    assert.equal(code, 1);
    const failed = b.events.find((line) => line['event'] === 'broker.start_failed');
    assert.ok(failed !== undefined, JSON.stringify(b.events));
    assert.equal(failed['code'], 'EADDRINUSE');
    assert.match(String(failed['hint']), /HTTP port is in use .*--http-port PORT, or --http-port 0 for any free port/);

    const c = serve(['--dir', second.path, '--port', '0', '--http-port', '0']);
    brokers.push(c.child);
    const admin = await c.waitFor('admin.listening');
    assert.ok(admin !== null, JSON.stringify(c.events));
    const port = Number(admin['port']);
    assert.ok(port > 0 && port !== httpPort, `a free port: ${port}`);
    assert.ok(await c.waitFor('broker.listening'));
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
  } finally {
    for (const child of brokers) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  }
});
