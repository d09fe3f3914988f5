/**
 * The Connect protocol's JSON form with curl, as any language without a gRPC library would use it:
 * plain HTTP/1.1 (publish, pull, ack) and HTTP/2 without TLS (`--http2-prior-knowledge`) on the
 * same port. Skipped, with the reason printed, when curl is not installed.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { startGrpc, type GrpcFixture } from './harness.js';

const CURL_AVAILABLE = spawnSync('sh', ['-c', 'command -v curl'], { encoding: 'utf8' }).status === 0;
const SKIP = CURL_AVAILABLE ? false : 'curl is not installed (apt-get install -y curl)';
if (SKIP !== false) console.log(`# skipping the curl tests: ${SKIP}`);
/** Per curl call; a pull waits at most 2 s. */
const CURL_TIMEOUT_S = 10;

interface CurlResult {
  status: number;
  httpVersion: string;
  body: any;
}

/** POSTs JSON to a Connect endpoint; `http2` uses h2c with prior knowledge. */
function curl(fixture: GrpcFixture, path: string, body: unknown, http2 = false): Promise<CurlResult> {
  const args = [
    '-sS',
    '--max-time',
    String(CURL_TIMEOUT_S),
    ...(http2 ? ['--http2-prior-knowledge'] : ['--http1.1']),
    '-X',
    'POST',
    '-H',
    'content-type: application/json',
    '--data-binary',
    JSON.stringify(body),
    '-w',
    '\n%{http_code} %{http_version}',
    `http://127.0.0.1:${fixture.port}${path}`,
  ];
  return new Promise((resolve, reject) => {
    execFile('curl', args, { encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error !== null) {
        reject(new Error(`curl failed: ${error.message} ${stderr}`));
        return;
      }
      const newline = stdout.lastIndexOf('\n');
      const [status, httpVersion] = stdout.slice(newline + 1).split(' ');
      resolve({ status: Number(status), httpVersion: httpVersion!, body: JSON.parse(stdout.slice(0, newline)) });
    });
  });
}

test('grpc curl - plain HTTP/1.1 JSON publishes, pulls and acks a message', { skip: SKIP }, async () => {
  const fixture = await startGrpc();
  try {
    const created = await curl(fixture, '/ferry.v1.TopicService/CreateTopic', { name: 'events', config: { durability: 'DURABILITY_ALWAYS' } });
    assert.equal(created.status, 200);
    assert.equal(created.httpVersion, '1.1');
    assert.equal(created.body.topic.config.durability, 'DURABILITY_ALWAYS');

    const published = await curl(fixture, '/ferry.v1.MessageService/Publish', {
      topic: 'events',
      messages: [{ key: Buffer.from('user-1').toString('base64'), headers: { type: 'signup' }, value: Buffer.from('{"id":1}').toString('base64') }],
    });
    assert.equal(published.status, 200);
    assert.deepEqual(published.body, { results: [{ partition: 0, offset: '0', duplicate: false }], synced: true });

    const pulled = await curl(fixture, '/ferry.v1.MessageService/Pull', { subscription: { topic: 'events', group: 'mailer' }, maxMessages: 10, waitMs: 2000 });
    assert.equal(pulled.status, 200);
    assert.equal(pulled.body.messages.length, 1);
    const [message] = pulled.body.messages;
    assert.equal(Buffer.from(message.value, 'base64').toString(), '{"id":1}');
    assert.equal(Buffer.from(message.key, 'base64').toString(), 'user-1');
    assert.deepEqual(message.headers, { type: 'signup' });
    assert.equal(message.deliveryCount, 1);
    assert.match(message.publishTime, /^\d{4}-\d\d-\d\dT/);

    const acked = await curl(fixture, '/ferry.v1.MessageService/Ack', { consumerId: pulled.body.consumerId, positions: [{ partition: message.partition, offset: message.offset }] });
    assert.deepEqual(acked.body, { failures: [] });
    const group = await curl(fixture, '/ferry.v1.TopicService/DescribeGroup', { topic: 'events', group: 'mailer' });
    assert.equal(group.body.group.pending, '0');

    const missing = await curl(fixture, '/ferry.v1.MessageService/Publish', { topic: 'nope', messages: [{ value: 'eA==' }] });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, 'not_found');
    assert.equal(missing.body.details[0].type, 'ferry.v1.ErrorDetail');
    assert.equal(missing.body.details[0].debug.code, 'UNKNOWN_TOPIC');

    const typo = await curl(fixture, '/ferry.v1.MessageService/Publish', { topik: 'events' });
    assert.equal(typo.status, 400, 'unknown JSON fields are refused');
  } finally {
    await fixture.close();
  }
});

test('grpc curl - HTTP/2 without TLS (prior knowledge) serves the JSON form on the same port', { skip: SKIP }, async () => {
  const fixture = await startGrpc();
  try {
    await curl(fixture, '/ferry.v1.TopicService/CreateTopic', { name: 'h2' }, true);
    const published = await curl(fixture, '/ferry.v1.MessageService/Publish', { topic: 'h2', messages: [{ value: Buffer.from('over h2c').toString('base64') }] }, true);
    assert.equal(published.httpVersion, '2');
    assert.equal(published.body.results[0].offset, '0');
    const pulled = await curl(fixture, '/ferry.v1.MessageService/Pull', { subscription: { topic: 'h2', start: { earliest: true } }, waitMs: 2000 }, true);
    assert.equal(pulled.httpVersion, '2');
    assert.equal(Buffer.from(pulled.body.messages[0].value, 'base64').toString(), 'over h2c');
    const listed = await curl(fixture, '/ferry.v1.TopicService/ListTopics', {}, true);
    assert.deepEqual(listed.body.topics.map((topic: { name: string }) => topic.name), ['h2']);
  } finally {
    await fixture.close();
  }
});
