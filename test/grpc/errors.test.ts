/**
 * Errors over gRPC: each gets the gRPC status mapped from its Ferry code, with the Ferry code in a
 * ferry.v1.ErrorDetail in the status details; the mapping covers every Ferry code and
 * docs/GRPC.md lists them all.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { status, type ServiceError } from '@grpc/grpc-js';
import { ERROR_CODES, type ErrorCode } from '../../src/errors.js';
import { STATUS_BY_FERRY_CODE } from '../../src/transport/grpc/errors.js';
import { ferryDetail } from './client.js';
import { AckRequest, ConsumeRequest, PublishRequest, PullRequest } from './generated/ferry/v1/messages.js';
import { CreateTopicRequest, DescribeGroupRequest, ResetGroupRequest } from './generated/ferry/v1/topics.js';
import { startGrpc } from './harness.js';

const DOC = readFileSync(new URL('../../docs/GRPC.md', import.meta.url), 'utf8');

async function failure(call: Promise<unknown>): Promise<{ code: number; ferry: string | undefined; wire: number | undefined; message: string }> {
  try {
    await call;
  } catch (error) {
    const detail = ferryDetail(error);
    return { code: (error as ServiceError).code, ferry: detail?.code, wire: detail?.wireCode, message: (error as ServiceError).details };
  }
  throw new Error('the call succeeded');
}

test('grpc errors - unknown topic, oversized message and bad arguments get their status and Ferry code', async () => {
  const fixture = await startGrpc();
  const { client } = fixture;
  try {
    await client.call(client.topics.createTopic, CreateTopicRequest.fromPartial({ name: 'known' }));

    const unknown = await failure(client.call(client.messages.publish, PublishRequest.fromPartial({ topic: 'missing', messages: [{ value: Buffer.from('x') }] })));
    assert.deepEqual(unknown, { code: status.NOT_FOUND, ferry: 'UNKNOWN_TOPIC', wire: 2, message: 'unknown topic missing' });

    const oversized = await failure(client.call(client.messages.publish, PublishRequest.fromPartial({ topic: 'known', messages: [{ value: Buffer.alloc(9 * 1024 * 1024) }] })));
    assert.equal(oversized.code, status.INVALID_ARGUMENT);
    assert.equal(oversized.ferry, 'RECORD_TOO_LARGE');

    const bigKey = await failure(client.call(client.messages.publish, PublishRequest.fromPartial({ topic: 'known', messages: [{ value: Buffer.from('v'), key: Buffer.alloc(17 * 1024) }] })));
    assert.deepEqual([bigKey.code, bigKey.ferry], [status.INVALID_ARGUMENT, 'KEY_TOO_LARGE']);

    const exists = await failure(client.call(client.topics.createTopic, CreateTopicRequest.fromPartial({ name: 'known' })));
    assert.deepEqual([exists.code, exists.ferry], [status.ALREADY_EXISTS, 'TOPIC_EXISTS']);

    const bad: Array<[string, Promise<unknown>]> = [
      ['empty topic name', client.call(client.topics.createTopic, CreateTopicRequest.fromPartial({ name: '' }))],
      ['bad topic name', client.call(client.topics.createTopic, CreateTopicRequest.fromPartial({ name: 'a/b' }))],
      ['too many partitions', client.call(client.topics.createTopic, CreateTopicRequest.fromPartial({ name: 'p', config: { partitions: 5000 } }))],
      ['no messages', client.call(client.messages.publish, PublishRequest.fromPartial({ topic: 'known', messages: [] }))],
      ['priority above 9', client.call(client.messages.publish, PublishRequest.fromPartial({ topic: 'known', messages: [{ value: Buffer.from('x'), priority: 12 }] }))],
      ['partition out of range', client.call(client.messages.publish, PublishRequest.fromPartial({ topic: 'known', messages: [{ value: Buffer.from('x'), partition: 3 }] }))],
      ['pull of 5000', client.call(client.messages.pull, PullRequest.fromPartial({ subscription: { topic: 'known', group: 'g' }, maxMessages: 5000 }))],
      ['pull without subscription', client.call(client.messages.pull, PullRequest.fromPartial({}))],
      ['reset without position', client.call(client.topics.resetGroup, ResetGroupRequest.fromPartial({ topic: 'known', group: 'g' }))],
      ['ack timeout too short', client.call(client.messages.pull, PullRequest.fromPartial({ subscription: { topic: 'known', group: 'h', groupConfig: { ackTimeoutMs: 5 } } }))],
    ];
    for (const [what, call] of bad) {
      const result = await failure(call);
      assert.equal(result.code, status.INVALID_ARGUMENT, `${what}: ${JSON.stringify(result)}`);
      assert.equal(result.ferry, 'INVALID_ARGUMENT', what);
    }

    const noConsumer = await failure(client.call(client.messages.ack, AckRequest.fromPartial({ consumerId: 'nope', positions: [{ partition: 0, offset: 0 }] })));
    assert.deepEqual([noConsumer.code, noConsumer.ferry], [status.NOT_FOUND, 'UNKNOWN_SUBSCRIPTION']);
    const noGroup = await failure(client.call(client.topics.describeGroup, DescribeGroupRequest.fromPartial({ topic: 'known', group: 'nobody' })));
    assert.deepEqual([noGroup.code, noGroup.ferry], [status.NOT_FOUND, 'UNKNOWN_GROUP']);

    // A stream that does not start with `start` fails with INVALID_ARGUMENT as its status.
    const stream = client.consume(ConsumeRequest.fromPartial({ credit: 1 }));
    const streamFailure = await failure(stream.next());
    assert.deepEqual([streamFailure.code, streamFailure.ferry], [status.INVALID_ARGUMENT, 'INVALID_ARGUMENT']);
    // A stream on a missing topic: NOT_FOUND.
    const missing = client.consume(ConsumeRequest.fromPartial({ start: { topic: 'missing', group: 'g' }, credit: 1 }));
    const missingFailure = await failure(missing.next());
    assert.deepEqual([missingFailure.code, missingFailure.ferry], [status.NOT_FOUND, 'UNKNOWN_TOPIC']);
    assert.deepEqual(fixture.errors, [], 'request errors are not server errors');
  } finally {
    await fixture.close();
  }
});

test('grpc errors - per-message settle failures are listed, not thrown', async () => {
  const fixture = await startGrpc();
  const { client } = fixture;
  try {
    await client.call(client.topics.createTopic, CreateTopicRequest.fromPartial({ name: 't' }));
    await client.call(client.messages.publish, PublishRequest.fromPartial({ topic: 't', messages: [{ value: Buffer.from('a') }] }));
    const pulled = await client.call(client.messages.pull, PullRequest.fromPartial({ subscription: { topic: 't', group: 'g' }, maxMessages: 1, waitMs: 2_000 }));
    assert.equal(pulled.messages.length, 1);
    const acked = await client.call(client.messages.ack, AckRequest.fromPartial({ consumerId: pulled.consumerId, positions: [{ partition: 0, offset: 0 }, { partition: 0, offset: 99 }] }));
    assert.equal(acked.failures.length, 1);
    assert.equal(acked.failures[0]!.offset, 99);
    assert.equal(acked.failures[0]!.error?.code, 'UNKNOWN_DELIVERY');
    assert.equal(acked.failures[0]!.statusCode, status.NOT_FOUND);
  } finally {
    await fixture.close();
  }
});

test('grpc errors - every Ferry code has a gRPC status, and docs/GRPC.md lists each', () => {
  for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
    assert.ok(STATUS_BY_FERRY_CODE[code] !== undefined, `${code} has no gRPC status`);
    assert.match(DOC, new RegExp(`\\b${code}\\b`), `docs/GRPC.md does not mention ${code}`);
  }
});
