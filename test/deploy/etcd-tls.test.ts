/**
 * The chart's own etcd over TLS (deploy/helm/ferry, etcd.tls with etcd.enabled), run for real: the
 * environment the chart gives its etcd members, with the Secret's files and the pod's DNS names
 * replaced by test certificates and loopback ports, starts Debian's etcd, which then serves clients
 * only over TLS with a certificate signed by the CA, and /health on the plain port the probes read.
 * (The rendering itself is checked in kubernetes.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:https';
import { join } from 'node:path';
import { helmBinary } from '../../deploy/helm/helm-binary.mjs';
import { CHART_DIR, renderChart } from '../../deploy/kubernetes/render.mjs';
import { freePort } from '../chaos/processes.js';
import { eventually, tempDir } from '../helpers.js';
import { makeCertificates, type KeyPair } from '../security/certs.js';
import { parseManifests } from './k8s-schema.js';

/** Rendering the chart (Helm fetched once) and etcd's start on a loaded 2-core machine. */
const TEST_TIMEOUT_MS = 120_000;
const LOOPBACK = '127.0.0.1';

/** The etcd container's environment as the chart renders it with its own etcd over TLS. */
function renderedEtcdEnv(): { env: Map<string, string>; mountPath: string } {
  const text = renderChart(helmBinary(), ['-f', join(CHART_DIR, 'ci/own-etcd-tls-values.yaml')]);
  const members = parseManifests(text, 'own-etcd-tls').find((manifest) => manifest.kind === 'StatefulSet' && manifest.metadata.name === 'ferry-etcd') as any;
  const [container] = members.spec.template.spec.containers;
  const env = new Map<string, string>(container.env.filter((entry: any) => entry.value !== undefined).map((entry: any) => [entry.name, String(entry.value)]));
  return { env, mountPath: container.volumeMounts.find((mount: any) => mount.name === 'tls').mountPath };
}

/** GET /health over TLS; rejects when the handshake or the request fails. */
function httpsHealth(port: number, ca: Buffer, client: KeyPair | null): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: LOOPBACK, port, path: '/health', ca, ...(client === null ? {} : { cert: client.cert, key: client.key }), timeout: 5_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.end();
  });
}

test('etcd tls - the environment the chart gives its own etcd over TLS starts etcd serving clients only over TLS, with /health on the probes\' plain port', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { env: rendered, mountPath } = renderedEtcdEnv();
  await using dir = await tempDir('ferry-etcd-tls-');
  const certs = makeCertificates(dir.path);
  const files: Record<string, string> = { 'tls.crt': certs.server.certPath, 'tls.key': certs.server.keyPath, 'ca.crt': certs.caPath };
  const [client, peer, health] = [await freePort(), await freePort(), await freePort()];
  const env: Record<string, string> = { PATH: process.env.PATH ?? '' };
  for (const [name, value] of rendered) {
    // The Secret's files become the test certificates; everything else is taken as rendered.
    env[name] = value.startsWith(`${mountPath}/`) ? files[value.slice(mountPath.length + 1)]! : value;
  }
  // The pod's names and ports become loopback ones; the schemes stay as rendered.
  const scheme = (name: string): string => new URL(rendered.get(name)!).protocol;
  Object.assign(env, {
    ETCD_NAME: 'm0',
    ETCD_DATA_DIR: join(dir.path, 'data'),
    ETCD_LISTEN_CLIENT_URLS: `${scheme('ETCD_LISTEN_CLIENT_URLS')}//${LOOPBACK}:${client}`,
    ETCD_ADVERTISE_CLIENT_URLS: `${scheme('ETCD_ADVERTISE_CLIENT_URLS')}//${LOOPBACK}:${client}`,
    ETCD_LISTEN_PEER_URLS: `${scheme('ETCD_LISTEN_PEER_URLS')}//${LOOPBACK}:${peer}`,
    ETCD_INITIAL_ADVERTISE_PEER_URLS: `${scheme('ETCD_INITIAL_ADVERTISE_PEER_URLS')}//${LOOPBACK}:${peer}`,
    ETCD_INITIAL_CLUSTER: `m0=${scheme('ETCD_INITIAL_ADVERTISE_PEER_URLS')}//${LOOPBACK}:${peer}`,
    ETCD_LISTEN_METRICS_URLS: rendered.get('ETCD_LISTEN_METRICS_URLS')!.replace(/0\.0\.0\.0:\d+$/, `${LOOPBACK}:${health}`),
  });
  assert.equal(env.ETCD_CLIENT_CERT_AUTH, 'true');
  const etcd = spawn('etcd', [], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  etcd.stderr.setEncoding('utf8').on('data', (chunk: string) => void (output += chunk));
  try {
    // The probes' port: plain http, no certificate.
    await eventually(async () => {
      const res = await fetch(`http://${LOOPBACK}:${health}/health`);
      assert.equal(res.status, 200, output.slice(-2_000));
      assert.deepEqual(await res.json(), { health: 'true' });
    }, { timeoutMs: 30_000 });
    // The client port: TLS with a certificate signed by the CA; none, or plain http, is refused.
    assert.equal(await httpsHealth(client, certs.ca, certs.client('ferry-broker')), 200);
    await assert.rejects(httpsHealth(client, certs.ca, null));
    await assert.rejects(fetch(`http://${LOOPBACK}:${client}/health`));
    assert.doesNotMatch(output, /unrecognized environment variable/i, 'etcd knows every variable the chart sets');
  } finally {
    etcd.kill('SIGTERM');
    if (etcd.exitCode === null && etcd.signalCode === null) await once(etcd, 'exit');
  }
});
