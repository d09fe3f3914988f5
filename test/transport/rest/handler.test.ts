/**
 * The REST publish endpoints on the HTTP port (issue 24, item 1), over a real broker behind the
 * admin server as `ferry serve` builds it (observed broker, configured limits): from Node's fetch
 * and from curl, with every request header the contract names, and their errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { startAdmin, type AdminFixture } from '../../admin/harness.js';
import type { AdmissionLimits } from '../../../src/broker/limits.js';
import { ADMISSION_CEILINGS } from '../../../src/broker/limits.js';
import type { ConsumedMessage } from '../../../src/broker/message-stream.js';

async function withAdmin(fn: (fixture: AdminFixture) => Promise<void>, limits?: AdmissionLimits): Promise<void> {
  const fixture = await startAdmin(limits === undefined ? {} : { limits });
  try {
    await fixture.broker.createTopic('orders', { partitions: 1, durability: 'always' });
    await fn(fixture);
  } finally {
    await fixture.close();
  }
}

async function post(fixture: AdminFixture, path: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const response = await fetch(fixture.base + path, { method: 'POST', body: typeof body === 'string' ? body : new Uint8Array(body), headers });
  const text = await response.text();
  return { status: response.status, body: text === '' ? null : JSON.parse(text), headers: response.headers };
}

/** The first `count` messages of `topic`, read from the broker itself. */
async function stored(fixture: AdminFixture, topic: string, count: number): Promise<ConsumedMessage[]> {
  const stream = await fixture.broker.subscribe(topic, { from: 'earliest' });
  const messages: ConsumedMessage[] = [];
  for await (const message of stream) {
    messages.push(message);
    if (messages.length === count) break;
  }
  return messages;
}

