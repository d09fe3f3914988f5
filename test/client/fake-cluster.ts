/**
 * Fake brokers in cluster mode for client tests: the in-memory broker (test/transport/fake-broker.ts)
 * behind the real TCP server, each holding topic `t`, answering METADATA from a picture the test
 * changes at will (who leads `t`, at which epoch). Nothing is replicated between them.
 */
import type { DeliverySink } from '../../src/broker/types.js';
import type { ErrorCode } from '../../src/errors.js';
import { FerryError } from '../../src/errors.js';
import type { MetadataResponse } from '../../src/protocol/codec-metadata.js';
import type { ClusterFrames } from '../../src/transport/tcp/cluster-frames.js';
import type { FakeBroker } from '../transport/fake-broker.js';
import { startFake } from '../transport/harness.js';

/** Who leads topic `t` now, as every fake broker's METADATA says. */
export interface Picture {
  leader: string;
  epoch: number;
}

function clusterFrames(nodeId: string, brokers: () => Array<{ nodeId: string; port: number }>, picture: Picture): ClusterFrames {
  const unused = (): never => {
    throw new FerryError('INVALID_ARGUMENT', 'not used by these tests');
  };
  return {
    nodeId,
    metadata: (): MetadataResponse => ({
      nodeId,
      brokers: brokers().map((broker) => ({ nodeId: broker.nodeId, address: `127.0.0.1:${broker.port}`, alive: true })),
      topics: [{ name: 't', leader: picture.leader, epoch: picture.epoch, exists: true }],
    }),
    fetch: unused,
    epochEnd: unused,
    progress: () => undefined,
    change: unused,
    catchUpRead: unused,
    digests: unused,
    repair: unused,
    verifyTopic: unused,
  };
}

/** Fake brokers n1..nN in cluster mode, each holding topic `t`; `picture` says who leads it. */
export async function fakeCluster(count: number, picture: Picture) {
  const nodes: Array<{ nodeId: string; port: number }> = [];
  const running: Array<Awaited<ReturnType<typeof startFake>>> = [];
  for (let i = 1; i <= count; i++) {
    const nodeId = `n${i}`;
    const server = await startFake({ cluster: clusterFrames(nodeId, () => nodes, picture) });
    await server.fake.createTopic('t');
    nodes.push({ nodeId, port: server.port });
    running.push(server);
  }
  return {
    brokers: running,
    servers: nodes.map((node) => `127.0.0.1:${node.port}`),
    close: () => Promise.all(running.map((server) => server.close())),
  };
}

/** The broker ends every subscription it holds with `code` (NOT_LEADER: the topic moved), as a leader stepping down does. */
export function endSubscriptions(fake: FakeBroker, code: ErrorCode, reason: string): void {
  for (const held of [...fake.subscriptions]) (held as unknown as { sink: DeliverySink }).sink.ended?.(reason, code);
}
