/**
 * The cluster chaos scenarios' schedules: every full scenario injects at least 30 faults (the
 * issue's bar per run), a schedule is the same for the same seed, every partition shape and every
 * power-loss target comes up in a full run, and the short profile is the seven faults CI runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRandom } from '../sim/random.js';
import { CLUSTER_DURABILITIES, CLUSTER_SCENARIOS, CLUSTER_SYNC_INTERVAL_MS, CLUSTER_TOPIC, clusterTopic, FULL_CLUSTER_SCENARIOS, PARTITION_SHAPES } from './cluster-scenarios.js';

const FAULTS_PER_RUN_MIN = 30;

test('cluster scenarios - every full scenario injects at least 30 faults, the same ones for the same seed', () => {
  for (const name of FULL_CLUSTER_SCENARIOS) {
    const scenario = CLUSTER_SCENARIOS[name]!;
    const plan = scenario.plan(seededRandom(7), 'full');
    assert.ok(plan.filter((step) => step.fault !== 'none').length >= FAULTS_PER_RUN_MIN, `${name}: ${plan.length} faults`);
    assert.deepEqual(scenario.plan(seededRandom(7), 'full'), plan, `${name} is reproducible`);
    assert.notDeepEqual(scenario.plan(seededRandom(8), 'full'), plan, `${name} depends on the seed`);
  }
});

test('cluster scenarios - a full partition run covers every shape; a power-loss run one replica, the leader and all three', () => {
  const partitions = CLUSTER_SCENARIOS['partition']!.plan(seededRandom(1), 'full');
  const shapes = new Set(partitions.flatMap((step) => (step.fault === 'partition' ? [step.shape] : [])));
  assert.deepEqual([...shapes].sort(), [...PARTITION_SHAPES].sort());
  const losses = CLUSTER_SCENARIOS['power-loss']!.plan(seededRandom(1), 'full');
  const targets = new Set(losses.flatMap((step) => (step.fault === 'power-loss' ? [step.target] : [])));
  assert.deepEqual([...targets].sort(), ['all', 'follower', 'leader']);
});

test('cluster scenarios - --faults sets the number of faults of a full run; the short profile is the CI one', () => {
  assert.equal(CLUSTER_SCENARIOS['leader-kill']!.plan(seededRandom(1), 'full', 50).length, 50);
  const short = CLUSTER_SCENARIOS['short']!.plan(seededRandom(1), 'short').filter((step) => step.fault !== 'none');
  assert.equal(short.length, 7);
});

test('cluster scenarios - the topic runs in each durability mode with the same replicas; interval syncs every 50 ms', () => {
  assert.deepEqual(clusterTopic('always'), CLUSTER_TOPIC);
  for (const durability of CLUSTER_DURABILITIES) {
    const topic = clusterTopic(durability);
    assert.equal(topic.durability, durability);
    assert.deepEqual([topic.replicas, topic.minInSync, topic.partitions], [3, 2, 2]);
    assert.equal(topic.syncIntervalMs, durability === 'interval' ? CLUSTER_SYNC_INTERVAL_MS : undefined);
  }
});
