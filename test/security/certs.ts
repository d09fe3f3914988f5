/**
 * Test certificates, made fresh by each test run with the openssl CLI (EC P-256: fast) in a temp
 * directory; no private key is ever committed. One CA signs the server's certificate (for
 * 127.0.0.1 and localhost) and one client certificate per user name (subject CN = the user); a
 * second, unrelated CA signs a client certificate that must be refused.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface KeyPair {
  cert: Buffer;
  key: Buffer;
  certPath: string;
  keyPath: string;
}

export interface TestCertificates {
  ca: Buffer;
  caPath: string;
  server: KeyPair;
  /** Signed by the CA, CN = the user name. */
  client(name: string): KeyPair;
  /** Another CA, unknown to the server and the client. */
  rogueCa: Buffer;
  /** A client certificate signed by the rogue CA. */
  rogueClient(name: string): KeyPair;
}

const DAYS = '2';

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

function selfSignedCa(dir: string, name: string, cn: string): void {
  openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', DAYS, '-subj', `/CN=${cn}`]);
}

function signed(dir: string, name: string, cn: string, ca: string, extensions?: string): KeyPair {
  openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
  const args = ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', DAYS];
  if (extensions !== undefined) {
    writeFileSync(join(dir, `${name}.ext`), extensions);
    args.push('-extfile', `${name}.ext`);
  }
  openssl(dir, args);
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  return { cert: readFileSync(certPath), key: readFileSync(keyPath), certPath, keyPath };
}

export function makeCertificates(dir: string): TestCertificates {
  selfSignedCa(dir, 'ca', 'Ferry Test CA');
  selfSignedCa(dir, 'rogue-ca', 'Rogue CA');
  const server = signed(dir, 'server', 'localhost', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  const clients = new Map<string, KeyPair>();
  return {
    ca: readFileSync(join(dir, 'ca.crt')),
    caPath: join(dir, 'ca.crt'),
    server,
    client(name) {
      let pair = clients.get(name);
      if (pair === undefined) {
        pair = signed(dir, `client-${name}`, name, 'ca');
        clients.set(name, pair);
      }
      return pair;
    },
    rogueCa: readFileSync(join(dir, 'rogue-ca.crt')),
    rogueClient(name) {
      return signed(dir, `rogue-${name}`, name, 'rogue-ca');
    },
  };
}
