/**
 * An admin server over a real broker in a temp directory, with small fetch helpers: what every
 * admin test starts from. `tcp: true` also puts a TCP listener on the observed broker.
 */
import { Broker } from '../../src/broker/broker.js';
import { SystemClock } from '../../src/platform/clock.js';
import { silentLogger, type Logger } from '../../src/platform/logger.js';
import { AdminServer } from '../../src/admin/admin-server.js';
import { CountingLogger } from '../../src/admin/log-tap.js';
import { ObservedBroker } from '../../src/admin/observed-broker.js';
import type { AdmissionLimits } from '../../src/broker/limits.js';
import { TcpServer } from '../../src/transport/tcp/server.js';
import { tempDir, type TempDir } from '../helpers.js';

export interface Response {
  status: number;
  body: any;
  headers: Headers;
}

export interface AdminFixture {
  dir: TempDir;
  broker: Broker;
  observed: ObservedBroker;
  admin: AdminServer;
  log: CountingLogger;
  tcp: TcpServer | null;
  tcpPort: number;
  base: string;
  get(path: string): Promise<Response>;
  post(path: string, body?: unknown, headers?: Record<string, string>): Promise<Response>;
  del(path: string): Promise<Response>;
  text(path: string): Promise<{ status: number; text: string; headers: Headers }>;
  close(): Promise<void>;
}

export async function startAdmin(options: { tcp?: boolean; limits?: AdmissionLimits; attach?: boolean; logger?: Logger } = {}): Promise<AdminFixture> {
  const dir = await tempDir('ferry-admin-');
  const clock = new SystemClock();
  const log = new CountingLogger(options.logger ?? silentLogger);
  const admin = await AdminServer.start({ host: '127.0.0.1', port: 0, clock, logger: log, log, dir: dir.path });
  const broker = await Broker.open({ dir: dir.path, clock, logger: log, storageObserver: admin.metrics });
  const observed = new ObservedBroker(broker, admin.metrics.traffic, clock, options.limits);
  let tcp: TcpServer | null = null;
  let tcpPort = 0;
  if (options.tcp === true) {
    tcp = new TcpServer(observed, { clock, logger: log });
    tcpPort = (await tcp.listen(0, '127.0.0.1')).port;
  }
  if (options.attach !== false) admin.attach({ broker: observed, rawBroker: broker, ...(tcp === null ? {} : { connections: tcp, tcp: { host: '127.0.0.1', port: tcpPort } }) });
  const base = `http://127.0.0.1:${admin.port}`;
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> => {
    const init: RequestInit = { method, headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers } };
    if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
    const response = await fetch(base + path, init);
    const text = await response.text();
    return { status: response.status, body: text === '' ? null : JSON.parse(text), headers: response.headers };
  };
  return {
    dir,
    broker,
    observed,
    admin,
    log,
    tcp,
    tcpPort,
    base,
    get: (path) => call('GET', path),
    post: (path, body = {}, headers) => call('POST', path, body, headers),
    del: (path) => call('DELETE', path, undefined, { 'content-type': 'application/json' }),
    text: async (path) => {
      const response = await fetch(base + path);
      return { status: response.status, text: await response.text(), headers: response.headers };
    },
    close: async () => {
      await tcp?.close();
      await admin.close();
      await broker.close();
      await dir.remove();
    },
  };
}
