/**
 * The real image, built and run with podman: it starts, answers its health check and /readyz,
 * takes a publish from the CLI on this machine, and stops with exit 0 on SIGTERM within the
 * grace period. Opt-in (FERRY_TEST_CONTAINER=1): building takes minutes (a base image from
 * Debian's packages when no registry is reachable, then npm ci twice). Skipped, with the reason,
 * where podman is missing or cannot run a container.
 *
 * On a machine without a registry the base is the stand-in deploy/container/build-local-base.sh
 * makes (built once, reused). The build gets this machine's npm settings and CA bundle mounted
 * into its RUN steps (a TLS-inspecting proxy that npm here trusts is trusted there), which no
 * layer keeps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, tempDir } from '../helpers.js';
import { REPO } from './dockerfile.js';

const BIN = join(REPO, 'bin/ferry.js');
const BASE_IMAGE = process.env['FERRY_TEST_BASE_IMAGE'] ?? 'localhost/ferry-node-base:20-bookworm-slim';
const IMAGE = 'localhost/ferry:test';
/** Base (mmdebstrap) and image (two npm ci) on a 2-core machine: several minutes each. */
const TEST_TIMEOUT_MS = 30 * 60_000;
const BUILD_TIMEOUT_MS = 15 * 60_000;
/** Kubernetes' default terminationGracePeriodSeconds. */
const GRACE_PERIOD_S = 30;
/** Processes for the container's user: the broker has about a dozen threads. */
const CONTAINER_NPROC = 4096;
const PASSWORD = 'container-image-password';

function run(command: string, args: string[], timeoutMs = 120_000): SpawnSyncReturns<string> {
  return spawnSync(command, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
}

/** This process's open-files limit: a container may not be given more than its starter has. */
function openFilesLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((entry) => entry.startsWith('Max open files'));
  return Number(line?.split(/\s+/)[4] ?? 1024);
}

/**
 * podman's global and per-container flags that work here, or why none do. crun refuses cgroup v1
 * hybrid hierarchies, so runc is tried too; limits above this process's own are refused without
 * CAP_SYS_RESOURCE, so the container gets this process's.
 */
function podmanSetup(): { global: string[]; limits: string[] } | string {
  if (process.env['FERRY_TEST_CONTAINER'] !== '1') return 'opt-in: set FERRY_TEST_CONTAINER=1 (builds an image, takes minutes)';
  if (run('podman', ['--version']).status !== 0) return 'podman is not installed (apt-get install podman)';
  const limits = ['--ulimit', `nofile=${openFilesLimit()}:${openFilesLimit()}`, '--ulimit', `nproc=${CONTAINER_NPROC}:${CONTAINER_NPROC}`];
  if (run('podman', ['image', 'exists', BASE_IMAGE]).status !== 0) {
    const built = run(join(REPO, 'deploy/container/build-local-base.sh'), [BASE_IMAGE], BUILD_TIMEOUT_MS);
    if (built.status !== 0) return `no base image ${BASE_IMAGE} and build-local-base.sh failed: ${built.stderr.slice(-500)}`;
  }
  const errors: string[] = [];
  for (const global of [[], ['--runtime', 'runc']]) {
    const probe = run('podman', [...global, 'run', '--rm', ...limits, BASE_IMAGE, 'node', '-e', '0']);
    if (probe.status === 0) return { global, limits };
    errors.push(`${global.join(' ') || 'default runtime'}: ${probe.stderr.trim().split('\n').pop()}`);
  }
  return `podman cannot run a container here: ${errors.join('; ')}`;
}

const setup = podmanSetup();

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** This machine's npm settings and CA bundle, mounted into the build's RUN steps when present. */
function buildMounts(): string[] {
  const mounts: string[] = [];
  const cafile = run('npm', ['config', 'get', 'cafile']).stdout.trim();
  if (cafile !== '' && cafile !== 'null' && existsSync(cafile)) mounts.push('--volume', `${cafile}:${cafile}:ro`);
  const globalConfig = run('npm', ['config', 'get', 'globalconfig']).stdout.trim();
  if (globalConfig !== '' && existsSync(globalConfig)) mounts.push('--volume', `${globalConfig}:/usr/local/etc/npmrc:ro`);
  return mounts;
}

