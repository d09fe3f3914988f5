/**
 * The client's picture of a cluster (src/client/metadata.ts): what a METADATA answer and a
 * NOT_LEADER refusal teach it, and the rules that keep it from going back to an older leader or
 * getting stuck on a broker that refuses. Plain data: no broker needed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MetadataResponse } from '../../src/protocol/codec-metadata.js';
import { leaderHint, MetadataCache, normalizeAddress } from '../../src/client/metadata.js';

const brokers = [
  { nodeId: 'n1', address: '127.0.0.1:7701', alive: true },
  { nodeId: 'n2', address: '127.0.0.1:7702', alive: true },
  { nodeId: 'n3', address: 'localhost:7703', alive: false },
];

function answer(topics: Array<[name: string, leader: string, epoch: number]>, from = 'n1'): MetadataResponse {
  return { nodeId: from, brokers, topics: topics.map(([name, leader, epoch]) => ({ name, leader, epoch, exists: true })) };
}

test('metadata - a cluster answer names each topic\'s leader and where to reach it; topics gone are forgotten', () => {
  const cache = new MetadataCache();
  cache.apply(answer([['a', 'n1', 1], ['b', 'n3', 4], ['c', '', 2]]), '127.0.0.1:7701');
  assert.equal(cache.isCluster, true);
  assert.equal(cache.single, null);
  assert.deepEqual(cache.leader('a'), { nodeId: 'n1', address: '127.0.0.1:7701', epoch: 1, stale: false });
  assert.deepEqual(cache.leader('b'), { nodeId: 'n3', address: 'localhost:7703', epoch: 4, stale: false });
  assert.deepEqual(cache.leader('c'), { nodeId: '', address: null, epoch: 2, stale: false }, 'no leader elected yet');
  assert.deepEqual(cache.brokerAddresses(), ['127.0.0.1:7701', '127.0.0.1:7702', 'localhost:7703'], 'live brokers first');
  assert.equal(cache.isAlive('n3'), false);
  cache.apply({ ...answer([['a', 'n2', 2]]), topics: [{ name: 'a', leader: 'n2', epoch: 2, exists: true }, { name: 'b', leader: 'n3', epoch: 4, exists: false }] }, '127.0.0.1:7702');
  assert.equal(cache.leader('a')!.nodeId, 'n2');
  assert.equal(cache.leader('b'), undefined, 'deleted');
  assert.equal(cache.leader('c'), undefined, 'not listed: gone');
});

test('metadata - an answer from a broker behind on elections does not take a topic back to an older epoch', () => {
  const cache = new MetadataCache();
  cache.apply(answer([['a', 'n2', 5]]), '127.0.0.1:7702');
  cache.apply(answer([['a', 'n1', 4]]), '127.0.0.1:7701');
  assert.deepEqual(cache.leader('a'), { nodeId: 'n2', address: '127.0.0.1:7702', epoch: 5, stale: false });
  cache.apply(answer([['a', 'n3', 6]]), '127.0.0.1:7701');
  assert.equal(cache.leader('a')!.nodeId, 'n3');
});

test('metadata - NOT_LEADER: the named leader is followed; an older hint is not, unless it comes from the broker the entry named', () => {
  const cache = new MetadataCache();
  cache.apply(answer([['a', 'n1', 3]]), '127.0.0.1:7701');
  const version = cache.version;
  // n1 refuses and names n2 at epoch 4, with its address.
  assert.equal(cache.notLeader('a', { nodeId: 'n1', address: '127.0.0.1:7701' }, leaderHint({ topic: 'a', leader: 'n2', address: '127.0.0.1:7702', epoch: 4 })), true);
  assert.deepEqual(cache.leader('a'), { nodeId: 'n2', address: '127.0.0.1:7702', epoch: 4, stale: false });
  assert.ok(cache.version > version);
  // A straggler's refusal naming an older leader does not take it back.
  assert.equal(cache.notLeader('a', { nodeId: 'n3', address: 'localhost:7703' }, leaderHint({ leader: 'n1', address: '127.0.0.1:7701', epoch: 3 })), true);
  assert.equal(cache.leader('a')!.nodeId, 'n2');
  // The broker the entry names refuses with a lower epoch (the topic was made again): believed.
  assert.equal(cache.notLeader('a', { nodeId: 'n2', address: '127.0.0.1:7702' }, leaderHint({ leader: 'n3', address: null, epoch: 1 })), true);
  assert.deepEqual(cache.leader('a'), { nodeId: 'n3', address: 'localhost:7703', epoch: 1, stale: false }, 'the address from the broker list');
  // A refusal that names nobody leaves the topic leaderless, to be asked again.
  assert.equal(cache.notLeader('a', { nodeId: 'n3', address: 'localhost:7703' }, leaderHint({ leader: null, address: null, epoch: null })), false);
  assert.deepEqual(cache.leader('a'), { nodeId: '', address: null, epoch: 1, stale: true });
  // A refusal naming the refuser itself teaches nothing new.
  cache.apply(answer([['b', 'n1', 2]]), '127.0.0.1:7701');
  assert.equal(cache.notLeader('b', { nodeId: 'n1', address: '127.0.0.1:7701' }, leaderHint({ leader: 'n1', address: '127.0.0.1:7701', epoch: 2 })), false);
});

test('metadata - a single broker leads every topic; a failure marks it to be asked again', () => {
  const cache = new MetadataCache();
  cache.apply({ nodeId: '', brokers: [{ nodeId: '', address: '127.0.0.1:7700', alive: true }], topics: [{ name: 't', leader: '', epoch: 0, exists: true }] }, '10.0.0.1:7700');
  assert.equal(cache.single, '10.0.0.1:7700', 'the address the client reached it at');
  assert.equal(cache.isCluster, false);
  assert.deepEqual(cache.leader('t'), { nodeId: '', address: '10.0.0.1:7700', epoch: 0, stale: false });
  cache.markStale('t');
  assert.equal(cache.singleStale, true);
  cache.applySingle('10.0.0.2:7700');
  assert.equal(cache.singleStale, false);
  assert.deepEqual(cache.snapshot(), { cluster: false, brokers: [{ nodeId: '', address: '10.0.0.2:7700', alive: true }], topics: [] });
  cache.markStaleAt('10.0.0.2:7700', undefined);
  assert.equal(cache.singleStale, true);
});

test('metadata - a topic led elsewhere is told apart from one still led by the broker, or leaderless', () => {
  const cache = new MetadataCache();
  cache.apply(answer([['a', 'n1', 1], ['b', 'n2', 1], ['c', '', 1]]), '127.0.0.1:7701');
  assert.equal(cache.ledElsewhere('a', 'n1'), false);
  assert.equal(cache.ledElsewhere('b', 'n1'), true);
  assert.equal(cache.ledElsewhere('c', 'n1'), false, 'no leader yet: not elsewhere');
  assert.equal(cache.ledElsewhere('unknown', 'n1'), false);
  cache.markStaleAt('127.0.0.1:7701', 'n1');
  assert.equal(cache.leader('a')!.stale, true);
  assert.equal(cache.leader('b')!.stale, false);
});

test('metadata - addresses are normalised; hints with wrong types are ignored', () => {
  assert.equal(normalizeAddress('[::1]:7701'), '[::1]:7701');
  assert.equal(normalizeAddress('Host.example:7701'), 'Host.example:7701');
  assert.equal(normalizeAddress('no port here:x'), null);
  assert.equal(normalizeAddress(7701), null);
  assert.deepEqual(leaderHint({ leader: 5, address: 'x:y', epoch: -1 }), { leader: null, address: null, epoch: null });
  assert.deepEqual(leaderHint(undefined), { leader: null, address: null, epoch: null });
});
