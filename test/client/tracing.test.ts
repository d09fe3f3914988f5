/**
 * OpenTelemetry spans (src/client/tracing.ts, src/broker/tracing.ts), checked with the SDK's
 * in-memory exporter against a real broker and client: a publish, its deliveries (a redelivery
 * included), the dead-letter move, the redrive and the redriven copy's delivery form one trace,
 * with the messaging attributes; without an SDK nothing is made and headers pass unchanged; without
 * a registered propagator the context still travels as a W3C traceparent; without the API nothing
 * is loaded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Broker } from '../../src/index.js';
import { connect, type FerryClient, type Message, type Subscription } from '../../src/client/index.js';
import { loadOtelApi } from '../../src/protocol/tracing.js';
import { ADMISSION_CEILINGS } from '../../src/broker/limits.js';
import { SystemClock } from '../../src/platform/clock.js';
import { silentLogger } from '../../src/platform/logger.js';
import { UdpServer } from '../../src/transport/udp/server.js';
import { eventually, tempDir } from '../helpers.js';

const exporter = new InMemorySpanExporter();

function registerSdk(withPropagator: boolean): void {
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  if (withPropagator) propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
}

function unregisterSdk(): void {
  trace.disable();
  propagation.disable();
  context.disable();
  exporter.reset();
}

async function withBrokerAndClient(run: (client: FerryClient, broker: Broker) => Promise<void>): Promise<void> {
  await using dir = await tempDir();
  const broker = await Broker.open({ dir: dir.path });
  const listener = await broker.listen({ port: 0, host: '127.0.0.1' });
  const client = await connect({ host: '127.0.0.1', port: listener.port, reconnect: false });
  try {
    await run(client, broker);
  } finally {
    await client.close();
    await broker.close();
  }
}

/** Runs `handle` on each message of `subscription` until it is closed. */
function consume(subscription: Subscription, handle: (message: Message) => Promise<void>): void {
  void (async () => {
    for await (const message of subscription) await handle(message);
  })();
}

const named = (name: string): ReadableSpan[] => exporter.getFinishedSpans().filter((span) => span.name === name);

test('tracing - a publish, its deliveries, the dead-letter move, the redrive and the redriven delivery form one trace', async () => {
  registerSdk(true);
  try {
    await withBrokerAndClient(async (client) => {
      await client.createTopic('orders');
      const tracer = trace.getTracer('test');
      const checkout = tracer.startSpan('checkout');
      await context.with(trace.setSpan(context.active(), checkout), () => client.publish('orders', 'work', { id: 'order-1' }));
      checkout.end();
      const traceId = checkout.spanContext().traceId;

      const workers = await client.subscribe('orders', { group: 'workers', from: 'earliest', deliveriesMax: 2, backoffMs: [0] });
      const headersSeen: string[] = [];
      let redriven = false;
      consume(workers, async (message) => {
        headersSeen.push(message.headers['traceparent'] ?? '');
        assert.ok(message.span !== undefined, 'a delivery carries its span');
        if (message.offset === 0) await message.nack();
        else {
          redriven = true;
          await message.ack();
        }
      });
      await eventually(() => assert.equal(named('dead_letter orders.dlq').length, 1));
      assert.deepEqual(await client.redrive('orders.dlq'), { moved: 1 });
      await eventually(() => assert.ok(redriven && named('process orders').length === 3));
      await workers.close();

      const [send] = named('send orders');
      assert.ok(send !== undefined);
      const spans = exporter.getFinishedSpans().filter((span) => span.name !== 'checkout');
      assert.deepEqual(
        spans.map((span) => span.name).sort(),
        ['dead_letter orders.dlq', 'process orders', 'process orders', 'process orders', 'redrive orders', 'send orders'],
      );
      for (const span of spans) assert.equal(span.spanContext().traceId, traceId, `${span.name} is in the trace`);
      assert.equal(send.parentSpanContext?.spanId, checkout.spanContext().spanId, 'the publish is a child of the active span');
      for (const span of spans.filter((s) => s !== send)) assert.equal(span.parentSpanContext?.spanId, send.spanContext().spanId, `${span.name} is a child of the publish`);

      assert.deepEqual(headersSeen, Array(3).fill(`00-${traceId}-${send.spanContext().spanId}-01`), 'the message carries the producer span');
      assert.equal(send.attributes['messaging.system'], 'ferry');
      assert.equal(send.attributes['messaging.destination.name'], 'orders');
      assert.equal(send.attributes['messaging.operation.type'], 'send');
      assert.equal(send.attributes['messaging.message.id'], 'order-1');
      assert.deepEqual([send.attributes['messaging.destination.partition.id'], send.attributes['messaging.ferry.offset']], ['0', 0]);

      const deliveries = named('process orders').map((span) => ({
        offset: span.attributes['messaging.ferry.offset'],
        count: span.attributes['messaging.ferry.delivery_count'],
        settlement: span.attributes['messaging.ferry.settlement'],
        group: span.attributes['messaging.consumer.group.name'],
        operation: span.attributes['messaging.operation.type'],
        linked: span.links.map((link) => link.context.spanId),
      }));
      const link = [send.spanContext().spanId];
      assert.deepEqual(deliveries, [
        { offset: 0, count: 1, settlement: 'nack', group: 'workers', operation: 'process', linked: link },
        { offset: 0, count: 2, settlement: 'nack', group: 'workers', operation: 'process', linked: link },
        { offset: 1, count: 1, settlement: 'ack', group: 'workers', operation: 'process', linked: link },
      ]);
      const [deadLetter] = named('dead_letter orders.dlq');
      assert.equal(deadLetter!.attributes['messaging.ferry.source.topic'], 'orders');
    });
  } finally {
    unregisterSdk();
  }
});

