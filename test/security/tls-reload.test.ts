/**
 * Certificates renewed without a restart (issue 22, item 13): while TLS clients publish, the
 * server's certificate files are replaced; new connections on both ports get the new certificate,
 * open ones keep theirs and go on, and not one request fails. A bad new certificate is refused
 * with a logged error and the previous one stays in use.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { connect, type FerryClient } from '../../src/client/index.js';
import { TlsReloader } from '../../src/security/tls-reload.js';
import { RecordingLogger } from '../storage/log-kit.js';
import { tempDir } from '../helpers.js';
import { makeCertificates } from './certs.js';
import { startSecure, usersFile } from './harness.js';

const PASSWORD = 'reload-password';
const USERS = { alice: { password: PASSWORD, allow: ['publish:orders.*', 'consume:orders.*'] } };

function replaceFile(path: string, content: Buffer | string): void {
  writeFileSync(`${path}.new`, content);
  renameSync(`${path}.new`, path);
}

/** The SHA-256 fingerprint of the certificate a new TLS connection to `port` is shown. */
function servedFingerprint(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ port, host: '127.0.0.1', ca, servername: 'localhost', ALPNProtocols: ['h2', 'http/1.1'] }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.destroy();
      resolve(fingerprint);
    });
    socket.on('error', reject);
  });
}

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.ok(condition(), 'in time');
}

test('tls reload - a renewed certificate reaches new connections on both ports under a running TLS load, with 0 failed requests; a bad one is refused', { timeout: 60_000 }, async () => {
  await using dir = await tempDir('ferry-tls-reload-');
  for (const sub of ['a', 'b']) mkdirSync(join(dir.path, sub));
  const first = makeCertificates(join(dir.path, 'a'));
  const second = makeCertificates(join(dir.path, 'b'));
  const ca = Buffer.concat([first.ca, Buffer.from('\n'), second.ca]);
  const certPath = join(dir.path, 'server.crt');
  const keyPath = join(dir.path, 'server.key');
  replaceFile(certPath, first.server.cert);
  replaceFile(keyPath, first.server.key);
  const logger = new RecordingLogger();
  const reloader = new TlsReloader({ cert: certPath, key: keyPath }, logger);
  const running = await startSecure({ users: await usersFile(USERS), http: true, tls: { material: reloader.current } });
  reloader.onChange((material) => {
    running.server.setTlsMaterial(material);
    running.admin!.setTlsMaterial(material);
  });
  reloader.watch();
  const fingerprintOf = (pem: Buffer) => new X509Certificate(pem).fingerprint256;
  let failed = 0;
  let published = 0;
  let reconnects = 0;
  let stop = false;
  const clients: FerryClient[] = [];
  try {
    await running.broker.createTopic('orders.eu');
    assert.equal(await servedFingerprint(running.port, ca), fingerprintOf(first.server.cert));
    // The load: two clients that stay connected, and one that connects anew for every publish.
    const steady = async (): Promise<void> => {
      const client = await connect({ port: running.port, user: 'alice', password: PASSWORD, tls: { ca }, reconnect: false });
      clients.push(client);
      while (!stop) await client.publish('orders.eu', 'steady').then(() => published++, () => failed++);
    };
    const churn = async (): Promise<void> => {
      while (!stop) {
        try {
          const client = await connect({ port: running.port, user: 'alice', password: PASSWORD, tls: { ca }, reconnect: false });
          await client.publish('orders.eu', 'churn');
          await client.close();
          published++;
          reconnects++;
        } catch {
          failed++;
        }
      }
    };
    const load = Promise.all([steady(), steady(), churn()]);
    await until(() => reconnects >= 3, 20_000);

    // Renewal, as a certificate tool does it: new files renamed into place; the watch picks them up.
    replaceFile(keyPath, second.server.key);
    replaceFile(certPath, second.server.cert);
    await until(() => reloader.current.cert.equals(second.server.cert), 10_000);
    const reconnectsAtReload = reconnects;
    await until(() => reconnects >= reconnectsAtReload + 3, 20_000);
    assert.equal(await servedFingerprint(running.port, ca), fingerprintOf(second.server.cert), 'TCP port: new connections get the new certificate');
    assert.equal(await servedFingerprint(running.httpPort, ca), fingerprintOf(second.server.cert), 'HTTPS port too');

    // A broken renewal: refused, logged, the good certificate stays.
    replaceFile(certPath, '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n');
    assert.equal(reloader.reload(), false);
    assert.ok(logger.events('security.tls.reload_failed').length >= 1);
    assert.equal(await servedFingerprint(running.port, ca), fingerprintOf(second.server.cert));
    const reconnectsAtBad = reconnects;
    await until(() => reconnects >= reconnectsAtBad + 3, 20_000);

    stop = true;
    await load;
    assert.equal(failed, 0, `${failed} failed requests of ${published + failed}`);
    assert.ok(published > 10, `${published} published`);
  } finally {
    stop = true;
    reloader.close();
    for (const client of clients) await client.close().catch(() => undefined);
    await running.close();
  }
});