function curl(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('curl', ['--silent', '--show-error', '--max-time', '10', ...args], (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`curl failed: ${stderr}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

test('rest publish - the body is the value byte for byte; key, headers, priority, trace context and content type are carried', async () => {
  await withAdmin(async (fixture) => {
    const value = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x0d, 0x0a, 0x80]);
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const answer = await post(fixture, '/v1/topics/orders/messages?key=customer-7', value, {
      'content-type': 'application/octet-stream',
      'ferry-header-region': 'eu',
      'ferry-priority': '7',
      traceparent,
    });
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, { partition: 0, offset: 0, durability: 'synced' });
    const second = await post(fixture, '/v1/topics/orders/messages', 'hello', { 'ferry-key': 'header-key', 'content-type': 'text/plain' });
    assert.deepEqual(second.body, { partition: 0, offset: 1, durability: 'synced' });
    const [first, next] = await stored(fixture, 'orders', 2);
    assert.deepEqual(first!.value, value);
    assert.equal(first!.key?.toString(), 'customer-7');
    assert.equal(first!.headers['content-type'], 'application/octet-stream');
    assert.equal(first!.headers['region'], 'eu');
    assert.equal(first!.headers['ferry-priority'], '7');
    assert.equal(first!.headers['traceparent'], traceparent);
    assert.equal(next!.value.toString(), 'hello');
    assert.equal(next!.key?.toString(), 'header-key');
    // The same counters as every other way in.
    assert.equal(fixture.admin.metrics.traffic.topic('orders').messagesIn, 2);
  });
});

test('rest publish - Ferry-Id deduplicates, Ferry-Delay-Ms and Ferry-Deliver-At answer 202 with the due time', async () => {
  await withAdmin(async (fixture) => {
    const first = await post(fixture, '/v1/topics/orders/messages', 'once', { 'ferry-id': 'order-1' });
    const again = await post(fixture, '/v1/topics/orders/messages', 'once', { 'ferry-id': 'order-1' });
    assert.equal(first.status, 200);
    assert.deepEqual(again.body, { ...first.body, duplicate: true });
    const before = Date.now();
    const delayed = await post(fixture, '/v1/topics/orders/messages', 'later', { 'ferry-delay-ms': '60000' });
    assert.equal(delayed.status, 202);
    assert.ok(delayed.body.deliverAtMs >= before + 60_000);
    const at = new Date(Date.now() + 3_600_000);
    const scheduled = await post(fixture, '/v1/topics/orders/messages', 'at', { 'ferry-deliver-at': at.toISOString() });
    assert.equal(scheduled.status, 202);
    assert.equal(scheduled.body.deliverAtMs, at.getTime());
    const epoch = await post(fixture, '/v1/topics/orders/messages', 'at', { 'ferry-deliver-at': String(at.getTime()) });
    assert.equal(epoch.body.deliverAtMs, at.getTime());
  });
});

test('rest publish - concurrent requests are joined into shared publishes and each gets its own offset', async () => {
  await withAdmin(async (fixture) => {
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => post(fixture, '/v1/topics/orders/messages', `m${i}`)));
    assert.ok(answers.every((answer) => answer.status === 200));
    const offsets = answers.map((answer) => answer.body.offset as number).sort((a, b) => a - b);
    assert.deepEqual(offsets, Array.from({ length: 200 }, (_, i) => i));
    const messages = await stored(fixture, 'orders', 200);
    for (let i = 0; i < 200; i++) assert.equal(messages[answers[i]!.body.offset]!.value.toString(), `m${i}`);
    assert.equal(fixture.admin.metrics.traffic.topic('orders').messagesIn, 200);
  });
});

test('rest publish - batches of newline-delimited values and JSON arrays, UTF-8 or base64', async () => {
  await withAdmin(async (fixture) => {
    const lines = await post(fixture, '/v1/topics/orders/messages:batch', 'one\r\ntwo\nthree\n', { 'content-type': 'text/plain', 'ferry-header-source': 'lines' });
    assert.equal(lines.status, 200);
    assert.deepEqual(lines.body.results.map((result: { offset: number }) => result.offset), [0, 1, 2]);
    const json = await post(
      fixture,
      '/v1/topics/orders/messages:batch?encoding=base64',
      JSON.stringify([{ value: Buffer.from([0xff, 0]).toString('base64'), key: Buffer.from('k').toString('base64'), headers: { a: 'b' } }, { value: '' }]),
      { 'content-type': 'application/json' },
    );
    assert.equal(json.status, 200);
    assert.equal(json.body.results.length, 2);
    const b64lines = await post(fixture, '/v1/topics/orders/messages%3Abatch?encoding=base64', `${Buffer.from('x\ny').toString('base64')}\n`);
    assert.equal(b64lines.status, 200);
    const messages = await stored(fixture, 'orders', 6);
    assert.deepEqual(messages.map((message) => message.value.toString('latin1')), ['one', 'two', 'three', '\xff\x00', '', 'x\ny']);
    assert.equal(messages[0]!.headers['source'], 'lines');
    assert.equal(messages[3]!.key?.toString(), 'k');
    assert.equal(messages[3]!.headers['a'], 'b');
  });
});

test('rest publish - errors say what went wrong with their status, and store nothing', async () => {
  const limits = { ...ADMISSION_CEILINGS, recordBytesMax: 1024, publishMessagesMax: 3 };
  await withAdmin(async (fixture) => {
    const unknown = await post(fixture, '/v1/topics/nope/messages', 'x');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'UNKNOWN_TOPIC');
    const large = await post(fixture, '/v1/topics/orders/messages', Buffer.alloc(2048));
    assert.equal(large.status, 413);
    assert.equal(large.body.error.code, 'RECORD_TOO_LARGE');
    const tooMany = await post(fixture, '/v1/topics/orders/messages:batch', 'a\nb\nc\nd\n');
    assert.equal(tooMany.status, 413);
    assert.equal(tooMany.body.error.code, 'BATCH_TOO_LARGE');
    for (const [headers, field] of [
      [{ 'ferry-priority': '12' }, 'Ferry-Priority'],
      [{ 'ferry-delay-ms': 'soon' }, 'Ferry-Delay-Ms'],
      [{ 'ferry-deliver-at': 'tomorrow-ish' }, 'Ferry-Deliver-At'],
    ] as const) {
      const bad = await post(fixture, '/v1/topics/orders/messages', 'x', headers);
      assert.equal(bad.status, 400);
      assert.match(bad.body.error.message, new RegExp(field));
    }
    const badJson = await post(fixture, '/v1/topics/orders/messages:batch', '[{"value": 1}]', { 'content-type': 'application/json' });
    assert.equal(badJson.status, 400);
    const badBase64 = await post(fixture, '/v1/topics/orders/messages:batch?encoding=base64', 'not base64!\n');
    assert.equal(badBase64.status, 400);
    const badEncoding = await post(fixture, '/v1/topics/orders/messages:batch?encoding=hex', 'ab\n');
    assert.equal(badEncoding.status, 400);
    const wrongMethod = await fetch(`${fixture.base}/v1/topics/orders/messages`);
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.get('allow'), 'POST');
    const noRoute = await post(fixture, '/v1/topics/orders/elsewhere', 'x');
    assert.equal(noRoute.status, 404);
    for (const path of ['/v1/topics/orders', '/v1/topics/orders/', '/v1/topics/orders/messages/x', '/v1/topics/orders/groups/g', '/v1/topics/orders/groups/g/acks/x', '/v1/topics/orders/groupsx/g/acks', '/v1/queues/orders/messages']) {
      const miss = await post(fixture, path, 'x');
      assert.equal(miss.status, 404, path);
      assert.equal(miss.body.error.code, 'NOT_FOUND', path);
    }
    // An escaped topic name is the topic's name decoded: a route, to a topic that does not exist.
    const escaped = await post(fixture, '/v1/topics/no%20such/messages', 'x');
    assert.equal(escaped.body.error.code, 'UNKNOWN_TOPIC');
    assert.match(escaped.body.error.message, /no such/);
    // A bad request among good concurrent ones fails alone.
    const mixed = await Promise.all([post(fixture, '/v1/topics/orders/messages', 'good'), post(fixture, '/v1/topics/orders/messages', Buffer.alloc(2048)), post(fixture, '/v1/topics/orders/messages', 'fine')]);
    assert.deepEqual(mixed.map((answer) => answer.status), [200, 413, 200]);
    assert.equal(fixture.broker.describeTopic('orders').partitions[0]!.nextOffset, 2);
  }, limits);
});

test('rest publish - before the broker is attached the port answers 503 with Retry-After', async () => {
  const fixture = await startAdmin({ attach: false });
  try {
    const answer = await post(fixture, '/v1/topics/orders/messages', 'x');
    assert.equal(answer.status, 503);
    assert.equal(answer.body.error.code, 'BROKER_BUSY');
    assert.equal(answer.headers.get('retry-after'), '1');
  } finally {
    await fixture.close();
  }
});

test('rest publish - from curl: a body from stdin, a key and a header, and the JSON answer', async () => {
  await withAdmin(async (fixture) => {
    const out = await curl(['--data-binary', '@-', '-H', 'Ferry-Key: k1', '-H', 'Ferry-Header-Source: curl', `${fixture.base}/v1/topics/orders/messages`], 'from curl\n');
    assert.deepEqual(JSON.parse(out), { partition: 0, offset: 0, durability: 'synced' });
    const batch = await curl(['--data-binary', '@-', `${fixture.base}/v1/topics/orders/messages:batch`], 'a\nb\n');
    assert.equal(JSON.parse(batch).results.length, 2);
    const status = await curl(['-o', '/dev/null', '-w', '%{http_code}', '--data-binary', 'x', `${fixture.base}/v1/topics/missing/messages`]);
    assert.equal(status, '404');
    const [message] = await stored(fixture, 'orders', 1);
    assert.equal(message!.value.toString(), 'from curl\n');
    assert.equal(message!.key?.toString(), 'k1');
    assert.equal(message!.headers['source'], 'curl');
    assert.equal(message!.headers['content-type'], 'application/x-www-form-urlencoded');
  });
});

test('rest publish - over HTTP/2 (h2c) on the same port, and a too-large body is refused there too', async () => {
  const { connect } = await import('node:http2');
  await withAdmin(async (fixture) => {
    const session = connect(fixture.base);
    try {
      const send = (body: Buffer): Promise<{ status: number; text: string }> =>
        new Promise((resolve, reject) => {
          const stream = session.request({ ':method': 'POST', ':path': '/v1/topics/orders/messages', 'ferry-key': 'h2' });
          let status = 0;
          let text = '';
          stream.on('response', (headers) => (status = Number(headers[':status'])));
          stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
          stream.on('end', () => resolve({ status, text }));
          stream.on('error', reject);
          stream.end(body);
        });
      const answer = await send(Buffer.from('over h2'));
      assert.equal(answer.status, 200);
      assert.deepEqual(JSON.parse(answer.text), { partition: 0, offset: 0, durability: 'synced' });
      const large = await send(Buffer.alloc(2048));
      assert.equal(large.status, 413);
      const [message] = await stored(fixture, 'orders', 1);
      assert.equal(message!.key?.toString(), 'h2');
    } finally {
      session.close();
    }
  }, { ...ADMISSION_CEILINGS, recordBytesMax: 1024 });
});
