/**
 * How the cluster client finds a topic's next leader, against two scripted brokers (the in-memory
 * fake behind real TCP servers, answering METADATA as the script says and refusing publishes
 * with NOT_LEADER while they do not lead): a refusal naming the new leader is followed at once,
 * however many pauses came before; and a request pausing for a leader goes to the new one as soon
 * as METADATA names it, not at the end of its backoff (which has grown to 500 ms by then).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../src/errors.js';
import type { PublishMessage, PublishResult } from '../../src/broker/types.js';
import type { MetadataResponse } from '../../src/protocol/codec-metadata.js';
import type { ClusterFrames } from '../../src/transport/tcp/cluster-frames.js';
import { TcpServer } from '../../src/transport/tcp/server.js';
import { connect } from '../../src/client/index.js';
import { silentLogger } from '../../src/platform/logger.js';
import { FakeBroker } from '../transport/fake-broker.js';
import { eventually } from '../helpers.js';

const TOPIC = 't';

/** Who leads, as METADATA says it, and how each broker refuses what it does not lead. */
class Script {
  leader = 'a';
  epoch = 1;
  /** What a refusal names as leader (null: "no leader right now"). */
  hint: { leader: string; epoch: number } | null = null;
  readonly addresses = new Map<string, string>();
  /** Publishes each broker refused, with the time of each. */
  readonly refusedAt = new Map<string, number[]>([['a', []], ['b', []]]);
  readonly acceptedAt = new Map<string, number[]>([['a', []], ['b', []]]);
  /** When a refusal first named a leader. */
  firstNamedAt: number | null = null;

  metadata(nodeId: string): MetadataResponse {
    return {
      nodeId,
      brokers: [...this.addresses].map(([id, address]) => ({ nodeId: id, address, alive: true })),
      topics: [{ name: TOPIC, leader: this.leader, epoch: this.epoch, exists: true }],
    };
  }

  refusal(nodeId: string): FerryError {
    const hint = this.hint;
    const leader = hint?.leader ?? null;
    if (hint !== null) this.firstNamedAt ??= performance.now();
    return new FerryError('NOT_LEADER', `${nodeId} does not lead ${TOPIC}`, {
      detail: { topic: TOPIC, leader, address: leader === null ? null : (this.addresses.get(leader) ?? null), epoch: hint?.epoch ?? this.epoch },
    });
  }
}

class ScriptedBroker extends FakeBroker {
  constructor(
    private readonly nodeId: string,
    private readonly script: Script,
    /** Leads, whatever METADATA says: publishes are taken. */
    readonly serves: () => boolean,
  ) {
    super();
  }

  override async publish(topic: string, messages: readonly PublishMessage[]): Promise<PublishResult[]> {
    if (!this.serves()) {
      this.script.refusedAt.get(this.nodeId)!.push(performance.now());
      throw this.script.refusal(this.nodeId);
    }
    this.script.acceptedAt.get(this.nodeId)!.push(performance.now());
    return super.publish(topic, messages);
  }
}

async function startScripted(script: Script, serving: { a: boolean; b: boolean }): Promise<{ servers: string[]; close(): Promise<void> }> {
  const servers: TcpServer[] = [];
  for (const nodeId of ['a', 'b'] as const) {
    const broker = new ScriptedBroker(nodeId, script, () => serving[nodeId]);
    await broker.createTopic(TOPIC);
    const frames = { nodeId, metadata: () => script.metadata(nodeId) } as unknown as ClusterFrames;
    const server = new TcpServer(broker, { logger: silentLogger, cluster: frames });
    const { port } = await server.listen(0, '127.0.0.1');
    script.addresses.set(nodeId, `127.0.0.1:${port}`);
    servers.push(server);
  }
  return { servers: [...script.addresses.values()], close: async () => void (await Promise.all(servers.map((server) => server.close()))) };
}

test('cluster router - a refusal naming the new leader is followed at once, even after the request paused several times', async () => {
  const script = new Script();
  const serving = { a: false, b: false };
  const cluster = await startScripted(script, serving);
  const client = await connect({ servers: cluster.servers, requestTimeoutMs: 10_000 });
  try {
    // a refuses without naming anyone five times (pauses 10, 20, 40, 80, 160 ms), then names b.
    const refusedByA = script.refusedAt.get('a')!;
    const publishing = client.publish(TOPIC, 'x');
    await eventually(() => refusedByA.length >= 5, { timeoutMs: 5_000 });
    script.hint = { leader: 'b', epoch: 2 };
    serving.b = true;
    await publishing;
    const followedAfterMs = script.acceptedAt.get('b')![0]! - script.firstNamedAt!;
    // Before: the sixth retry of a request waited routeBackoffMs(6) = 320 ms even with the leader named.
    assert.ok(followedAfterMs < 150, `b took the publish ${followedAfterMs.toFixed(0)} ms after a named it`);
  } finally {
    await client.close();
    await cluster.close();
  }
});

test('cluster router - a request pausing for a leader goes to the one METADATA names next, well before its backoff ends', async () => {
  const script = new Script();
  const serving = { a: false, b: false };
  const cluster = await startScripted(script, serving);
  const client = await connect({ servers: cluster.servers, requestTimeoutMs: 10_000 });
  try {
    const refusedByA = script.refusedAt.get('a')!;
    const publishing = client.publish(TOPIC, 'x');
    // Eight refusals naming nobody: the pauses have reached their 500 ms ceiling.
    await eventually(() => refusedByA.length >= 8, { timeoutMs: 8_000 });
    const electedAt = performance.now();
    script.leader = 'b';
    script.epoch = 2;
    serving.b = true;
    await publishing;
    const followedAfterMs = script.acceptedAt.get('b')![0]! - electedAt;
    // Before: the request slept out its 500 ms pause before asking METADATA again.
    assert.ok(followedAfterMs < 250, `b took the publish ${followedAfterMs.toFixed(0)} ms after METADATA named it`);
    assert.ok(refusedByA.length <= 9, `a was asked ${refusedByA.length} times: polling METADATA did not resend the request each time`);
  } finally {
    await client.close();
    await cluster.close();
  }
});
