/**
 * The permission matrix: every user × every action × every topic, over the TCP protocol, the
 * admin HTTP API and gRPC, compared with a policy table written out by hand below — not computed
 * from the rules — so that the rules engine, the guard and each transport are checked together.
 * An action is "allowed" when the broker answers anything but FORBIDDEN (e.g. TOPIC_EXISTS for an
 * admin creating an existing topic); deny by default means every cell not listed must be FORBIDDEN.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { connect, isFerryError, type FerryClient } from '../../src/client/index.js';
import { CloseConsumerRequest, MessageServiceClient, PublishRequest, PullRequest } from '../grpc/generated/ferry/v1/messages.js';
import { CreateTopicRequest, ListTopicsRequest, TopicServiceClient } from '../grpc/generated/ferry/v1/topics.js';
import { basic, startSecure, usersFile, type SecureBroker } from './harness.js';

const TOPICS = ['orders.eu', 'orders.secret', 'events', 'audit.log', 'audit.private'] as const;
type Topic = (typeof TOPICS)[number];
/** publish; consume as a stream; consume in group billing-1; consume in group other; admin; see (listed). */
const ACTIONS = ['publish', 'stream', 'group:billing-1', 'group:other', 'admin', 'see'] as const;
type ActionName = (typeof ACTIONS)[number];

const PASSWORD = 'matrix-password';

const USERS = {
  root: { password: PASSWORD, roles: ['ops'] },
  producer: { password: PASSWORD, allow: ['publish:orders.*'], deny: ['publish:orders.secret'] },
  billing: { password: PASSWORD, allow: ['consume:orders.*:billing-*', 'publish:events'] },
  reader: { password: PASSWORD, allow: ['consume:events', 'consume:audit.*'], deny: ['consume:audit.private'] },
  auditor: { password: PASSWORD, allow: ['admin:audit.*'] },
  nobody: { password: PASSWORD },
};
const ROLES = { ops: { allow: ['admin:*', 'publish:*', 'consume:*'] } };
type User = keyof typeof USERS;

/** The written policy: what each user may do, action by action; everything else is denied. */
const POLICY: Record<User, Partial<Record<ActionName, readonly Topic[]>>> = {
  root: Object.fromEntries(ACTIONS.map((action) => [action, TOPICS])),
  producer: { publish: ['orders.eu'], see: ['orders.eu'] },
  billing: { publish: ['events'], 'group:billing-1': ['orders.eu', 'orders.secret'], see: ['orders.eu', 'orders.secret', 'events'] },
  reader: {
    stream: ['events', 'audit.log'],
    'group:billing-1': ['events', 'audit.log'],
    'group:other': ['events', 'audit.log'],
    see: ['events', 'audit.log'],
  },
  auditor: { admin: ['audit.log', 'audit.private'], see: ['audit.log', 'audit.private'] },
  nobody: {},
};

function expected(user: User, action: ActionName, topic: Topic): boolean {
  return POLICY[user][action]?.includes(topic) ?? false;
}

/** An outcome: allowed, or FORBIDDEN; anything else is a test failure (the cell did not run). */
type Outcome = 'allowed' | 'forbidden';

interface Transport {
  name: string;
  /** Which actions it offers (the admin API has no queue groups). */
  actions: readonly ActionName[];
  run(user: User, action: ActionName, topic: Topic): Promise<Outcome>;
  close(): Promise<void>;
}

function groupOf(action: ActionName): string | undefined {
  return action.startsWith('group:') ? action.slice('group:'.length) : undefined;
}

// ---- TCP ---------------------------------------------------------------------------------------

