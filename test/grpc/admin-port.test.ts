/**
 * The admin HTTP port carries everything: the admin API and dashboard over HTTP/1.1 (and HTTP/2),
 * gRPC over h2c, on one port and over one broker.
 */
import assert from 'node:assert/strict';
import { connect as http2Connect, constants as http2Constants } from 'node:http2';
import { test } from 'node:test';
import { startAdmin } from '../admin/harness.js';
import { GrpcTestClient } from './client.js';
import { ConsumeRequest, PublishRequest } from './generated/ferry/v1/messages.js';
import { CreateTopicRequest } from './generated/ferry/v1/topics.js';

async function http2Get(port: number, path: string): Promise<{ status: number; body: string }> {
  const session = http2Connect(`http://127.0.0.1:${port}`);
  try {
    return await new Promise((resolve, reject) => {
      const stream = session.request({ [http2Constants.HTTP2_HEADER_PATH]: path });
      let status = 0;
      let body = '';
      stream.setEncoding('utf8');
      stream.on('response', (headers) => (status = Number(headers[http2Constants.HTTP2_HEADER_STATUS])));
      stream.on('data', (chunk: string) => (body += chunk));
      stream.on('end', () => resolve({ status, body }));
      stream.on('error', reject);
      stream.end();
    });
  } finally {
    session.close();
  }
}

test('grpc admin port - /healthz and the dashboard answer over HTTP/1.1 while gRPC works over h2c on the same port', async () => {
  const fixture = await startAdmin();
  const client = new GrpcTestClient(`127.0.0.1:${fixture.admin.port}`);
  try {
    const stream = client.consume(ConsumeRequest.fromPartial({ start: { topic: 'shared', group: 'g' }, credit: 10 }));
    // The topic does not exist yet: the stream fails with NOT_FOUND, the port stays usable.
    await assert.rejects(stream.next(), /NOT_FOUND/);

    await client.call(client.topics.createTopic, CreateTopicRequest.fromPartial({ name: 'shared' }));
    const live = client.consume(ConsumeRequest.fromPartial({ start: { topic: 'shared', group: 'g' }, credit: 10 }));
    assert.ok((await live.next())?.subscribed !== undefined);

    const health = await fixture.get('/healthz');
    assert.deepEqual([health.status, health.body], [200, { status: 'ok' }]);
    const dashboard = await fixture.text('/');
    assert.equal(dashboard.status, 200);
    assert.match(dashboard.text, /<html/i);

    const published = await client.call(client.messages.publish, PublishRequest.fromPartial({ topic: 'shared', messages: [{ value: Buffer.from('hello') }] }));
    assert.equal(published.synced, true);
    const [message] = await live.messages(1);
    assert.equal(Buffer.from(message!.value).toString(), 'hello');

    // The admin API sees what gRPC did, over HTTP/1.1 and over HTTP/2.
    const topics = await fixture.get('/api/topics');
    assert.ok(topics.body.some((topic: { name: string }) => topic.name === 'shared'));
    const overH2 = await http2Get(fixture.admin.port, '/healthz');
    assert.deepEqual([overH2.status, JSON.parse(overH2.body)], [200, { status: 'ok' }]);
    live.call.cancel();
  } finally {
    client.close();
    await fixture.close();
  }
});
