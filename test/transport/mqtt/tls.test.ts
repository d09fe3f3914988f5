/**
 * TLS on the MQTT port: told apart from plaintext by the first byte, so mqtts:// and mqtt:// share
 * one port; a verified client certificate logs its CN's user in without a password.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir, type TempDir } from '../../helpers.js';
import { makeCertificates, type TestCertificates } from '../../security/certs.js';
import { usersFile } from '../../security/harness.js';
import { client, startMqtt } from './harness.js';

const TEST_TIMEOUT_MS = 30_000;
let dir: TempDir;
let certs: TestCertificates;

before(async () => {
  dir = await tempDir('ferry-mqtt-certs-');
  certs = makeCertificates(dir.path);
});

after(async () => {
  await dir.remove();
});

test('mqtt tls - mqtts and plaintext share the port; a client certificate names its user', { timeout: TEST_TIMEOUT_MS }, async () => {
  const users = await usersFile({ alice: { password: 'alice-pw', allow: ['publish:t', 'consume:t'] } });
  const harness = await startMqtt({ topics: ['t'], users, tls: { cert: certs.server.cert, key: certs.server.key, ca: certs.ca } });
  const port = new URL(harness.url).port;
  try {
    const secure = await client(`mqtts://127.0.0.1:${port}`, { ca: certs.ca, username: 'alice', password: 'alice-pw' });
    await secure.publishAsync('t/secure', '1', { qos: 1 });
    await secure.endAsync();
    const plain = await client(`mqtt://127.0.0.1:${port}`, { username: 'alice', password: 'alice-pw', protocolVersion: 4 });
    await plain.publishAsync('t/plain', '2', { qos: 1 });
    await plain.endAsync();
    const alice = certs.client('alice');
    const certified = await client(`mqtts://127.0.0.1:${port}`, { ca: certs.ca, cert: alice.cert, key: alice.key });
    await certified.publishAsync('t/cert', '3', { qos: 1 });
    await certified.endAsync();
    const rogue = certs.rogueClient('alice');
    await assert.rejects(client(`mqtts://127.0.0.1:${port}`, { ca: certs.ca, cert: rogue.cert, key: rogue.key }), (error: { code?: number }) => error.code === 0x86);
    assert.equal(harness.broker.describeTopic('t').partitions[0]!.nextOffset, 3);
  } finally {
    await harness.close();
  }
});
