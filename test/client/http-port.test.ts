/**
 * A client pointed at a broker's HTTP port (admin API, /metrics, gRPC) is told so, with the Ferry
 * protocol's default port, instead of "bad frame magic 0x4854".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../../src/client/index.js';
import { FerryError } from '../../src/errors.js';
import { DEFAULT_PORT } from '../../src/protocol/limits.js';
import { startAdmin } from '../admin/harness.js';

test('client - connecting to an HTTP port says it is one and names the Ferry protocol\'s default port', async () => {
  const fixture = await startAdmin();
  try {
    await assert.rejects(connect({ host: '127.0.0.1', port: fixture.admin.port, reconnect: false }), (error: unknown) => {
      assert.ok(error instanceof FerryError);
      assert.equal(
        error.message,
        `127.0.0.1:${fixture.admin.port} answers HTTP: it is an HTTP port (such as a broker's admin port), not the Ferry protocol's; ` +
          `the Ferry protocol listens on port ${DEFAULT_PORT} by default`,
      );
      return true;
    });
  } finally {
    await fixture.close();
  }
});
