/**
 * Trace context: a W3C `traceparent` (and `tracestate`) given on publish is stored with the message
 * as an ordinary header and handed, unchanged, to every delivery — first delivery, redelivery,
 * stream readers, the dead-letter copy and the redriven message — so consumers can continue the
 * producer's trace. docs/OPERATIONS.md promises this; this test keeps the promise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../../src/client/index.js';
import { eventually } from '../helpers.js';
import { startAdmin } from './harness.js';

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const TRACESTATE = 'congo=t61rcWkgMzE';

test('tracing - traceparent from publish reaches every delivery, the dead letter and the redriven copy', async () => {
  const fixture = await startAdmin({ tcp: true });
  const client = await connect({ host: '127.0.0.1', port: fixture.tcpPort, name: 'tracing-test', reconnect: false });
  try {
    await client.createTopic('traced');
    await client.publish('traced', Buffer.from('work'), { headers: { traceparent: TRACEPARENT, tracestate: TRACESTATE } });

    const seen: Array<{ deliveryCount: number; traceparent: string | undefined; tracestate: string | undefined }> = [];
    const group = await client.subscribe('traced', { group: 'workers', from: 'earliest', deliveriesMax: 2, backoffMs: [0] });
    const stream = await client.subscribe('traced', { from: 'earliest' });
    const streamSeen: string[] = [];
    void (async () => {
      for await (const message of stream) streamSeen.push(message.headers['traceparent'] ?? '');
    })();
    void (async () => {
      for await (const message of group) {
        seen.push({ deliveryCount: message.deliveryCount, traceparent: message.headers['traceparent'], tracestate: message.headers['tracestate'] });
        await message.nack();
      }
    })();
    // Delivered twice (the second a redelivery), then dead-lettered after deliveriesMax.
    await eventually(() => fixture.broker.describeGroup('traced', 'workers').deadLetteredTotal === 1);
    assert.deepEqual(seen, [
      { deliveryCount: 1, traceparent: TRACEPARENT, tracestate: TRACESTATE },
      { deliveryCount: 2, traceparent: TRACEPARENT, tracestate: TRACESTATE },
    ]);
    await eventually(() => streamSeen.length === 1);
    assert.deepEqual(streamSeen, [TRACEPARENT]);

    const dead = (await fixture.get('/api/topics/traced.dlq/messages')).body.messages[0];
    assert.deepEqual(Object.fromEntries(dead.headers)['traceparent'], TRACEPARENT);
    await group.close();
    assert.deepEqual((await fixture.post('/api/topics/traced.dlq/redrive')).body, { moved: 1 });
    const redriven = (await fixture.get('/api/topics/traced/messages?offset=1')).body.messages[0];
    assert.deepEqual(
      redriven.headers.filter(([name]: [string, string]) => !name.startsWith('ferry-')),
      [
        ['traceparent', TRACEPARENT],
        ['tracestate', TRACESTATE],
      ],
    );
    await stream.close();
  } finally {
    await client.close();
    await fixture.close();
  }
});
