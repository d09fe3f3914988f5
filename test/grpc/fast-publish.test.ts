/**
 * Publish's fast path (issue 24, item 2) answers exactly as connect does: the same request sent in
 * a form the fast path takes (`application/json`, `application/proto`) and in one it leaves to
 * connect (`application/json;charset=utf-8`, a deliver_at time) gets the same status and body,
 * for stored messages and for errors alike. gRPC itself is covered by the grpc-js suites.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { PublishRequestSchema, PublishResponseSchema } from '../../src/generated/ferry/v1/messages_pb.js';
import { startGrpc } from './harness.js';

async function publish(port: number, contentType: string, body: string | Uint8Array): Promise<{ status: number; body: Buffer }> {
  const response = await fetch(`http://127.0.0.1:${port}/ferry.v1.MessageService/Publish`, { method: 'POST', headers: { 'content-type': contentType }, body: typeof body === 'string' ? body : new Uint8Array(body) });
  return { status: response.status, body: Buffer.from(await response.arrayBuffer()) };
}

test('fast publish - JSON answers and errors are connect\'s, byte for byte', async () => {
  const fixture = await startGrpc();
  try {
    await fixture.broker.createTopic('fast', { partitions: 2 });
    await fixture.broker.createTopic('general', { partitions: 2 });
    const request = (topic: string): string => JSON.stringify({ topic, messages: [{ value: 'aGk=', key: 'aw==', headers: { a: 'b' } }, { value: '', partition: 1, priority: 3 }] });
    const fast = await publish(fixture.port, 'application/json', request('fast'));
    const general = await publish(fixture.port, 'application/json;charset=utf-8', request('general'));
    assert.equal(fast.status, 200);
    assert.deepEqual([fast.status, fast.body.toString()], [general.status, general.body.toString()]);
    for (const bad of [
      { topic: 'missing', messages: [{ value: 'aGk=' }] },
      { topic: '', messages: [{ value: 'aGk=' }] },
      { topic: 'fast', messages: [] },
      { topic: 'fast', messages: [{ value: 'aGk=', priority: 12 }] },
      { topic: 'fast', messages: [{ value: 'aGk=', partition: 7 }] },
    ]) {
      const fastError = await publish(fixture.port, 'application/json', JSON.stringify(bad));
      const generalError = await publish(fixture.port, 'application/json;charset=utf-8', JSON.stringify(bad));
      assert.notEqual(fastError.status, 200, JSON.stringify(bad));
      assert.deepEqual([fastError.status, fastError.body.toString()], [generalError.status, generalError.body.toString()], JSON.stringify(bad));
    }
    const stored = await fixture.broker.describeTopic('fast');
    assert.equal(stored.partitions.reduce((sum, partition) => sum + partition.nextOffset, 0), 2, 'the refused requests stored nothing');
    assert.deepEqual(fixture.errors, []);
  } finally {
    await fixture.close();
  }
});

test('fast publish - protobuf answers match connect\'s; what the fast path declines is served by connect', async () => {
  const fixture = await startGrpc();
  try {
    await fixture.broker.createTopic('t', { partitions: 1 });
    const bytes = toBinary(PublishRequestSchema, create(PublishRequestSchema, { topic: 't', messages: [{ value: new Uint8Array([1, 2]) }, { value: new Uint8Array([3]), id: 'x' }] }));
    const answer = await publish(fixture.port, 'application/proto', bytes);
    assert.equal(answer.status, 200);
    const decoded = fromBinary(PublishResponseSchema, answer.body);
    assert.deepEqual(decoded.results.map((result) => Number(result.offset)), [0, 1]);
    assert.equal(decoded.synced, true);
    // deliver_at is left to connect; the answer carries its time.
    const delayed = JSON.stringify({ topic: 't', messages: [{ value: 'aGk=', deliverAt: new Date(Date.now() + 60_000).toISOString() }] });
    const later = await publish(fixture.port, 'application/json', delayed);
    assert.equal(later.status, 200);
    assert.match(later.body.toString(), /"deliverAt":"\d{4}-/);
  } finally {
    await fixture.close();
  }
});
