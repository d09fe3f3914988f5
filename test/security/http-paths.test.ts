/**
 * Alternate spellings of the HTTP port's paths (issue 22, item 1): the login and permission checks
 * and the router must see one and the same path. Every route of the admin API, the dashboard,
 * /metrics, the probes and a few gRPC/Connect methods is requested in encoded variants
 * (percent-encoded letters, either case of hex digits, double encoding, double slashes, `.` and
 * `..` segments, encoded dots, upper case, a trailing slash, an encoded `/` or NUL, a backslash,
 * the absolute form), anonymously and as a user without admin rights, over HTTP/1.1 and HTTP/2:
 * none may get more than the plain path gives that caller.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, Agent } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { basic, startSecure, usersFile, type SecureBroker } from './harness.js';
import { RecordingSink } from '../broker/sim-broker.js';

const PASSWORD = 'paths-password';
const USERS = {
  ops: { password: PASSWORD, allow: ['admin:*', 'publish:*', 'consume:*'] },
  alice: { password: PASSWORD, allow: ['publish:orders.*', 'consume:orders.*'] },
};
const PARAMS: Record<string, string> = { topic: 'orders.eu', group: 'g1' };

interface Endpoint {
  method: string;
  path: string;
  /** JSON body for POST (content-type: application/json). */
  body?: string;
}

interface Answer {
  status: number;
  text: string;
}

type Caller = 'anonymous' | 'alice';

function authorization(caller: Caller): Record<string, string> {
  return caller === 'anonymous' ? {} : { authorization: basic(caller, PASSWORD) };
}

/** HTTP/1.1 with the path sent exactly as given (fetch would normalise it first). */
function send1(port: number, endpoint: Endpoint, caller: Caller, agent?: Agent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...authorization(caller) };
    if (endpoint.body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(endpoint.body));
    }
    const req = httpRequest({ host: '127.0.0.1', port, method: endpoint.method, path: endpoint.path, headers, ...(agent === undefined ? {} : { agent }) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(endpoint.body);
  });
}

/** HTTP/2 (h2c), `:path` as given. */
function send2(port: number, endpoint: Endpoint, caller: Caller): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const headers: Record<string, string> = { ':method': endpoint.method, ':path': endpoint.path, ...authorization(caller) };
    if (endpoint.body !== undefined) headers['content-type'] = 'application/json';
    const stream = session.request(headers);
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on('response', (head) => (status = Number(head[':status'])));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      session.close();
      resolve({ status, text: Buffer.concat(chunks).toString('utf8') });
    });
    stream.on('error', reject);
    stream.end(endpoint.body);
  });
}

/** Every endpoint to walk: the router's own list (params filled in), the mounted handlers, gRPC/Connect. */
function endpoints(running: SecureBroker): Endpoint[] {
  const list: Endpoint[] = [];
  for (const { method, pattern } of running.admin!.router.endpoints()) {
    const path = pattern.replace(/:([a-z]+)/g, (_, name: string) => PARAMS[name]!);
    list.push(method === 'POST' ? { method, path, body: '{}' } : { method, path });
  }
  for (const path of ['/metrics', '/', '/index.html', '/favicon.ico', '/ui/app.js', '/ui/style.css']) list.push({ method: 'GET', path });
  for (const method of ['ferry.v1.TopicService/ListTopics', 'ferry.v1.TopicService/DescribeTopic', 'ferry.v1.MessageService/Publish']) {
    list.push({ method: 'POST', path: `/${method}`, body: method.endsWith('Publish') ? '{"topic":"orders.eu","messages":[{"value":"eA=="}]}' : '{"name":"orders.eu"}' });
  }
  return list;
}

function percent(char: string, upperHex: boolean): string {
  const hex = char.charCodeAt(0).toString(16).padStart(2, '0');
  return `%${upperHex ? hex.toUpperCase() : hex.toLowerCase()}`;
}

/** Encodes the first letter of a segment (`api` → `%61pi`). */
function encodeFirstLetter(segment: string, upperHex = false): string {
  const index = segment.search(/[a-zA-Z]/);
  if (index < 0) return segment;
  return segment.slice(0, index) + percent(segment[index]!, upperHex) + segment.slice(index + 1);
}

