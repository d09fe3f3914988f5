/**
 * Topic and group names at their one limit (NAME_BYTES_MAX, protocol/limits.ts), the same whichever
 * way a name comes in: embedded, over TCP and over gRPC.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, isFerryError } from '../../src/client/index.js';
import { silentLogger } from '../../src/platform/logger.js';
import { NAME_BYTES_MAX } from '../../src/protocol/limits.js';
import { TcpServer } from '../../src/transport/tcp/server.js';
import { ferryDetail } from '../grpc/client.js';
import { CreateTopicRequest } from '../grpc/generated/ferry/v1/topics.js';
import { startGrpc } from '../grpc/harness.js';

/** A name of exactly `bytes` bytes, starting with `prefix`. */
function nameOf(prefix: string, bytes: number): string {
  return prefix + 'x'.repeat(bytes - prefix.length);
}

async function refusedCode(work: Promise<unknown>): Promise<string | undefined> {
  const error = await work.then(
    () => null,
    (thrown: unknown) => thrown,
  );
  assert.ok(error !== null, 'refused');
  return isFerryError(error) ? error.code : ferryDetail(error)?.code;
}

test('names - a topic name of NAME_BYTES_MAX bytes is taken embedded, over TCP and over gRPC; one byte more is INVALID_ARGUMENT on each', async () => {
  const fixture = await startGrpc();
  const server = new TcpServer(fixture.broker, { logger: silentLogger });
  const { port } = await server.listen(0, '127.0.0.1');
  const tcp = await connect({ port, host: '127.0.0.1' });
  const grpc = fixture.client;
  const ways: Array<[string, (name: string) => Promise<unknown>]> = [
    ['embedded', (name) => fixture.broker.createTopic(name)],
    ['tcp', (name) => tcp.createTopic(name)],
    ['grpc', (name) => grpc.call(grpc.topics.createTopic, CreateTopicRequest.fromPartial({ name }))],
  ];
  try {
    for (const [way, create] of ways) {
      const longest = nameOf(`${way}.`, NAME_BYTES_MAX);
      await create(longest);
      assert.equal(fixture.broker.describeTopic(longest).name, longest, way);
      assert.equal(await refusedCode(create(nameOf(`${way}.`, NAME_BYTES_MAX + 1))), 'INVALID_ARGUMENT', way);
    }
    assert.equal(fixture.broker.listTopics().length, ways.length, 'nothing created by the refusals');
  } finally {
    await tcp.close();
    await server.close();
    await fixture.close();
  }
});