test('tracing - a rejected delivery\'s span ends once its dead letter is stored', async () => {
  registerSdk(true);
  try {
    await withBrokerAndClient(async (client) => {
      await client.createTopic('jobs');
      await client.publish('jobs', 'bad');
      const workers = await client.subscribe('jobs', { group: 'w', from: 'earliest' });
      consume(workers, (message) => message.reject('cannot parse'));
      await eventually(() => assert.equal(named('process jobs').length, 1));
      await workers.close();
      const [span] = named('process jobs');
      assert.equal(span!.attributes['messaging.ferry.settlement'], 'reject');
      assert.equal(named('dead_letter jobs.dlq')[0]?.attributes['messaging.ferry.dlq.reason'], 'cannot parse');
      const [deadLetter] = named('dead_letter jobs.dlq');
      assert.equal(deadLetter?.parentSpanContext?.spanId, named('send jobs')[0]?.spanContext().spanId);
      const ms = ([seconds, nanos]: [number, number]): number => seconds * 1000 + nanos / 1e6;
      assert.ok(ms(span!.endTime) >= ms(deadLetter!.endTime), 'the delivery ends after the dead letter is stored');
    });
  } finally {
    unregisterSdk();
  }
});

test('tracing - publishUdp makes a producer span whose context the datagram carries', async () => {
  registerSdk(true);
  await using dir = await tempDir();
  const broker = await Broker.open({ dir: dir.path });
  const listener = await broker.listen({ port: 0, host: '127.0.0.1' });
  const udp = new UdpServer(broker, { topics: ['metrics'], sourceMessagesPerSecond: 1000, sourceBurstMessages: 0, datagramBytesMax: 65_507, receiveBufferBytes: 65_536, limits: ADMISSION_CEILINGS, clock: new SystemClock(), logger: silentLogger });
  const { port } = await udp.listen(0, '127.0.0.1');
  const client = await connect({ host: '127.0.0.1', port: listener.port, reconnect: false, udpPort: port });
  try {
    await client.createTopic('metrics');
    assert.equal(client.publishUdp('metrics', 'cpu=0.5'), true);
    const stream = await client.subscribe('metrics', { from: 'earliest' });
    const seen: string[] = [];
    consume(stream, async (message) => void seen.push(message.headers['traceparent'] ?? ''));
    await eventually(() => assert.equal(seen.length, 1));
    await stream.close();
    const [send] = named('send metrics');
    assert.equal(send!.attributes['network.transport'], 'udp');
    assert.deepEqual(seen, [`00-${send!.spanContext().traceId}-${send!.spanContext().spanId}-01`]);
  } finally {
    await client.close();
    await udp.close();
    await broker.close();
    unregisterSdk();
  }
});

test('tracing - with the API but no SDK nothing is made and a traceparent passes unchanged', async () => {
  const given = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  await withBrokerAndClient(async (client) => {
    assert.notEqual(client.tracing, null, 'the API is installed: loaded once');
    await client.createTopic('plain');
    await client.publish('plain', 'x', { headers: { traceparent: given } });
    const stream = await client.subscribe('plain', { from: 'earliest' });
    const seen: Array<[string | undefined, unknown]> = [];
    consume(stream, async (message) => void seen.push([message.headers['traceparent'], message.span]));
    await eventually(() => assert.deepEqual(seen, [[given, undefined]]));
    await stream.close();
  });
  assert.equal(exporter.getFinishedSpans().length, 0);
});

test('tracing - without a registered propagator the context travels as a W3C traceparent, continuing the one given', async () => {
  registerSdk(false);
  try {
    await withBrokerAndClient(async (client) => {
      await client.createTopic('bare');
      const given = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
      await client.publish('bare', 'x', { headers: { traceparent: given } });
      const stream = await client.subscribe('bare', { from: 'earliest' });
      const seen: string[] = [];
      consume(stream, async (message) => void seen.push(message.headers['traceparent'] ?? ''));
      await eventually(() => assert.equal(seen.length, 1));
      await stream.close();
      const [send] = named('send bare');
      assert.equal(send!.spanContext().traceId, '4bf92f3577b34da6a3ce929d0e0e4736', 'the application\'s traceparent is the parent');
      assert.equal(send!.parentSpanContext?.spanId, '00f067aa0ba902b7');
      assert.deepEqual(seen, [`00-4bf92f3577b34da6a3ce929d0e0e4736-${send!.spanContext().spanId}-01`]);
      const [process] = named('process bare');
      assert.equal(process!.parentSpanContext?.spanId, send!.spanContext().spanId);
    });
  } finally {
    unregisterSdk();
  }
});

test('tracing - without @opentelemetry/api nothing is loaded, and tracing: false never loads it', async () => {
  assert.equal(await loadOtelApi(() => Promise.reject(new Error("Cannot find package '@opentelemetry/api'"))), null);
  await using dir = await tempDir();
  const broker = await Broker.open({ dir: dir.path, tracing: false });
  const listener = await broker.listen({ port: 0, host: '127.0.0.1' });
  const client = await connect({ host: '127.0.0.1', port: listener.port, reconnect: false, tracing: false });
  try {
    assert.equal(client.tracing, null);
  } finally {
    await client.close();
    await broker.close();
  }
});