async function tcpTransport(running: SecureBroker): Promise<Transport> {
  const clients = new Map<User, FerryClient>();
  for (const user of Object.keys(USERS) as User[]) {
    clients.set(user, await connect({ port: running.port, user, password: PASSWORD, reconnect: false }));
  }
  const outcome = async (work: () => Promise<unknown>): Promise<Outcome> => {
    try {
      await work();
      return 'allowed';
    } catch (error) {
      if (isFerryError(error, 'FORBIDDEN')) return 'forbidden';
      if (isFerryError(error, 'TOPIC_EXISTS')) return 'allowed';
      throw error;
    }
  };
  return {
    name: 'tcp',
    actions: ACTIONS,
    async run(user, action, topic) {
      const client = clients.get(user)!;
      if (action === 'see') return (await client.listTopics()).some((info) => info.name === topic) ? 'allowed' : 'forbidden';
      if (action === 'publish') return outcome(() => client.publish(topic, 'matrix'));
      if (action === 'admin') return outcome(() => client.createTopic(topic));
      const group = groupOf(action);
      return outcome(async () => {
        const subscription = await client.subscribe(topic, group === undefined ? { from: 'latest' } : { group, from: 'latest' });
        await subscription.close();
      });
    },
    async close() {
      for (const client of clients.values()) await client.close();
    },
  };
}

// ---- admin HTTP API ----------------------------------------------------------------------------

