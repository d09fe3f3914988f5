/**
 * The REST endpoints and event streams under authentication (issue 24): the same logins (Bearer
 * token, Basic), permissions and publish quota as the TCP port and gRPC, through the security
 * guard; refusals are 401 (with WWW-Authenticate), 403 and 429 (with Retry-After).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basic, startSecure, usersFile, type SecureBroker } from '../../security/harness.js';
import { openEvents } from './sse-reader.js';

const USERS = {
  alice: { token: 'alice-token', password: 'alice-password', allow: ['publish:orders.*', 'consume:orders.*:g1'] },
  bob: { token: 'bob-token', allow: ['publish:other'] },
};

async function withSecure(fn: (secure: SecureBroker, base: string) => Promise<void>, quota?: { messagesPerSecond: number; burstMessages: number }): Promise<void> {
  const secure = await startSecure({ users: await usersFile(USERS), http: true, ...(quota === undefined ? {} : { quota }) });
  try {
    await secure.broker.createTopic('orders.eu', { partitions: 1 });
    await secure.broker.createTopic('secret', { partitions: 1 });
    // A new group's dead-letter topic is created by an admin (alice may not create topics).
    await secure.broker.createTopic('orders.eu.dlq', { partitions: 1 });
    await fn(secure, `http://127.0.0.1:${secure.httpPort}`);
  } finally {
    await secure.close();
  }
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

async function publish(base: string, topic: string, headers: Record<string, string>): Promise<Response> {
  return fetch(`${base}/v1/topics/${topic}/messages`, { method: 'POST', body: 'x', headers });
}

test('rest security - no or bad credentials are 401 with WWW-Authenticate; a token or a password lets in', async () => {
  await withSecure(async (secure, base) => {
    const anonymous = await publish(base, 'orders.eu', {});
    assert.equal(anonymous.status, 401);
    assert.equal((await anonymous.json()).error.code, 'AUTH_REQUIRED');
    assert.match(anonymous.headers.get('www-authenticate')!, /Bearer/);
    const wrong = await publish(base, 'orders.eu', bearer('not-a-token'));
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();
    const events = await fetch(`${base}/v1/topics/orders.eu/events?group=g1`);
    assert.equal(events.status, 401);
    await events.body?.cancel();
    assert.equal((await publish(base, 'orders.eu', bearer('alice-token'))).status, 200);
    assert.equal((await publish(base, 'orders.eu', { authorization: basic('alice', 'alice-password') })).status, 200);
    assert.equal(secure.broker.describeTopic('orders.eu').partitions[0]!.nextOffset, 2);
  });
});

test('rest security - permissions: publish, consume and acks are checked per topic and group (403)', async () => {
  await withSecure(async (secure, base) => {
    const forbidden = await publish(base, 'secret', bearer('alice-token'));
    assert.equal(forbidden.status, 403);
    assert.equal((await forbidden.json()).error.code, 'FORBIDDEN');
    const batch = await fetch(`${base}/v1/topics/secret/messages:batch`, { method: 'POST', body: 'a\nb\n', headers: bearer('alice-token') });
    assert.equal(batch.status, 403);
    await batch.body?.cancel();
    assert.equal(secure.broker.describeTopic('secret').partitions[0]!.nextOffset, 0);
    const otherGroup = await fetch(`${base}/v1/topics/orders.eu/events?group=g2`, { headers: bearer('alice-token') });
    assert.equal(otherGroup.status, 403);
    await otherGroup.body?.cancel();
    await secure.broker.publish('orders.eu', [{ value: Buffer.from('for g1') }]);
    const { response, reader } = await openEvents(`${base}/v1/topics/orders.eu/events?group=g1&from=earliest`, bearer('alice-token'));
    assert.equal(response.status, 200, response.status === 200 ? '' : await response.text());
    const [event] = await reader.take(1);
    assert.equal(event!.data, 'for g1');
    const bobAcks = await fetch(`${base}/v1/topics/orders.eu/groups/g1/acks`, { method: 'POST', body: JSON.stringify([event!.lastEventId]), headers: { ...bearer('bob-token'), 'content-type': 'application/json' } });
    assert.equal(bobAcks.status, 403);
    await bobAcks.body?.cancel();
    const aliceAcks = await fetch(`${base}/v1/topics/orders.eu/groups/g1/acks`, { method: 'POST', body: JSON.stringify({ ids: [event!.lastEventId] }), headers: { ...bearer('alice-token'), 'content-type': 'application/json' } });
    assert.deepEqual(await aliceAcks.json(), { acked: 1, unknown: [] });
    await reader.cancel();
    assert.ok(secure.rejections.of('FORBIDDEN', 'http') > 0);
  });
});

test('rest security - the publish quota refuses with 429 and Retry-After', async () => {
  await withSecure(
    async (_secure, base) => {
      const statuses: number[] = [];
      let retryAfter: string | null = null;
      for (let i = 0; i < 4; i++) {
        const answer = await publish(base, 'orders.eu', bearer('alice-token'));
        statuses.push(answer.status);
        if (answer.status === 429) retryAfter = answer.headers.get('retry-after');
        await answer.body?.cancel();
      }
      assert.deepEqual(statuses.slice(0, 2), [200, 200]);
      assert.equal(statuses.at(-1), 429);
      assert.ok(Number(retryAfter) >= 1);
    },
    { messagesPerSecond: 0.01, burstMessages: 2 },
  );
});
