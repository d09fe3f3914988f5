/**
 * ReplicaDamage on the simulated clock: damage bars elections until repaired, and is reported to
 * the leader once (TOPIC_VERIFY), sent again after DAMAGE_REPORT_RETRY_MS only when no leader
 * answered, and not at all when found while a leader's own check was hashing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientConnection } from '../../src/client/connection.js';
import { ReplicaDamage } from '../../src/cluster/replica-damage.js';
import { DAMAGE_REPORT_RETRY_MS } from '../../src/cluster/limits.js';
import { silentLogger } from '../../src/platform/logger.js';
import { SimClock } from '../sim/sim-clock.js';

const DAMAGE = { fromOffset: 10, toOffset: 19 };
const VERIFIED = { topic: 't', leader: 'n2', epoch: 3, ok: false, replicas: [] };

interface Asked {
  resolve(): void;
  reject(error: Error): void;
}

function setup() {
  const clock = new SimClock();
  const asked: Asked[] = [];
  let leader: string | null = null;
  const connection = {
    request: () =>
      new Promise((resolve, reject) => {
        asked.push({ resolve: () => resolve(VERIFIED), reject });
      }),
  } as unknown as ClientConnection;
  const damage = new ReplicaDamage({
    topic: () => 't',
    clock,
    logger: silentLogger,
    connectToLeader: () => (leader === null ? null : Promise.resolve(connection)),
  });
  return { clock, asked, damage, follow: (id: string | null) => (leader = id) };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test('replica damage - reported once to the leader it follows; a report made while following none waits for one', async () => {
  const { asked, damage, follow } = setup();
  assert.equal(damage.damaged, false);
  damage.noted('p0', DAMAGE);
  assert.equal(damage.damaged, true, 'no election while damaged');
  await settle();
  assert.equal(asked.length, 0, 'no leader to tell yet');
  follow('n2');
  damage.following();
  await settle();
  assert.equal(asked.length, 1);
  damage.noted('p1', DAMAGE);
  damage.following();
  await settle();
  assert.equal(asked.length, 1, 'one report in flight at a time');
  asked[0]!.resolve();
  await settle();
  damage.following();
  await settle();
  assert.equal(asked.length, 1, 'an answered report is done');
  assert.equal(damage.damaged, true, 'damaged until the leader repaired it');
  damage.repairing();
  damage.repaired();
  assert.equal(damage.damaged, false);
  damage.close();
});

test('replica damage - a report no leader answered is sent again after the retry interval, until the repair', async () => {
  const { clock, asked, damage, follow } = setup();
  follow('n2');
  damage.noted('p0', DAMAGE);
  await settle();
  assert.equal(asked.length, 1);
  asked[0]!.reject(new Error('connection refused'));
  await settle();
  clock.advance(DAMAGE_REPORT_RETRY_MS - 1);
  await settle();
  assert.equal(asked.length, 1, 'not before the retry interval');
  clock.advance(1);
  await settle();
  assert.equal(asked.length, 2, 'sent again');
  asked[1]!.reject(new Error('connection refused'));
  await settle();
  damage.repaired();
  clock.advance(DAMAGE_REPORT_RETRY_MS * 3);
  await settle();
  assert.equal(asked.length, 2, 'nothing left to report once repaired');
  damage.close();
});

test('replica damage - damage met while hashing for a leader\'s check bars elections but is not reported back to it', async () => {
  const { asked, damage, follow } = setup();
  follow('n2');
  damage.noted('p0', DAMAGE, true);
  await settle();
  assert.equal(damage.damaged, true);
  assert.equal(asked.length, 0);
  damage.following();
  await settle();
  assert.equal(asked.length, 0);
  damage.close();
});