function httpTransport(running: SecureBroker): Transport {
  const base = `http://127.0.0.1:${running.httpPort}`;
  const request = async (user: User, method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(base + path, {
      method,
      headers: { authorization: basic(user, PASSWORD), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const outcome = async (response: Response, allowedStatus: number[]): Promise<Outcome> => {
    const text = await response.text();
    if (response.status === 403) return 'forbidden';
    if (allowedStatus.includes(response.status)) return 'allowed';
    throw new Error(`unexpected ${response.status}: ${text}`);
  };
  return {
    name: 'http',
    actions: ['publish', 'stream', 'admin', 'see'],
    async run(user, action, topic) {
      const path = `/api/topics/${encodeURIComponent(topic)}`;
      switch (action) {
        case 'publish':
          return outcome(await request(user, 'POST', `${path}/messages`, { value: 'matrix' }), [201]);
        case 'stream':
          return outcome(await request(user, 'GET', `${path}/messages?limit=1`), [200]);
        case 'admin':
          return outcome(await request(user, 'POST', '/api/topics', { name: topic }), [409]);
        default: {
          const response = await request(user, 'GET', '/api/topics');
          assert.equal(response.status, 200);
          const topics = (await response.json()) as Array<{ name: string }>;
          return topics.some((info) => info.name === topic) ? 'allowed' : 'forbidden';
        }
      }
    },
    async close() {},
  };
}

// ---- gRPC --------------------------------------------------------------------------------------

type Callback<Res> = (error: ServiceError | null, response: Res) => void;
/** PERMISSION_DENIED and UNAUTHENTICATED, from the gRPC status codes. */
const GRPC_PERMISSION_DENIED = 7;
const GRPC_UNAUTHENTICATED = 16;

function grpcTransport(running: SecureBroker): Transport {
  const address = `127.0.0.1:${running.httpPort}`;
  const topics = new TopicServiceClient(address, credentials.createInsecure());
  const messages = new MessageServiceClient(address, credentials.createInsecure());
  const call = <Res>(start: (metadata: Metadata, callback: Callback<Res>) => void, user: User | null): Promise<Res> => {
    const metadata = new Metadata();
    if (user !== null) metadata.set('authorization', basic(user, PASSWORD));
    return new Promise((resolve, reject) => start(metadata, (error, response) => (error === null ? resolve(response) : reject(error))));
  };
  const outcome = async (work: () => Promise<unknown>): Promise<Outcome> => {
    try {
      await work();
      return 'allowed';
    } catch (error) {
      const code = (error as ServiceError).code;
      if (code === GRPC_PERMISSION_DENIED) return 'forbidden';
      // ALREADY_EXISTS: an admin creating an existing topic got past the check.
      if (code === 6) return 'allowed';
      throw error;
    }
  };
  const deadline = () => ({ deadline: Date.now() + 10_000 });
  return {
    name: 'grpc',
    actions: ACTIONS,
    async run(user, action, topic) {
      if (action === 'see') {
        const listed = await call<{ topics: Array<{ name: string }> }>((m, cb) => topics.listTopics(ListTopicsRequest.fromPartial({}), m, deadline(), cb), user);
        return listed.topics.some((info) => info.name === topic) ? 'allowed' : 'forbidden';
      }
      if (action === 'publish') {
        return outcome(() => call((m, cb) => messages.publish(PublishRequest.fromPartial({ topic, messages: [{ value: Buffer.from('matrix') }] }), m, deadline(), cb), user));
      }
      if (action === 'admin') return outcome(() => call((m, cb) => topics.createTopic(CreateTopicRequest.fromPartial({ name: topic }), m, deadline(), cb), user));
      const group = groupOf(action) ?? '';
      return outcome(async () => {
        const pulled = await call<{ consumerId: string }>(
          (m, cb) => messages.pull(PullRequest.fromPartial({ subscription: { topic, group, start: { latest: true } }, maxMessages: 1, waitMs: 0 }), m, deadline(), cb),
          user,
        );
        await call((m, cb) => messages.closeConsumer(CloseConsumerRequest.fromPartial({ consumerId: pulled.consumerId }), m, deadline(), cb), user);
      });
    },
    async close() {
      topics.close();
      messages.close();
    },
  };
}

test('permissions - every user × action × topic agrees with the written policy over TCP, HTTP and gRPC', async () => {
  const running = await startSecure({ users: await usersFile(USERS, ROLES), http: true });
  const transports: Transport[] = [];
  try {
    for (const topic of TOPICS) await running.broker.createTopic(topic);
    transports.push(await tcpTransport(running), httpTransport(running), grpcTransport(running));
    const mismatches: string[] = [];
    let cells = 0;
    for (const transport of transports) {
      for (const user of Object.keys(USERS) as User[]) {
        for (const action of transport.actions) {
          for (const topic of TOPICS) {
            const want = expected(user, action, topic) ? 'allowed' : 'forbidden';
            const got = await transport.run(user, action, topic);
            cells++;
            if (got !== want) mismatches.push(`${transport.name}: ${user} ${action} ${topic}: expected ${want}, got ${got}`);
          }
        }
      }
    }
    assert.deepEqual(mismatches, [], `${mismatches.length} of ${cells} cells disagree`);
    // 6 users × (6 + 4 + 6 actions) × 5 topics.
    assert.equal(cells, 6 * 16 * 5);
    assert.ok(running.rejections.of('FORBIDDEN', 'tcp') > 0 && running.rejections.of('FORBIDDEN', 'http') > 0);
  } finally {
    for (const transport of transports) await transport.close();
    await running.close();
  }
});

test('permissions - without credentials the admin API answers 401 and gRPC UNAUTHENTICATED; probes stay open', async () => {
  const running = await startSecure({ users: await usersFile(USERS, ROLES), http: true });
  const topics = new TopicServiceClient(`127.0.0.1:${running.httpPort}`, credentials.createInsecure());
  try {
    const base = `http://127.0.0.1:${running.httpPort}`;
    const anonymous = await fetch(`${base}/api/topics`);
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic /);
    assert.equal(((await anonymous.json()) as { error: { code: string } }).error.code, 'AUTH_REQUIRED');
    const wrong = await fetch(`${base}/api/topics`, { headers: { authorization: basic('root', 'not-the-password') } });
    assert.equal(wrong.status, 401);
    assert.equal(((await wrong.json()) as { error: { code: string } }).error.code, 'AUTH_FAILED');
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/metrics`)).status, 401, '/metrics needs a login with users configured');
    // Broker-wide views need admin on every topic.
    assert.equal((await fetch(`${base}/api/connections`, { headers: { authorization: basic('auditor', PASSWORD) } })).status, 403);
    assert.equal((await fetch(`${base}/api/connections`, { headers: { authorization: basic('root', PASSWORD) } })).status, 200);
    const error = await new Promise<ServiceError | null>((resolve) =>
      topics.listTopics(ListTopicsRequest.fromPartial({}), new Metadata(), { deadline: Date.now() + 10_000 }, (failure) => resolve(failure)),
    );
    assert.equal(error?.code, GRPC_UNAUTHENTICATED);
    const metrics = await (await fetch(`${base}/metrics`, { headers: { authorization: basic('root', PASSWORD) } })).text();
    assert.match(metrics, /ferry_rejections_total\{code="AUTH_REQUIRED",transport="http"\} [1-9]/);
    assert.match(metrics, /ferry_rejections_total\{code="AUTH_FAILED",transport="http"\} [1-9]/);
  } finally {
    topics.close();
    await running.close();
  }
});
