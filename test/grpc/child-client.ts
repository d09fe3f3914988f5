/**
 * Run in its own process by grpc-client.test.ts (`node --import tsx child-client.ts <host:port>`):
 * a third-party gRPC client (grpc-js + ts-proto stubs) that creates a topic, publishes a batch,
 * consumes it over the Consume stream with acks, nacks (until dead-lettered) and a reject, reads
 * the dead letters with Pull/Ack, redrives them and consumes them again. It prints one JSON line
 * with what it saw; the test checks it.
 */
import { CreateTopicRequest, DescribeGroupRequest, Durability, RedriveRequest } from './generated/ferry/v1/topics.js';
import { AckRequest, CloseConsumerRequest, ConsumeRequest, PublishRequest, PullRequest, type Message } from './generated/ferry/v1/messages.js';
import { GrpcTestClient, text } from './client.js';

const address = process.argv[2];
if (address === undefined) throw new Error('usage: child-client.ts <host:port>');
const client = new GrpcTestClient(address);

const TOPIC = 'orders';
const GROUP = 'workers';
const DEAD_LETTER_TOPIC = `${TOPIC}.dlq`;

async function main(): Promise<void> {
  const created = await client.call(client.topics.createTopic, CreateTopicRequest.fromPartial({ name: TOPIC, config: { partitions: 1, durability: Durability.DURABILITY_ALWAYS } }));
  const published = await client.call(
    client.messages.publish,
    PublishRequest.fromPartial({
      topic: TOPIC,
      messages: ['ok-1', 'nack-once', 'nack-always', 'reject', 'ok-2'].map((value) => ({ value: Buffer.from(value), key: Buffer.from('k'), headers: { origin: 'child' } })),
    }),
  );

  // deliveries_max 2: a message nacked on its second delivery is dead-lettered.
  const stream = client.consume(ConsumeRequest.fromPartial({ start: { topic: TOPIC, group: GROUP, groupConfig: { deliveriesMax: 2, backoffMs: [0] } }, credit: 10 }));
  const first = await stream.next();
  const consumerId = first?.subscribed?.consumerId ?? '';
  const deliveries: Array<{ value: string; deliveryCount: number; origin: string | undefined }> = [];
  const done = new Set<string>();
  let requestId = 0;
  const settleResults: number[] = [];
  const answered = new Set<number>();
  const settled = (result: { requestId: number; failures: unknown[] }): void => {
    answered.add(result.requestId);
    settleResults.push(result.failures.length);
  };
  while (done.size < 5) {
    const response = await stream.next();
    if (response === null) throw new Error('Consume ended early');
    for (const message of response.messages) {
      const value = text(message.value);
      deliveries.push({ value, deliveryCount: message.deliveryCount, origin: message.headers['origin'] });
      const position = { partition: message.partition, offset: message.offset };
      requestId += 1;
      if (value === 'nack-once' && message.deliveryCount === 1) stream.send({ nacks: [{ ...position, delayMs: 0 }], credit: 1, requestId });
      else if (value === 'nack-always') {
        stream.send({ nacks: [{ ...position, delayMs: 0 }], credit: 1, requestId });
        if (message.deliveryCount === 2) done.add(value);
      } else if (value === 'reject') {
        stream.send({ rejects: [{ ...position, reason: 'cannot parse' }], credit: 1, requestId });
        done.add(value);
      } else {
        stream.send({ acks: [position], credit: 1, requestId });
        done.add(value);
      }
    }
    if (response.settled !== undefined) settled(response.settled);
  }
  // Every settle was sent with a request id: wait until all are applied (the dead letters stored).
  while (answered.size < requestId) {
    const response = await stream.next();
    if (response === null) throw new Error('Consume ended before the settles were answered');
    if (response.settled !== undefined) settled(response.settled);
  }

  // The dead letters, read with the unary calls (as a client without streams would).
  const dlq = await pullAll(DEAD_LETTER_TOPIC, 'audit', 2);
  const deadLetters = dlq.messages.map((message) => ({ value: text(message.value), reason: message.headers['ferry-dlq-reason'], group: message.headers['ferry-dlq-group'] }));
  const acked = await client.call(client.messages.ack, AckRequest.fromPartial({ consumerId: dlq.consumerId, positions: dlq.messages.map(({ partition, offset }) => ({ partition, offset })) }));
  await client.call(client.messages.closeConsumer, CloseConsumerRequest.fromPartial({ consumerId: dlq.consumerId }));

  // Redrive: both come back to `orders` as new messages, to the stream still open.
  const redrive = await client.call(client.topics.redrive, RedriveRequest.fromPartial({ deadLetterTopic: DEAD_LETTER_TOPIC }));
  const redriven: string[] = [];
  while (redriven.length < 2) {
    const response = await stream.next();
    if (response === null) throw new Error('Consume ended before the redriven messages');
    for (const message of response.messages) {
      redriven.push(text(message.value));
      stream.send({ acks: [{ partition: message.partition, offset: message.offset }], credit: 1 });
    }
  }
  stream.send({ requestId: 9999 });
  for (;;) {
    const response = await stream.next();
    if (response?.settled?.requestId === 9999) break;
  }
  stream.call.end();
  const ended = await stream.next();
  const group = await client.call(client.topics.describeGroup, DescribeGroupRequest.fromPartial({ topic: TOPIC, group: GROUP }));

  process.stdout.write(
    JSON.stringify({
      created: created.topic?.name,
      offsets: published.results.map((result) => result.offset),
      synced: published.synced,
      consumerId,
      deliveries,
      settleFailures: settleResults.reduce((sum, count) => sum + count, 0),
      deadLetters,
      dlqAckFailures: acked.failures.length,
      redriveMoved: redrive.moved,
      redriven: redriven.sort(),
      streamEndedCleanly: ended === null,
      group: { pending: group.group?.pending, inFlight: group.group?.inFlight, deadLetteredTotal: group.group?.deadLetteredTotal },
    }) + '\n',
  );
}

async function pullAll(topic: string, group: string, count: number): Promise<{ consumerId: string; messages: Message[] }> {
  let consumerId = '';
  const messages: Message[] = [];
  while (messages.length < count) {
    const response = await client.call(
      client.messages.pull,
      PullRequest.fromPartial(consumerId === '' ? { subscription: { topic, group }, maxMessages: count, waitMs: 2_000 } : { consumerId, maxMessages: count - messages.length, waitMs: 2_000 }),
    );
    consumerId = response.consumerId;
    messages.push(...response.messages);
  }
  return { consumerId, messages };
}

main().then(
  () => {
    client.close();
  },
  (error: unknown) => {
    process.stderr.write(`child client failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    client.close();
    process.exitCode = 1;
  },
);
