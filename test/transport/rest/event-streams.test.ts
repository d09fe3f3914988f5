/**
 * Server-Sent Events on the HTTP port (issue 24, item 3): streams and queue groups as
 * `text/event-stream`, read as EventSource reads them (sse-reader.ts) and from curl; credit from
 * `prefetch`, acks over POST, `autoAck`, and resuming with `Last-Event-ID` after a reconnect.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startAdmin, type AdminFixture } from '../../admin/harness.js';
import { eventually } from '../../helpers.js';
import { openEvents } from './sse-reader.js';

async function withAdmin(fn: (fixture: AdminFixture) => Promise<void>, partitions = 1): Promise<void> {
  const fixture = await startAdmin();
  try {
    await fixture.broker.createTopic('feed', { partitions, durability: 'always' });
    await fn(fixture);
  } finally {
    await fixture.close();
  }
}

async function publish(fixture: AdminFixture, values: Array<string | Buffer>, partition?: number): Promise<void> {
  await fixture.broker.publish('feed', values.map((value) => ({ value: Buffer.from(value), ...(partition === undefined ? {} : { partition }) })));
}

test('sse - a stream sends each message as an event with id partition:offset, and resumes after Last-Event-ID', async () => {
  await withAdmin(async (fixture) => {
    await publish(fixture, ['one', 'two\nlines', 'three']);
    const first = await openEvents(`${fixture.base}/v1/topics/feed/events?from=earliest`);
    assert.equal(first.response.status, 200);
    assert.match(first.response.headers.get('content-type')!, /^text\/event-stream/);
    const events = await first.reader.take(2);
    assert.deepEqual(events.map((event) => [event.lastEventId, event.data]), [['0:0', 'one'], ['0:1', 'two\nlines']]);
    assert.equal(first.reader.retryMs, 1000);
    // The connection drops after the second event; EventSource reconnects with the last id it saw.
    await first.reader.cancel();
    const again = await openEvents(`${fixture.base}/v1/topics/feed/events?from=earliest`, { 'last-event-id': events[1]!.lastEventId });
    await publish(fixture, ['four']);
    const resumed = await again.reader.take(2);
    assert.deepEqual(resumed.map((event) => [event.lastEventId, event.data]), [['0:2', 'three'], ['0:3', 'four']]);
    await again.reader.cancel();
  });
});

test('sse - values that are not UTF-8 text arrive whole as base64 events; encoding=base64 sends every value so', async () => {
  await withAdmin(async (fixture) => {
    const binary = Buffer.from([0xff, 0x00, 0x0d, 0x0a]);
    await publish(fixture, [binary, 'a\rb', 'text']);
    const { reader } = await openEvents(`${fixture.base}/v1/topics/feed/events?from=earliest`);
    const events = await reader.take(3);
    assert.deepEqual(events.map((event) => event.type), ['base64', 'base64', 'message']);
    assert.deepEqual(Buffer.from(events[0]!.data, 'base64'), binary);
    assert.equal(Buffer.from(events[1]!.data, 'base64').toString(), 'a\rb');
    await reader.cancel();
    const all = await openEvents(`${fixture.base}/v1/topics/feed/events?from=earliest&encoding=base64`);
    const encoded = await all.reader.take(3);
    assert.equal(Buffer.from(encoded[2]!.data, 'base64').toString(), 'text');
    assert.equal(encoded[2]!.type, 'message');
    await all.reader.cancel();
  });
});

test('sse - a group gets prefetch messages, more after each POSTed ack, and an ack is durable', async () => {
  await withAdmin(async (fixture) => {
    await publish(fixture, ['m0', 'm1', 'm2', 'm3', 'm4']);
    const { reader } = await openEvents(`${fixture.base}/v1/topics/feed/events?group=workers&prefetch=2`);
    const firstTwo = await reader.take(2);
    assert.deepEqual(firstTwo.map((event) => event.data), ['m0', 'm1']);
    assert.equal(await reader.quietFor(200), true, 'no more than prefetch messages before an ack');
    const acked = await fixture.post('/v1/topics/feed/groups/workers/acks', firstTwo.map((event) => event.lastEventId));
    assert.equal(acked.status, 200);
    assert.deepEqual(acked.body, { acked: 2, unknown: [] });
    const next = await reader.take(2);
    assert.deepEqual(next.map((event) => event.data), ['m2', 'm3']);
    const text = await fetch(`${fixture.base}/v1/topics/feed/groups/workers/acks`, { method: 'POST', body: `${next[0]!.lastEventId}, 0:99`, headers: { 'content-type': 'text/plain' } });
    assert.deepEqual(await text.json(), { acked: 1, unknown: ['0:99'] });
    // m0..m2 are settled: the group's floor is past them (m3 and m4 are in flight or waiting).
    assert.equal(fixture.broker.describeGroup('feed', 'workers').partitions[0]!.ackFloor, 3);
    // Closing the stream gives its unacked message (m3) back to the group: a new stream gets it first.
    await reader.cancel();
    const later = await openEvents(`${fixture.base}/v1/topics/feed/events?group=workers&prefetch=5`);
    const redelivered = await later.reader.take(2);
    assert.deepEqual(redelivered.map((event) => event.data).sort(), ['m3', 'm4']);
    await later.reader.cancel();
  });
});

test('sse - autoAck=true acks what was written and keeps the stream flowing past prefetch', async () => {
  await withAdmin(async (fixture) => {
    const values = Array.from({ length: 300 }, (_, i) => `v${i}`);
    await publish(fixture, values);
    const { reader } = await openEvents(`${fixture.base}/v1/topics/feed/events?group=auto&prefetch=16&autoAck=true`);
    const events = await reader.take(300);
    assert.deepEqual(events.map((event) => event.data), values);
    await eventually(() => fixture.broker.describeGroup('feed', 'auto').pending === 0);
    await reader.cancel();
  });
});

test('sse - errors before the stream starts are JSON with their status', async () => {
  await withAdmin(async (fixture) => {
    const unknown = await fetch(`${fixture.base}/v1/topics/nope/events`);
    assert.equal(unknown.status, 404);
    assert.equal((await unknown.json()).error.code, 'UNKNOWN_TOPIC');
    for (const query of ['prefetch=0', 'prefetch=100000', 'from=someday', 'autoAck=maybe', 'encoding=hex', 'group=']) {
      const bad = await fetch(`${fixture.base}/v1/topics/feed/events?${query}`);
      assert.equal(bad.status, 400, query);
      await bad.body?.cancel();
    }
    const badId = await fetch(`${fixture.base}/v1/topics/feed/events`, { headers: { 'last-event-id': 'garbage' } });
    assert.equal(badId.status, 400);
    const noGroup = await fixture.post('/v1/topics/feed/groups/ghost/acks', ['0:0']);
    assert.equal(noGroup.status, 404);
    const post = await fetch(`${fixture.base}/v1/topics/feed/events`, { method: 'POST' });
    assert.equal(post.status, 405);
  });
});

test('sse - from curl -N: events arrive as they are published', async () => {
  await withAdmin(async (fixture) => {
    const child = spawn('curl', ['--silent', '--no-buffer', '--max-time', '10', `${fixture.base}/v1/topics/feed/events?from=earliest`]);
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    try {
      await publish(fixture, ['hello from ferry']);
      await eventually(() => out.includes('data: hello from ferry'));
      assert.match(out, /id: 0:0\ndata: hello from ferry\n\n/);
    } finally {
      child.kill();
    }
  });
});

test('sse - a Last-Event-ID naming several partitions resumes each after its own offset', async () => {
  await withAdmin(async (fixture) => {
    await publish(fixture, ['a0', 'a1'], 0);
    await publish(fixture, ['b0', 'b1', 'b2'], 1);
    const { reader } = await openEvents(`${fixture.base}/v1/topics/feed/events?from=earliest`, { 'last-event-id': '0:0,1:1' });
    const events = await reader.take(2);
    assert.deepEqual(events.map((event) => `${event.lastEventId}=${event.data}`).sort(), ['0:1=a1', '1:2=b2']);
    assert.equal(await reader.quietFor(200), true);
    await reader.cancel();
  }, 2);
});
