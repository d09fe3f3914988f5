/**
 * What a user may see (issue 22, item 9): /metrics answered anyone and named every topic and group;
 * LIST_TOPICS and DESCRIBE_TOPIC showed bob the groups of a topic he may not consume; /api/overview
 * gave any user the pid, the data directory and broker-wide figures. Now /metrics needs a login
 * with the metrics grant (`ferry users add NAME --metrics`, Basic or Bearer as Prometheus'
 * `authorization` sends it) or admin on every topic; topics list only the groups the caller may
 * consume (all for an admin of the topic); the overview keeps the broker's own figures for admins.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type FerryClient } from '../../src/client/index.js';
import { RecordingSink } from '../broker/sim-broker.js';
import { basic, startSecure, usersFile } from './harness.js';

const PASSWORD = 'visibility-password';
const SCRAPER_TOKEN = 'fry_scraper-token-for-the-test';
const USERS = {
  bob: { password: PASSWORD, allow: ['publish:billing', 'consume:billing:b-*'] },
  scraper: { password: PASSWORD, token: SCRAPER_TOKEN, allow: ['metrics:*'] },
  ops: { password: PASSWORD, allow: ['admin:*', 'publish:*', 'consume:*'] },
};

test('visibility - /metrics needs a login with the metrics grant (or admin on *): 401 anonymous, 403 for bob, 200 for the scraper and ops', async () => {
  const running = await startSecure({ users: await usersFile(USERS), http: true });
  try {
    await running.broker.createTopic('secret.payroll');
    const url = `http://127.0.0.1:${running.httpPort}/metrics`;
    const anonymous = await fetch(url);
    assert.equal(anonymous.status, 401);
    assert.doesNotMatch(await anonymous.text(), /secret\.payroll/);
    assert.equal((await fetch(url, { headers: { authorization: basic('bob', PASSWORD) } })).status, 403);
    for (const authorization of [basic('scraper', PASSWORD), `Bearer ${SCRAPER_TOKEN}`, basic('ops', PASSWORD)]) {
      const response = await fetch(url, { headers: { authorization } });
      assert.equal(response.status, 200, authorization.split(' ')[0]);
      assert.match(await response.text(), /topic="secret\.payroll"/);
    }
    // The metrics grant is for /metrics only: it neither lists topics nor opens the API's broker-wide views.
    const topics = (await (await fetch(`http://127.0.0.1:${running.httpPort}/api/topics`, { headers: { authorization: basic('scraper', PASSWORD) } })).json()) as unknown[];
    assert.deepEqual(topics, []);
  } finally {
    await running.close();
  }
});

test('visibility - LIST_TOPICS and DESCRIBE_TOPIC show bob only the groups he may consume; an admin sees them all', async () => {
  const running = await startSecure({ users: await usersFile(USERS) });
  const clients: FerryClient[] = [];
  try {
    await running.broker.createTopic('billing');
    for (const group of ['b-1', 'finance-internal']) await (await running.broker.subscribe('billing', { group }, new RecordingSink())).close();
    const bob = await connect({ port: running.port, user: 'bob', password: PASSWORD, reconnect: false });
    const ops = await connect({ port: running.port, user: 'ops', password: PASSWORD, reconnect: false });
    clients.push(bob, ops);
    assert.deepEqual((await bob.listTopics()).map((topic) => [topic.name, topic.groups]), [['billing', ['b-1']]]);
    assert.deepEqual((await bob.describeTopic('billing')).groups, ['b-1']);
    assert.deepEqual((await ops.describeTopic('billing')).groups.sort(), ['b-1', 'finance-internal']);
  } finally {
    for (const client of clients) await client.close();
    await running.close();
  }
});

test('visibility - /api/overview gives a non-admin its own topics\' figures, not the pid, data directory, connections or process', async () => {
  const running = await startSecure({ users: await usersFile(USERS), http: true });
  try {
    await running.broker.createTopic('billing');
    await running.broker.createTopic('secret.payroll');
    await running.broker.publish('secret.payroll', [{ value: Buffer.from('salary') }, { value: Buffer.from('bonus') }]);
    await running.broker.publish('billing', [{ value: Buffer.from('invoice') }]);
    const overview = async (user: string) =>
      (await (await fetch(`http://127.0.0.1:${running.httpPort}/api/overview`, { headers: { authorization: basic(user, PASSWORD) } })).json()) as {
        info: { pid: number | null; dir: string | null; version: string };
        totals: { topics: number } | null;
        server: unknown;
        process: unknown;
      };
    const bob = await overview('bob');
    assert.equal(bob.info.pid, null);
    assert.equal(bob.info.dir, null);
    assert.equal(typeof bob.info.version, 'string');
    assert.equal(bob.server, null);
    assert.equal(bob.process, null);
    assert.equal(bob.totals?.topics, 1, 'only billing counts');
    const ops = await overview('ops');
    assert.equal(ops.info.pid, process.pid);
    assert.notEqual(ops.process, null);
    assert.equal(ops.totals?.topics, 2);
  } finally {
    await running.close();
  }
});
