/**
 * The admin HTTP API, endpoint by endpoint, over a real broker: what each returns, and each error
 * as JSON with its Ferry code and HTTP status.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Delivery } from '../../src/broker/types.js';
import { connect } from '../../src/client/index.js';
import { REQUEST_BODY_BYTES_MAX } from '../../src/admin/http.js';
import { eventually } from '../helpers.js';
import { startAdmin, type AdminFixture } from './harness.js';

async function withAdmin(run: (fixture: AdminFixture) => Promise<void>, options: Parameters<typeof startAdmin>[0] = {}): Promise<void> {
  const fixture = await startAdmin(options);
  try {
    await run(fixture);
  } finally {
    await fixture.close();
  }
}

function assertError(response: { status: number; body: any }, status: number, code: string): void {
  assert.equal(response.status, status, JSON.stringify(response.body));
  assert.equal(response.body.error.code, code);
  assert.equal(typeof response.body.error.message, 'string');
}

test('admin api - liveness always, readiness and the API only once the broker is attached, not while draining', async () => {
  await withAdmin(
    async ({ admin, get, observed, broker }) => {
      assert.deepEqual((await get('/healthz')).body, { status: 'ok' });
      assert.deepEqual((await get('/readyz')).body, { status: 'recovering', reason: 'the broker is recovering its logs' });
      assert.equal((await get('/readyz')).status, 503);
      assertError(await get('/api/topics'), 503, 'BROKER_BUSY');
      admin.attach({ broker: observed, rawBroker: broker });
      assert.deepEqual(await get('/readyz'), { status: 200, body: { status: 'ready' }, headers: (await get('/readyz')).headers });
      assert.equal((await get('/api/topics')).status, 200);
      admin.drain();
      assert.equal((await get('/readyz')).status, 503);
      assert.equal((await get('/readyz')).body.status, 'shutting down');
      assert.equal((await get('/healthz')).status, 200);
    },
    { attach: false },
  );
});

test('admin api - info names the version, data dir and listeners', async () => {
  await withAdmin(
    async ({ get, dir, tcpPort, admin }) => {
      const { body } = await get('/api/info');
      assert.equal(body.name, 'ferry');
      assert.match(body.version, /^\d+\.\d+\.\d+/);
      assert.equal(body.dir, dir.path);
      assert.deepEqual(body.tcp, { host: '127.0.0.1', port: tcpPort });
      assert.equal(body.http.port, admin.port);
      assert.equal(body.ready, true);
    },
    { tcp: true },
  );
});

test('admin api - cluster: a single broker is the only one and leads every topic; replicas above 1 is NOT_ENOUGH_REPLICAS', async () => {
  await withAdmin(
    async ({ get, post, tcpPort }) => {
      assert.equal((await post('/api/topics', { name: 'alone', replicas: 1, minInSync: 1 })).status, 201);
      assertError(await post('/api/topics', { name: 'wanted-three', replicas: 3 }), 503, 'NOT_ENOUGH_REPLICAS');
      assertError(await post('/api/topics', { name: 'bad', replicas: 0 }), 400, 'INVALID_ARGUMENT');
      assert.deepEqual((await get('/api/cluster')).body, {
        cluster: false,
        nodeId: '',
        etcdUp: null,
        brokers: [{ nodeId: '', address: `127.0.0.1:${tcpPort}`, alive: true, topicsLed: 1, replicaLag: 0 }],
        topics: [],
      });
    },
    { tcp: true },
  );
});

test('admin api - topics: create, list, describe with partitions and retention, delete; errors', async () => {
  await withAdmin(async ({ get, post, del }) => {
    const created = await post('/api/topics', { name: 'orders', partitions: 2, durability: 'interval', retention: { ageMs: 3_600_000 } });
    assert.equal(created.status, 201);
    assert.equal(created.body.config.partitions, 2);
    assertError(await post('/api/topics', { name: 'orders' }), 409, 'TOPIC_EXISTS');
    assertError(await post('/api/topics', { name: 'bad/name' }), 400, 'INVALID_ARGUMENT');
    assertError(await post('/api/topics', { name: 'x', partitons: 2 }), 400, 'INVALID_ARGUMENT');
    assertError(await post('/api/topics', { partitions: 2 }), 400, 'INVALID_ARGUMENT');
    assertError(await post('/api/topics', { name: 'y', partitions: 0 }), 400, 'INVALID_ARGUMENT');

    await post('/api/topics/orders/messages', { value: 'hello', partition: 1 });
    const listed = (await get('/api/topics')).body;
    assert.deepEqual(
      listed.map((topic: any) => [topic.name, topic.partitions, topic.durability, topic.messages]),
      [['orders', 2, 'interval', 1]],
    );
    const described = (await get('/api/topics/orders')).body;
    assert.deepEqual(described.config.retention, { ageMs: 3_600_000 });
    assert.equal(described.partitions.length, 2);
    assert.deepEqual(
      described.partitions.map((p: any) => [p.partition, p.startOffset, p.nextOffset]),
      [
        [0, 0, 0],
        [1, 0, 1],
      ],
    );
    assert.ok(described.partitions[1].bytes > 0);
    assert.ok(described.partitions[1].segments >= 1);
    assert.equal(described.messages, 1);

    const missing = await get('/api/topics/nope');
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.body, { error: { code: 'UNKNOWN_TOPIC', message: 'unknown topic nope' } });
    assert.deepEqual((await del('/api/topics/orders')).body, { deleted: 'orders' });
    assertError(await get('/api/topics/orders'), 404, 'UNKNOWN_TOPIC');
    assertError(await del('/api/topics/orders'), 404, 'UNKNOWN_TOPIC');
  });
});

test('admin api - purge empties a topic, keeps its settings and reports the groups removed', async () => {
  await withAdmin(async ({ get, post, observed }) => {
    await post('/api/topics', { name: 'jobs', partitions: 1, durability: 'never' });
    for (let i = 0; i < 3; i++) await post('/api/topics/jobs/messages', { value: `job ${i}` });
    const subscription = await observed.subscribe('jobs', { group: 'workers', from: { kind: 'earliest' } }, { deliver: () => undefined, writable: () => true });
    const purged = await post('/api/topics/jobs/purge');
    assert.deepEqual(purged.body, { purged: 'jobs', removedGroups: ['workers'] });
    const described = (await get('/api/topics/jobs')).body;
    assert.equal(described.messages, 0);
    assert.equal(described.config.durability, 'never');
    assert.deepEqual(described.groups, []);
    await subscription.close();
    assertError(await post('/api/topics/nope/purge'), 404, 'UNKNOWN_TOPIC');
  });
});

test('admin api - publish a test message: text, base64, key, headers as object or list, partition; errors', async () => {
  await withAdmin(async ({ get, post }) => {
    await post('/api/topics', { name: 't', partitions: 2 });
    const text = await post('/api/topics/t/messages', { value: 'hi', key: 'k1', headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } });
    assert.equal(text.status, 201);
    assert.equal(text.body.topic, 't');
    assert.equal(text.body.durability, 'synced');
    const otherPartition = text.body.partition === 0 ? 1 : 0;
    const binary = await post('/api/topics/t/messages', { value: Buffer.from([0, 255, 1]).toString('base64'), encoding: 'base64', headers: [['a', '1']], partition: otherPartition });
    assert.deepEqual([binary.body.partition, binary.body.offset], [otherPartition, 0]);
    const page0 = (await get(`/api/topics/t/messages?partition=${text.body.partition}`)).body;
    assert.equal(page0.messages[0].value.data, 'hi');
    assert.deepEqual(page0.messages[0].key, { encoding: 'text', data: 'k1' });
    assert.deepEqual(page0.messages[0].headers, [['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01']]);
    const page1 = (await get(`/api/topics/t/messages?partition=${otherPartition}`)).body;
    assert.deepEqual(page1.messages.at(-1).value, { encoding: 'base64', data: Buffer.from([0, 255, 1]).toString('base64') });
    assert.deepEqual(page1.messages.at(-1).headers, [['a', '1']]);

    assertError(await post('/api/topics/t/messages', {}), 400, 'INVALID_ARGUMENT');
    assertError(await post('/api/topics/t/messages', { value: 'x', encoding: 'hex' }), 400, 'INVALID_ARGUMENT');
    assertError(await post('/api/topics/t/messages', { value: 'x', headers: { a: 1 } }), 400, 'INVALID_ARGUMENT');
    assertError(await post('/api/topics/t/messages', { value: 'x', partition: 7 }), 400, 'INVALID_ARGUMENT');
    assertError(await post('/api/topics/nope/messages', { value: 'x' }), 404, 'UNKNOWN_TOPIC');
  });
});

test('admin api - browse messages: newest page, from offset, from time, by key, paging; errors', async () => {
  await withAdmin(async ({ get, post, broker }) => {
    await post('/api/topics', { name: 'log', partitions: 2 });
    const times: number[] = [];
    for (let i = 0; i < 30; i++) {
      await broker.publish('log', [{ partition: 0, key: Buffer.from(`k${i % 3}`), value: Buffer.from(`v${i}`) }]);
      times.push(Date.now());
    }
    await broker.publish('log', [{ partition: 1, value: Buffer.from('other partition') }]);

    const newest = (await get('/api/topics/log/messages?limit=10')).body;
    assert.deepEqual(newest.messages.map((m: any) => m.offset), [20, 21, 22, 23, 24, 25, 26, 27, 28, 29]);
    assert.deepEqual([newest.startOffset, newest.endOffset, newest.nextOffset], [0, 30, 30]);
    const fromOffset = (await get('/api/topics/log/messages?offset=5&limit=3')).body;
    assert.deepEqual(fromOffset.messages.map((m: any) => m.value.data), ['v5', 'v6', 'v7']);
    assert.equal(fromOffset.nextOffset, 8);
    const next = (await get(`/api/topics/log/messages?offset=${fromOffset.nextOffset}&limit=2`)).body;
    assert.deepEqual(next.messages.map((m: any) => m.offset), [8, 9]);
    const pastEnd = (await get('/api/topics/log/messages?offset=500')).body;
    assert.deepEqual(pastEnd.messages, []);

    // From the stored timestamp of offset 25: records before it may share its millisecond.
    const at25 = newest.messages.find((m: any) => m.offset === 25).timestampMs as number;
    assert.ok(at25 <= times[25]!, 'a record is stamped before its publish returns');
    const byTime = (await get(`/api/topics/log/messages?time=${new Date(at25).toISOString()}&limit=100`)).body;
    const byTimeOffsets = byTime.messages.map((m: any) => m.offset);
    assert.ok(byTimeOffsets[0] <= 25 && byTimeOffsets.includes(25), JSON.stringify(byTimeOffsets));
    assert.ok(byTime.messages.every((m: any) => m.timestampMs >= at25), 'messages from that time on');
    assert.equal(byTime.messages.at(-1).offset, 29);
    const allByTime = (await get('/api/topics/log/messages?time=0&limit=100')).body;
    assert.equal(allByTime.messages.length, 30);

    const byKey = (await get('/api/topics/log/messages?key=k1&limit=100')).body;
    assert.deepEqual(byKey.messages.map((m: any) => m.offset), [1, 4, 7, 10, 13, 16, 19, 22, 25, 28]);
    const other = (await get('/api/topics/log/messages?partition=1')).body;
    assert.deepEqual(other.messages.map((m: any) => m.value.data), ['other partition']);

    assertError(await get('/api/topics/log/messages?partition=2'), 400, 'INVALID_ARGUMENT');
    assertError(await get('/api/topics/log/messages?limit=0'), 400, 'INVALID_ARGUMENT');
    assertError(await get('/api/topics/log/messages?limit=100000'), 400, 'INVALID_ARGUMENT');
    assertError(await get('/api/topics/log/messages?offset=-1'), 400, 'INVALID_ARGUMENT');
    assertError(await get('/api/topics/log/messages?time=yesterday'), 400, 'INVALID_ARGUMENT');
    assertError(await get('/api/topics/nope/messages'), 404, 'UNKNOWN_TOPIC');
  });
});

test('admin api - groups: list, describe with lag and in flight, reset; errors', async () => {
  await withAdmin(async ({ get, post, broker, observed }) => {
    await post('/api/topics', { name: 'q' });
    for (let i = 0; i < 4; i++) await post('/api/topics/q/messages', { value: `m${i}` });
    const deliveries: Delivery[] = [];
    const subscription = await observed.subscribe('q', { group: 'g', from: { kind: 'earliest' }, credit: 2 }, { deliver: (d) => void deliveries.push(d), writable: () => true });
    await eventually(() => deliveries.length === 2);
    await subscription.ack(0, deliveries[0]!.offset);

    const listed = (await get('/api/topics/q/groups')).body;
    assert.deepEqual(listed.map((g: any) => g.name), ['g']);
    const group = (await get('/api/topics/q/groups/g')).body;
    assert.deepEqual([group.pending, group.inFlight, group.subscribers, group.partitions[0].ackFloor], [3, 1, 1, 1]);
    assert.ok(group.oldestUnackedAgeMs >= 0);
    assert.equal(group.config.deadLetterTopic, 'q.dlq');
    const all = (await get('/api/groups')).body;
    assert.deepEqual(all.map((g: any) => [g.topic, g.name, g.pending]), [['q', 'g', 3]]);

    await subscription.close();
    const reset = await post('/api/topics/q/groups/g/reset', { to: 'latest' });
    assert.equal(reset.status, 200);
    assert.equal(reset.body.pending, 0);
    assert.equal((await post('/api/topics/q/groups/g/reset', { to: { offset: 1 } })).body.pending, 3);
    assert.equal((await post('/api/topics/q/groups/g/reset', { to: 'earliest' })).body.pending, 4);
    assert.equal((await post('/api/topics/q/groups/g/reset', { to: { timestampMs: Date.now() + 60_000 } })).body.pending, 0);
    assert.equal((await post('/api/topics/q/groups/g/reset', { to: { time: '1970-01-01T00:00:00Z' } })).body.pending, 4);
    assert.equal(broker.describeGroup('q', 'g').pending, 4);

    assertError(await post('/api/topics/q/groups/g/reset', { to: 'middle' }), 400, 'INVALID_ARGUMENT');
    assertError(await get('/api/topics/q/groups/nope'), 404, 'UNKNOWN_GROUP');
    assertError(await post('/api/topics/q/groups/nope/reset', { to: 'latest' }), 404, 'UNKNOWN_GROUP');
    assertError(await get('/api/topics/nope/groups'), 404, 'UNKNOWN_TOPIC');
  });
});

test('admin api - dead letters: listed with their sources, redriven back to their topic', async () => {
  await withAdmin(async ({ get, post, observed, broker }) => {
    await post('/api/topics', { name: 'pay' });
    for (let i = 0; i < 3; i++) await post('/api/topics/pay/messages', { value: `p${i}`, headers: { traceparent: `00-${String(i).padStart(32, '0')}-00f067aa0ba902b7-01` } });
    const deliveries: Delivery[] = [];
    const subscription = await observed.subscribe('pay', { group: 'ledger', from: { kind: 'earliest' } }, { deliver: (d) => void deliveries.push(d), writable: () => true });
    await eventually(() => deliveries.length === 3);
    await subscription.reject!(0, 0, 'broken');
    await subscription.reject!(0, 2, 'broken');
    await subscription.ack(0, 1);
    await eventually(() => broker.describeGroup('pay', 'ledger').deadLetteredTotal === 2);

    const [dlq] = (await get('/api/dead-letters')).body;
    assert.deepEqual([dlq.topic, dlq.messages, dlq.waiting], ['pay.dlq', 2, 2]);
    assert.deepEqual(dlq.sources, [{ topic: 'pay', group: 'ledger', deadLetteredTotal: 2 }]);
    const described = (await get('/api/topics/pay.dlq')).body;
    assert.equal(described.deadLetter, true);

    assert.deepEqual((await post('/api/topics/pay.dlq/redrive', { limit: 1 })).body, { moved: 1 });
    assert.equal((await get('/api/dead-letters')).body[0].waiting, 1);
    assert.deepEqual((await post('/api/topics/pay.dlq/redrive', {})).body, { moved: 1 });
    assert.equal((await get('/api/dead-letters')).body[0].waiting, 0);
    assert.deepEqual((await post('/api/topics/pay.dlq/redrive')).body, { moved: 0 });
    // Redriven messages keep their trace context and come back to the group.
    await eventually(() => deliveries.length === 5);
    assert.deepEqual(
      deliveries.slice(3).map((d) => [d.value.toString(), d.headers.find(([name]) => name === 'traceparent')?.[1]]),
      [
        ['p0', `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`],
        ['p2', `00-${'2'.padStart(32, '0')}-00f067aa0ba902b7-01`],
      ],
    );
    await subscription.close();

    assertError(await post('/api/topics/nope/redrive'), 404, 'UNKNOWN_TOPIC');
    assertError(await post('/api/topics/pay.dlq/redrive', { limit: -1 }), 400, 'INVALID_ARGUMENT');
    assertError(await post('/api/topics/pay.dlq/redrive', { header: 'x' }), 400, 'INVALID_ARGUMENT');
  });
});

test('admin api - connections show client name, address, subscriptions, in flight, bytes and the slow flag', async () => {
  await withAdmin(
    async ({ get, post, tcpPort }) => {
      assert.deepEqual((await get('/api/connections')).body, []);
      await post('/api/topics', { name: 'c' });
      const client = await connect({ host: '127.0.0.1', port: tcpPort, name: 'api-test-client', reconnect: false });
      try {
        await client.publish('c', Buffer.from('x'));
        const subscription = await client.subscribe('c', { group: 'readers', from: 'earliest' });
        const connections = await eventually(async () => {
          const body = (await get('/api/connections')).body;
          assert.equal(body.length, 1);
          assert.equal(body[0].subscriptions.length, 1);
          return body;
        });
        const [connection] = connections;
        assert.equal(connection.clientName, 'api-test-client');
        assert.equal(connection.remoteAddress, '127.0.0.1');
        assert.deepEqual([connection.subscriptions[0].topic, connection.subscriptions[0].group], ['c', 'readers']);
        assert.equal(connection.inFlightRequests, 0);
        assert.ok(connection.bytesIn > 0 && connection.bytesOut > 0);
        assert.equal(connection.slowConsumer, false);
        const overview = (await get('/api/overview')).body;
        assert.equal(overview.server.connections, 1);
        await subscription.close();
      } finally {
        await client.close();
      }
    },
    { tcp: true },
  );
});

test('admin api - overview totals agree with the traffic', async () => {
  await withAdmin(async ({ get, post }) => {
    await post('/api/topics', { name: 'a', partitions: 2 });
    await post('/api/topics', { name: 'b' });
    for (let i = 0; i < 5; i++) await post('/api/topics/a/messages', { value: '12345' });
    await post('/api/topics/b/messages', { value: 'x', key: 'kk' });
    const body = (await get('/api/overview')).body;
    assert.equal(body.ready, true);
    assert.deepEqual(
      [body.totals.topics, body.totals.partitions, body.totals.messages, body.totals.appended, body.totals.groups],
      [2, 3, 6, 6, 0],
    );
    assert.deepEqual([body.traffic.messagesIn, body.traffic.bytesIn], [6, 5 * 5 + 1 + 2]);
    assert.equal(body.server, null);
    assert.ok(body.process.rssBytes > 0);
  });
});

test('admin api - HTTP errors: unknown path, wrong method, missing JSON content type, bad JSON, body too large', async () => {
  await withAdmin(async ({ get, post, base }) => {
    assertError(await get('/api/nothing'), 404, 'NOT_FOUND');
    const wrongMethod = await fetch(`${base}/api/topics/x/groups`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(wrongMethod.status, 405);
    assertError(await get('/api/topics/x/purge'), 405, 'INVALID_ARGUMENT');
    // A form post from another site cannot reach a mutating endpoint.
    const form = await fetch(`${base}/api/topics`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=evil' });
    assert.equal(form.status, 415);
    assertError(await post('/api/topics', '{not json'), 400, 'INVALID_ARGUMENT');
    assertError(await post('/api/topics', '[1,2]'), 400, 'INVALID_ARGUMENT');
    const big = await fetch(`${base}/api/topics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(REQUEST_BODY_BYTES_MAX + 1) });
    assert.equal(big.status, 413);
    assert.equal((await big.json()).error.code, 'BATCH_TOO_LARGE');
  });
});

test('admin api - the dashboard is served at / with its assets and a strict content security policy', async () => {
  await withAdmin(async ({ text }) => {
    const index = await text('/');
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type')!, /text\/html/);
    assert.match(index.text, /<script type="module" src="\/ui\/app.js">/);
    assert.match(index.headers.get('content-security-policy')!, /script-src 'self'/);
    const app = await text('/ui/app.js');
    assert.equal(app.status, 200);
    assert.match(app.headers.get('content-type')!, /javascript/);
    assert.equal((await text('/ui/views/overview.js')).status, 200);
    assert.equal((await text('/ui/style.css')).status, 200);
    assert.equal((await text('/favicon.ico')).status, 200);
    // An encoded `/` is refused before any handler sees it (transport/http/request-path.ts).
    assert.equal((await text('/ui/..%2Fadmin-server.ts')).status, 400);
    assert.equal((await text('/ui/missing.js')).status, 404);
    assert.equal((await text('/ui/%2e%2e/http.ts')).status, 404);
  });
});

test('admin api - GET /api lists every route; an unknown path is NOT_FOUND and points at it', async () => {
  await withAdmin(async ({ admin, get }) => {
    const index = await get('/api');
    assert.equal(index.status, 200);
    assert.deepEqual(
      index.body.routes,
      admin.router.endpoints().map(({ method, pattern }) => ({ method, path: pattern })),
    );
    assert.ok(index.body.routes.some((route: { method: string; path: string }) => route.method === 'GET' && route.path === '/api/topics'));
    assert.match(index.body.docs, /OPERATIONS\.md/);
    for (const path of ['/api/nothing', '/nothing', '/ui/nothing/at/all']) {
      const missing = await get(path);
      assertError(missing, 404, 'NOT_FOUND');
      assert.match(missing.body.error.message, /GET \/api lists the API's routes/, path);
    }
  });
});
