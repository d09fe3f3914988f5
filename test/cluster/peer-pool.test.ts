/**
 * The pool of connections to the other brokers takes renewed TLS options: after a broker's
 * certificate is renewed under a new CA, a connection opened with the old CA is refused, and once
 * the pool is given the new CA (as `ferry serve` does when it re-reads its certificates) the next
 * connection succeeds, while the one already open goes on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PeerPool } from '../../src/cluster/peer-pool.js';
import { isFerryError } from '../../src/errors.js';
import { silentLogger } from '../../src/platform/logger.js';
import { tempDir } from '../helpers.js';
import { makeCertificates } from '../security/certs.js';
import { startSecure, usersFile } from '../security/harness.js';

const PASSWORD = 'replicator-password';

test('peer pool - renewed TLS options reach the next connection; the open one goes on', async () => {
  await using dir = await tempDir('ferry-peer-pool-');
  for (const sub of ['first', 'second']) mkdirSync(join(dir.path, sub));
  const first = makeCertificates(join(dir.path, 'first'));
  const second = makeCertificates(join(dir.path, 'second'));
  const running = await startSecure({
    users: await usersFile({ replicator: { password: PASSWORD, allow: ['replicate:*', 'admin:*'] } }),
    tls: { material: { cert: first.server.cert, key: first.server.key } },
  });
  const pool = new PeerPool({ nodeId: 'n1', connect: { user: 'replicator', password: PASSWORD, tls: { ca: first.ca } }, logger: silentLogger });
  try {
    await running.broker.createTopic('orders');
    const address = `127.0.0.1:${running.port}`;
    const open = await pool.connection('n2', address);

    // The peer's certificate is renewed under another CA: a new connection with the old CA is refused.
    running.server.setTlsMaterial({ cert: second.server.cert, key: second.server.key });
    await assert.rejects(pool.connection('n3', address), (error: unknown) => isFerryError(error, 'CONNECTION_REFUSED') && /certificate/i.test(error.message));

    pool.setTls({ ca: second.ca });
    const renewed = await pool.connection('n4', address);
    assert.notEqual(renewed, open);
    assert.equal(await pool.connection('n2', address), open, 'the connection opened before the renewal is kept');
  } finally {
    pool.close();
    await running.close();
  }
});
