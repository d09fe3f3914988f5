/**
 * The container image without a container: deploy/Dockerfile's stages, user, volume, ports and
 * health check; its entry point against bin/ferry.js's V8 flags; the build context that
 * .dockerignore lets in; and the image's own command line run as a process here (the compiled
 * CLI that `npm test` builds), from start through a publish to SIGTERM and exit 0. Building and
 * running the real image is test/deploy/container-image.test.ts (opt-in: it takes minutes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { shebangNodeFlags } from '../../bench/checkout.js';
import { FIELDS } from '../../src/config/schema.js';
import { eventually, tempDir } from '../helpers.js';
import { contextIncludes, execForm, finalInstruction, readDockerfile, REPO } from './dockerfile.js';

const BIN = join(REPO, 'bin/ferry.js');
const HEALTHCHECK = join(REPO, 'deploy/container/healthcheck.mjs');
/** Where the image keeps the broker, its data and its users file. */
const IMAGE_APP_DIR = '/opt/ferry';
const IMAGE_DATA_DIR = '/var/lib/ferry';
const IMAGE_USERS_FILE = '/etc/ferry/users.json';
/** Start, a publish and a graceful stop take a few seconds even on a loaded 2-core machine. */
const PROCESS_TEST_TIMEOUT_MS = 60_000;
/** Kubernetes' default grace period: the image's broker must stop well within it. */
const GRACE_PERIOD_MS = 30_000;
const PASSWORD = 'container-test-password';

const dockerfile = readDockerfile();
const entrypoint = execForm(finalInstruction(dockerfile, 'ENTRYPOINT').args);
const cmd = execForm(finalInstruction(dockerfile, 'CMD').args);

test('container - the entry point is node with the V8 flags of bin/ferry.js and the image\'s launcher', () => {
  assert.equal(entrypoint[0], 'node');
  assert.deepEqual(entrypoint.slice(1, -1), shebangNodeFlags());
  assert.equal(entrypoint.at(-1), `${IMAGE_APP_DIR}/bin/ferry.js`);
  assert.deepEqual(cmd.slice(0, 1), ['serve']);
});

test('container - the default command serves the data volume on every interface with a users file', () => {
  const flag = (name: string): string | undefined => cmd[cmd.indexOf(name) + 1];
  assert.equal(flag('--dir'), IMAGE_DATA_DIR);
  assert.equal(flag('--host'), '0.0.0.0');
  assert.equal(flag('--http-host'), '0.0.0.0');
  assert.equal(flag('--users'), IMAGE_USERS_FILE, 'a broker without users refuses to listen beyond loopback');
});