test('container image - builds, serves, takes a publish and stops with exit 0 on SIGTERM', { skip: typeof setup === 'string' ? setup : false, timeout: TEST_TIMEOUT_MS }, async () => {
  assert.ok(typeof setup !== 'string');
  const podman = (args: string[], timeoutMs?: number): SpawnSyncReturns<string> => run('podman', [...setup.global, ...args], timeoutMs);
  // docker format: the OCI image format has no HEALTHCHECK.
  const build = podman(['build', '--format', 'docker', ...setup.limits, ...buildMounts(), '--build-arg', `NODE_IMAGE=${BASE_IMAGE}`, '-f', join(REPO, 'deploy/Dockerfile'), '-t', IMAGE, REPO], BUILD_TIMEOUT_MS);
  assert.equal(build.status, 0, build.stderr.slice(-3000));
  const size = podman(['image', 'inspect', IMAGE, '--format', '{{.Size}}']).stdout.trim();
  const baseSize = podman(['image', 'inspect', BASE_IMAGE, '--format', '{{.Size}}']).stdout.trim();
  console.log(`image ${IMAGE}: ${(Number(size) / 1e6).toFixed(1)} MB, of which the base ${(Number(baseSize) / 1e6).toFixed(1)} MB`);
  assert.equal(podman(['image', 'inspect', IMAGE, '--format', '{{.Config.User}}']).stdout.trim(), '10001:10001');

  await using dir = await tempDir();
  const users = join(dir.path, 'users.json');
  const added = spawnSync(process.execPath, [BIN, 'users', 'add', 'tester', '--file', users, '--publish', '*', '--consume', '*', '--admin'], { input: `${PASSWORD}\n`, encoding: 'utf8' });
  assert.equal(added.status, 0, added.stderr);
  chmodSync(users, 0o644); // read by the container's user
  const passwordFile = join(dir.path, 'password');
  writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });

  const [port, httpPort] = [await freePort(), await freePort()];
  const name = `ferry-test-${process.pid}`;
  const started = podman(['run', '-d', '--name', name, ...setup.limits, '-p', `127.0.0.1:${port}:7700`, '-p', `127.0.0.1:${httpPort}:7780`, '-v', `${users}:/etc/ferry/users.json:ro`, IMAGE]);
  assert.equal(started.status, 0, started.stderr);
  try {
    await eventually(async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status === 200, { timeoutMs: 60_000, intervalMs: 250 });
    assert.equal((await fetch(`http://127.0.0.1:${httpPort}/healthz`)).status, 200);
    const health = podman(['healthcheck', 'run', name]);
    assert.equal(health.status, 0, `the image's HEALTHCHECK: ${health.stdout}${health.stderr}`);

    const login = ['--port', String(port), '--user', 'tester', '--password-file', passwordFile];
    for (const args of [['topics', 'create', 'orders', ...login], ['pub', 'orders', 'hello from the host', ...login]]) {
      const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, FERRY_URL: '' } });
      assert.equal(result.status, 0, `ferry ${args.join(' ')}: ${result.stderr}`);
    }

    // podman stop sends the image's stop signal (SIGTERM) and SIGKILLs after the timeout.
    const stoppedMs = performance.now();
    const stop = podman(['stop', '--time', String(GRACE_PERIOD_S), name], (GRACE_PERIOD_S + 30) * 1000);
    assert.equal(stop.status, 0, stop.stderr);
    assert.ok(performance.now() - stoppedMs < GRACE_PERIOD_S * 1000, 'stopped before the grace period ran out');
    assert.equal(podman(['inspect', name, '--format', '{{.State.ExitCode}}']).stdout.trim(), '0');
    const logs = podman(['logs', name]);
    assert.match(logs.stdout + logs.stderr, /"event":"broker\.shutdown\.finished"/);
  } finally {
    podman(['rm', '--force', name]);
  }
});