/** Spellings of `path` that mean the same resource, or are malformed, or differ only in case. */
function variants(path: string): string[] {
  const segments = path.split('/').slice(1);
  const join = (parts: string[]) => '/' + parts.join('/');
  const out = new Set<string>();
  segments.forEach((segment, i) => {
    if (segment === '') return;
    out.add(join(segments.map((s, j) => (j === i ? encodeFirstLetter(s) : s))));
    out.add(join(segments.map((s, j) => (j === i ? encodeFirstLetter(s, true) : s))));
    // Double encoding must not be decoded twice: `%2561pi` is the segment `%61pi`, not `api`.
    out.add(join(segments.map((s, j) => (j === i ? encodeFirstLetter(s).replace('%', '%25') : s))));
    out.add(join(segments.map((s, j) => (j === i ? s.toUpperCase() : s))));
    out.add(join(segments.map((s, j) => (j === i ? s[0]!.toUpperCase() + s.slice(1) : s))));
    out.add(join(segments.map((s, j) => (j === i ? `${s}%00` : s))));
    out.add(join(segments.map((s, j) => (j === i ? `${s};x=1` : s))));
  });
  const every = segments.map((s) => [...s].map((c) => percent(c, true)).join(''));
  out.add(join(every));
  out.add(join(segments.map((s) => encodeFirstLetter(s))));
  out.add('/' + path);
  out.add(path.replace(/\//g, '//'));
  out.add(path + '/');
  out.add('/.' + path);
  out.add('/%2e' + path);
  out.add('/x/..' + path);
  out.add('/x/%2e%2e' + path);
  out.add('/x/%2E%2E' + path);
  out.add('/..' + path);
  out.add(path.toUpperCase());
  if (segments.length > 1) {
    out.add('/' + segments[0] + '/.' + path.slice(segments[0]!.length + 1));
    out.add('/' + segments[0] + '%2F' + segments.slice(1).join('/'));
    out.add('/' + segments[0] + '%2f' + segments.slice(1).join('/'));
    out.add('/' + segments[0] + '\\' + segments.slice(1).join('\\'));
    out.add('/' + segments[0] + '/x/..' + path.slice(segments[0]!.length + 1));
  }
  out.add(`http://127.0.0.1${path}`);
  out.delete(path);
  return [...out];
}

/** A variant gets "more" when it succeeds (2xx/3xx) where the plain path does not, or succeeds differently. */
function assertNoMore(plain: Answer, variant: Answer, what: string): void {
  if (variant.status >= 400) return;
  assert.equal(variant.status, plain.status, `${what}: answered ${variant.status} where the plain path answers ${plain.status}: ${variant.text.slice(0, 200)}`);
}

test('http paths - no encoded, doubled, dotted or re-cased spelling of a route gets more than the plain path, anonymous or non-admin', { timeout: 120_000 }, async () => {
  const running = await startSecure({ users: await usersFile(USERS), http: true });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await running.broker.createTopic('orders.eu');
    await running.broker.createTopic('orders.eu.dlq');
    const subscription = await running.broker.subscribe('orders.eu', { group: 'g1' }, new RecordingSink());
    await subscription.close();
    const port = running.httpPort;
    let checked = 0;
    const bypassed: string[] = [];
    for (const endpoint of endpoints(running)) {
      for (const caller of ['anonymous', 'alice'] as const) {
        const plain = await send1(port, endpoint, caller, agent);
        for (const path of variants(endpoint.path)) {
          const variant = await send1(port, { ...endpoint, path }, caller, agent);
          try {
            assertNoMore(plain, variant, `${caller} ${endpoint.method} ${path} (HTTP/1.1)`);
          } catch (error) {
            bypassed.push((error as Error).message);
          }
          checked++;
        }
      }
    }
    // HTTP/2 reaches the same handler with `:path`: a sample of the variants that mattered.
    for (const path of ['/%61pi/info', '/api/%63onnections', '//api/info', '/x/../api/connections', '/%2e/api/info', '/%66erry.v1.TopicService/ListTopics']) {
      const method = path.includes('ferry') ? 'POST' : 'GET';
      const plainPath = path.includes('ferry') ? '/ferry.v1.TopicService/ListTopics' : path.includes('onnections') ? '/api/connections' : '/api/info';
      const body = method === 'POST' ? '{}' : undefined;
      for (const caller of ['anonymous', 'alice'] as const) {
        const plain = await send2(port, { method, path: plainPath, ...(body === undefined ? {} : { body }) }, caller);
        const variant = await send2(port, { method, path, ...(body === undefined ? {} : { body }) }, caller);
        try {
          assertNoMore(plain, variant, `${caller} ${method} ${path} (HTTP/2)`);
        } catch (error) {
          bypassed.push((error as Error).message);
        }
        checked++;
      }
    }
    assert.deepEqual(bypassed, [], `${bypassed.length} of ${checked} spellings got more than their plain path`);
    assert.ok(checked > 1000, `walked ${checked} spellings`);
  } finally {
    agent.destroy();
    await running.close();
  }
});

test('http paths - the reported spellings are refused: /%61pi/connections and /%61pi/info need a login, /api/%63onnections needs admin', async () => {
  const running = await startSecure({ users: await usersFile(USERS), http: true });
  try {
    const port = running.httpPort;
    const get = (path: string, caller: Caller) => send1(port, { method: 'GET', path }, caller);
    assert.equal((await get('/%61pi/connections', 'anonymous')).status, 401);
    const info = await get('/%61pi/info', 'anonymous');
    assert.equal(info.status, 401);
    assert.doesNotMatch(info.text, /"pid"/);
    assert.equal((await get('/api/%63onnections', 'alice')).status, 403);
    assert.equal((await get('/API/connections', 'alice')).status, 404);
    // The plain paths answer as they should, so the refusals above are not an outage.
    assert.equal((await get('/api/info', 'alice')).status, 200);
    assert.equal((await send1(port, { method: 'GET', path: '/api/connections' }, 'anonymous')).status, 401);
    // Ambiguous spellings are refused outright, whoever asks.
    for (const path of ['/api%2Fconnections', '/api/info%00', '/api\\info', '/api/%zz', '/api/%c3%28']) {
      const answer = await get(path, 'alice');
      assert.equal(answer.status, 400, `${path}: ${answer.status} ${answer.text}`);
      assert.equal(JSON.parse(answer.text).error.code, 'INVALID_ARGUMENT');
    }
  } finally {
    await running.close();
  }
});