test('container - builds in stages, ships production dependencies only, runs as a non-root user', () => {
  const stages = dockerfile.filter((instruction) => instruction.keyword === 'FROM');
  assert.ok(stages.length >= 2, 'multi-stage');
  const last = stages.length - 1;
  const runs = (stage: number): string[] => dockerfile.filter((i) => i.stage === stage && i.keyword === 'RUN').map((i) => i.args);
  assert.ok(runs(0).some((run) => /npm ci\b/.test(run) && !run.includes('--omit=dev')), 'the build stage installs dev dependencies');
  assert.ok(runs(0).some((run) => run.includes('npm run build')), 'the build stage compiles');
  const copies = dockerfile.filter((i) => i.stage === last && i.keyword === 'COPY').map((i) => i.args);
  const dependencyStage = /--from=(\w+) \S*node_modules/.exec(copies.join('\n'))?.[1];
  assert.ok(dependencyStage !== undefined, 'node_modules comes from a stage');
  const dependencyIndex = stages.findIndex((stage) => stage.args.endsWith(` AS ${dependencyStage}`));
  assert.ok(runs(dependencyIndex).some((run) => run.includes('npm ci --omit=dev')), 'that stage installs production dependencies only');
  assert.ok(runs(last).every((run) => !/\bnpm\b/.test(run)), 'the image itself runs no npm');
  assert.ok(copies.some((copy) => /--from=build \S*dist dist$/.test(copy)), 'dist/ from the build stage');

  const user = finalInstruction(dockerfile, 'USER').args;
  assert.match(user, /^[1-9]\d*:[1-9]\d*$/, 'a numeric non-root user, so Kubernetes can check runAsNonRoot');
  const [uid] = user.split(':');
  assert.ok(runs(last).some((run) => run.includes(`--uid ${uid}`) && run.includes(`chown ferry:ferry ${IMAGE_DATA_DIR}`)), 'the user owns the data directory');
  assert.match(finalInstruction(dockerfile, 'VOLUME').args, new RegExp(`"${IMAGE_DATA_DIR}"`));
  assert.deepEqual(finalInstruction(dockerfile, 'EXPOSE').args.split(/\s+/), ['7700', '7780']);
  const healthcheck = finalInstruction(dockerfile, 'HEALTHCHECK').args;
  const check = execForm(healthcheck.slice(healthcheck.indexOf('CMD ') + 4));
  assert.deepEqual(check, ['node', `${IMAGE_APP_DIR}/healthcheck.mjs`]);
  assert.ok(copies.some((copy) => copy === 'deploy/container/healthcheck.mjs healthcheck.mjs'));
});

test('container - .dockerignore lets in what the build copies and nothing else', () => {
  const fromContext = dockerfile
    .filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from'))
    .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
  for (const source of fromContext) {
    assert.ok(contextIncludes(source.replace(/\/$/, '')), `${source} is copied, so it must be in the context`);
    assert.ok(contextIncludes(`${source.replace(/\/$/, '')}/x.ts`) || !['src', 'bin'].includes(source), `${source}'s files are in the context`);
  }
  for (const path of ['src/cli/serve.ts', 'bin/ferry.js', 'package.json', 'package-lock.json', 'tsconfig.build.json', 'deploy/container/healthcheck.mjs']) {
    assert.ok(contextIncludes(path), `${path} in the context`);
  }
  for (const path of ['data/orders/0/00000000000000000000.log', 'node_modules/pino/index.js', 'test/helpers.ts', 'dist/src/index.js', '.git/HEAD', 'bench/run.ts', 'docs/OPERATIONS.md', 'chaos-results/x.jsonl', 'src/x/node_modules/y.js', 'deploy/kubernetes/etcd.yaml', 'users.json', '.env']) {
    assert.ok(!contextIncludes(path), `${path} kept out of the context`);
  }
  // The matcher itself: a rule that lets everything in must show up.
  assert.ok(contextIncludes('test/helpers.ts', '*\n!test/\n'));
});

test('container - the health check exits 1 when nothing answers', async () => {
  const result = spawnSync(process.execPath, [HEALTHCHECK], { env: { ...process.env, FERRY_HEALTHCHECK_URL: 'http://127.0.0.1:9/healthz' }, encoding: 'utf8', timeout: 10_000 });
  assert.equal(result.status, 1, result.stderr);
  assert.match(result.stderr, /127\.0\.0\.1:9/);
});

/**
 * The image's command line with the image's paths mapped into a temp dir. Tests listen on
 * loopback only, so the two hosts are replaced by 127.0.0.1 (and the ports by free ones): later
 * flags win, as they do when `podman run IMAGE serve … --host …` overrides the default.
 */
function imageCommandHere(dir: string): string[] {
  const mapped = [...entrypoint, ...cmd].map((arg) =>
    arg === `${IMAGE_APP_DIR}/bin/ferry.js` ? BIN : arg === IMAGE_DATA_DIR ? join(dir, 'data') : arg === IMAGE_USERS_FILE ? join(dir, 'users.json') : arg,
  );
  return [...mapped.slice(1), '--host', '127.0.0.1', '--http-host', '127.0.0.1', '--port', '0', '--http-port', '0'];
}

