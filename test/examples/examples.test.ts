/**
 * The README's code samples: each is a file in examples/ (the README shows it as written, header
 * comment aside), and each runs, in the README's order, against a fresh broker of its own (temp
 * directory, free ports) and ends. The cluster sample runs against a real three-broker cluster
 * with etcd, the secure client against a broker with users and TLS.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeCertificates } from '../security/certs.js';
import { startSecure, usersFile } from '../security/harness.js';
import { TestCluster } from '../cluster/cluster-harness.js';
import { serve } from '../cli/run-ferry.js';
import { tempDir } from '../helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** `node --import tsx`, resolved from here so that an example may run in another directory. */
const TSX = import.meta.resolve('tsx');
/** A sample that has not ended after this long does not end. */
const SAMPLE_TIMEOUT_MS = 30_000;

interface Sample {
  path: string;
  /** What the README shows: the file without its header comment (up to the first blank line). */
  body: string;
}

/** The README's fenced blocks, in order, each with the marker comment just above it. */
function readmeBlocks(): Array<{ marker: string; text: string }> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const blocks: Array<{ marker: string; text: string }> = [];
  const fence = /(?:<!-- (.*?) -->\n)?```\w*\n([\s\S]*?)```/g;
  for (const match of readme.matchAll(fence)) blocks.push({ marker: match[1] ?? '', text: match[2]!.replace(/\n$/, '') });
  return blocks;
}

function sampleOf(path: string): Sample {
  const text = readFileSync(join(ROOT, path), 'utf8');
  const blank = text.indexOf('\n\n');
  return { path, body: text.slice(blank + 2).replace(/\n$/, '') };
}

/** The samples in the README's order. */
function samples(): Sample[] {
  return readmeBlocks().flatMap(({ marker }) => {
    const path = /^example: (\S+)$/.exec(marker)?.[1];
    return path === undefined ? [] : [sampleOf(path)];
  });
}

function runSample(path: string, options: { env?: Record<string, string>; cwd?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const file = join(ROOT, path);
  const argv = path.endsWith('.sh') ? ['sh', file] : [process.execPath, '--import', TSX, file];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: options.cwd ?? ROOT, env: { ...process.env, FERRY_URL: '', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${path} did not end within ${SAMPLE_TIMEOUT_MS} ms; stdout: ${stdout}; stderr: ${stderr}`));
    }, SAMPLE_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('examples - every README code block is a file in examples/ shown as written, or marked as reference', () => {
  const blocks = readmeBlocks();
  assert.ok(blocks.length >= 6, 'the README has its samples');
  for (const { marker, text } of blocks) {
    const path = /^example: (\S+)$/.exec(marker)?.[1];
    if (path === undefined) {
      assert.match(marker, /^reference: /, `a README block that is neither a sample nor marked as reference:\n${text}`);
      continue;
    }
    assert.equal(text, sampleOf(path).body, `README.md shows ${path} as written`);
  }
  const files = readdirSync(join(ROOT, 'examples')).map((name) => `examples/${name}`).sort();
  assert.deepEqual(samples().map((sample) => sample.path).sort(), files, 'every file in examples/ is in the README, once');
});

test('examples - the samples run in the README\'s order against a fresh broker and end', { timeout: 240_000 }, async () => {
  await using dir = await tempDir();
  const broker = serve(['--dir', join(dir.path, 'data'), '--port', '0', '--http-port', '0']);
  try {
    const listening = await broker.waitFor('broker.listening');
    assert.ok(listening !== null, JSON.stringify(broker.events));
    const port = String(listening['port']);
    const order = samples().map((sample) => sample.path);
    assert.deepEqual(order, ['examples/try-it.sh', 'examples/client.ts', 'examples/cluster.ts', 'examples/embedded.ts', 'examples/reliable-delivery.ts', 'examples/secure-client.ts']);

    const tryIt = await runSample('examples/try-it.sh', { env: { FERRY_URL: `ferry://127.0.0.1:${port}` } });
    assert.equal(tryIt.code, 0, tryIt.stderr);
    assert.match(tryIt.stdout, /^hello$/m);

    const client = await runSample('examples/client.ts', { env: { FERRY_PORT: port } });
    assert.equal(client.code, 0, client.stderr);
    assert.equal(client.stdout, '0 hello\n1 hi\n');

    const embedded = await runSample('examples/embedded.ts', { cwd: dir.path });
    assert.equal(embedded.code, 0, embedded.stderr);
    assert.match(embedded.stdout, /^TCP clients can connect to port \d+\n$/);
    const again = await runSample('examples/embedded.ts', { cwd: dir.path });
    assert.equal(again.code, 0, `a second run on the same directory: ${again.stderr}`);

    const reliable = await runSample('examples/reliable-delivery.ts', { env: { FERRY_PORT: port } });
    assert.equal(reliable.code, 0, reliable.stderr);
    assert.match(reliable.stdout, /^resize photo 7 delivery 1$/m);
    assert.match(reliable.stdout, /^send report delivery 1$/m);
    assert.match(reliable.stdout, /^redriven 1$/m);
  } finally {
    broker.child.kill('SIGTERM');
    await new Promise((resolve) => broker.child.once('exit', resolve));
  }
});

test('examples - the secure client logs in over TLS with a user and a password from the environment', async () => {
  await using dir = await tempDir();
  const certs = makeCertificates(dir.path);
  const password = 'correct horse battery';
  const server = await startSecure({
    users: await usersFile({ alice: { password, allow: ['admin:*'] } }),
    tls: { material: { cert: certs.server.cert, key: certs.server.key } },
  });
  try {
    await server.broker.createTopic('orders');
    const run = await runSample('examples/secure-client.ts', {
      env: { FERRY_HOST: 'localhost', FERRY_PORT: String(server.port), FERRY_CA: certs.caPath, FERRY_PASSWORD: password },
    });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, "[ 'orders' ]\n");
  } finally {
    await server.close();
  }
});

test('examples - the cluster sample runs against three brokers with etcd and ends', { timeout: 180_000 }, async () => {
  const cluster = await TestCluster.start();
  try {
    const run = await runSample('examples/cluster.ts', { env: { FERRY_SERVERS: cluster.servers.join(',') } });
    assert.equal(run.code, 0, `${run.stderr}\n${cluster.describe()}`);
    for (const nodeId of ['n1', 'n2', 'n3']) assert.match(run.stdout, new RegExp(`nodeId: '${nodeId}'`));
  } finally {
    await cluster.stop();
  }
});