function runCli(args: string[], input = ''): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [BIN, ...args], { input, encoding: 'utf8', timeout: 20_000, env: { ...process.env, FERRY_URL: '', FERRY_USER: '', FERRY_PASSWORD: '' } });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('container - the image\'s command line serves, answers the health check, takes a publish and exits 0 on SIGTERM', { timeout: PROCESS_TEST_TIMEOUT_MS }, async () => {
  await using dir = await tempDir();
  const added = runCli(['users', 'add', 'tester', '--file', join(dir.path, 'users.json'), '--publish', '*', '--consume', '*', '--admin'], `${PASSWORD}\n`);
  assert.equal(added.status, 0, added.stderr);
  const passwordFile = join(dir.path, 'password');
  writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });

  const child = spawn(process.execPath, imageCommandHere(dir.path), { env: { ...process.env, FERRY_URL: '' } });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const events = (): Array<Record<string, unknown>> => stderr.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
  try {
    const listening = await eventually(() => events().find((line) => line['event'] === 'broker.listening') ?? false, { timeoutMs: 20_000 });
    const http = String(listening['http']).replace(/\/$/, '');
    const health = spawnSync(process.execPath, [HEALTHCHECK], { env: { ...process.env, FERRY_HEALTHCHECK_URL: `${http}/healthz` }, encoding: 'utf8', timeout: 10_000 });
    assert.equal(health.status, 0, health.stderr);
    assert.equal((await fetch(`${http}/readyz`)).status, 200);
    assert.ok(events().some((line) => line['event'] === 'security.auth.on'), 'logins are required');

    const anonymous = runCli(['pub', 'orders', 'refused', '--port', String(listening['port'])]);
    assert.notEqual(anonymous.status, 0, 'without a login nothing is published');
    const login = ['--port', String(listening['port']), '--user', 'tester', '--password-file', passwordFile];
    const created = runCli(['topics', 'create', 'orders', ...login]);
    assert.equal(created.status, 0, created.stderr);
    const published = runCli(['pub', 'orders', 'hello', ...login]);
    assert.equal(published.status, 0, published.stderr);

    const stoppedMs = performance.now();
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, stderr);
    assert.ok(performance.now() - stoppedMs < GRACE_PERIOD_MS, 'stopped within the grace period');
    assert.ok(events().some((line) => line['event'] === 'broker.shutdown.finished'));
    const after = spawnSync(process.execPath, [HEALTHCHECK], { env: { ...process.env, FERRY_HEALTHCHECK_URL: `${http}/healthz` }, encoding: 'utf8', timeout: 10_000 });
    assert.equal(after.status, 1, 'unhealthy once stopped');
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

test('container - without the users file the image\'s broker still starts and lets nobody in', { timeout: PROCESS_TEST_TIMEOUT_MS }, async () => {
  await using dir = await tempDir();
  const child = spawn(process.execPath, imageCommandHere(dir.path), { env: { ...process.env, FERRY_URL: '' } });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const events = (): Array<Record<string, unknown>> => stderr.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
  try {
    const listening = await eventually(() => events().find((line) => line['event'] === 'broker.listening') ?? false, { timeoutMs: 20_000 });
    assert.ok(events().some((line) => line['event'] === 'security.auth.no_users'), 'it says nobody can log in yet');
    assert.equal((await fetch(`${String(listening['http']).replace(/\/$/, '')}/healthz`)).status, 200, 'probes answer');
    const anonymous = runCli(['pub', 'orders', 'refused', '--port', String(listening['port'])]);
    assert.notEqual(anonymous.status, 0, stderr);
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, stderr);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

test('container - in-flight requests get less time than the grace period', () => {
  const closeTimeout = FIELDS.find((field) => field.path === 'server.closeTimeoutMs');
  assert.equal(typeof closeTimeout?.default, 'number');
  assert.ok((closeTimeout!.default as number) < GRACE_PERIOD_MS);
});
