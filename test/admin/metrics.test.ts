/**
 * /metrics after known traffic: parsed with a strict Prometheus text parser (format errors fail
 * the test), then each family checked against what the traffic must have produced. Prometheus's
 * own linter runs on it in promtool.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Delivery } from '../../src/broker/types.js';
import { connect } from '../../src/client/index.js';
import { FerryError } from '../../src/errors.js';
import { eventually } from '../helpers.js';
import { startAdmin } from './harness.js';
import { parsePrometheus, valueOf } from './prometheus.js';

test('metrics - /metrics is valid Prometheus text and counts known traffic', async () => {
  const fixture = await startAdmin({ tcp: true });
  const { admin, observed, broker, log, tcpPort } = fixture;
  const client = await connect({ host: '127.0.0.1', port: tcpPort, name: 'metrics-test', reconnect: false });
  try {
    await observed.createTopic('m', { partitions: 1 });
    for (let i = 0; i < 4; i++) await client.publish('m', Buffer.from('aaaa'), { key: 'k' });
    await assert.rejects(observed.publish('nope', [{ value: Buffer.from('x') }]), /unknown topic/);

    // Group: ack three, nack one twice (deliveriesMax 2): one redelivery, then a dead letter.
    const deliveries: Delivery[] = [];
    const subscription = await observed.subscribe(
      'm',
      { group: 'workers', from: { kind: 'earliest' }, deliveriesMax: 2, backoffMs: [0] },
      { deliver: (delivery) => void deliveries.push(delivery), writable: () => true },
    );
    await eventually(() => deliveries.length === 4);
    for (const offset of [1, 2, 3]) await subscription.ack(0, offset);
    await subscription.nack(0, 0, { delayMs: 0 });
    await eventually(() => deliveries.length === 5);
    assert.equal(deliveries[4]!.deliveryCount, 2);
    await subscription.nack(0, 0, { delayMs: 0 });
    await eventually(() => broker.describeGroup('m', 'workers').deadLetteredTotal === 1);

    log.warn('test.warned', { error: new FerryError('DISK_FULL', 'no space left') });

    const response = await fetch(`${fixture.base}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    const families = parsePrometheus(await response.text());
    const topic = { topic: 'm' };
    const group = { topic: 'm', group: 'workers' };

    for (const [name, family] of families) {
      assert.match(name, /^ferry_/, 'every metric is in the ferry_ namespace');
      assert.notEqual(family.help, '', `${name} has help text`);
      if (family.type === 'counter') assert.match(name, /_total$/, `${name}: counters end in _total`);
    }
    assert.equal(valueOf(families, 'ferry_build_info', { version: admin.info().version, node: process.version }), 1);
    assert.equal(valueOf(families, 'ferry_ready'), 1);
    assert.equal(valueOf(families, 'ferry_topic_messages_in_total', topic), 4);
    assert.equal(valueOf(families, 'ferry_topic_bytes_in_total', topic), 4 * 5);
    assert.equal(valueOf(families, 'ferry_topic_messages_in_total', { topic: 'nope' }), undefined, 'no series for an unknown topic');
    assert.equal(valueOf(families, 'ferry_topic_messages', topic), 4);
    assert.equal(valueOf(families, 'ferry_partition_end_offset', { topic: 'm', partition: '0' }), 4);
    assert.equal(valueOf(families, 'ferry_partition_start_offset', { topic: 'm', partition: '0' }), 0);
    const stored = broker.describeTopic('m').partitions[0]!;
    assert.equal(valueOf(families, 'ferry_storage_bytes', topic), stored.bytes);
    assert.equal(valueOf(families, 'ferry_storage_segments', topic), stored.segments);

    assert.equal(valueOf(families, 'ferry_group_delivered_total', group), 5);
    assert.equal(valueOf(families, 'ferry_group_acked_total', group), 3);
    assert.equal(valueOf(families, 'ferry_group_nacked_total', group), 2);
    assert.equal(valueOf(families, 'ferry_group_redelivered_total', group), 1);
    assert.equal(valueOf(families, 'ferry_group_dead_lettered_total', group), 1);
    assert.equal(valueOf(families, 'ferry_group_lag', group), 0);
    assert.equal(valueOf(families, 'ferry_group_in_flight', group), 0);
    assert.equal(valueOf(families, 'ferry_group_oldest_unacked_age_seconds', group), 0);
    assert.equal(valueOf(families, 'ferry_group_subscribers', group), 1);
    assert.equal(valueOf(families, 'ferry_topic_messages', { topic: 'm.dlq' }), 1);
    assert.equal(valueOf(families, 'ferry_dead_letter_waiting', { topic: 'm.dlq' }), 1);

    const confirms = valueOf(families, 'ferry_publish_confirm_seconds_count', topic)!;
    assert.ok(confirms >= 1 && confirms <= 4, `publish requests: ${confirms}`);
    assert.equal(valueOf(families, 'ferry_publish_confirm_seconds_bucket', { topic: 'm', le: '+Inf' }), confirms);
    assert.equal(valueOf(families, 'ferry_end_to_end_seconds_count', topic), 4, 'first deliveries only');
    // The logs report their own fsyncs and writes (topic partitions, group journals, dead letters).
    const fsyncs = valueOf(families, 'ferry_storage_fsync_seconds_count')!;
    assert.ok(fsyncs >= 2, `fsyncs: ${fsyncs}`);
    assert.equal(valueOf(families, 'ferry_storage_fsync_seconds_bucket', { le: '+Inf' }), fsyncs);
    assert.ok(valueOf(families, 'ferry_storage_batch_records_sum')! >= 5, 'at least the 4 messages and the dead letter');
    assert.ok(valueOf(families, 'ferry_storage_written_bytes_total')! > 4 * 40);

    assert.equal(valueOf(families, 'ferry_connections'), 1);
    assert.equal(valueOf(families, 'ferry_connections_opened_total'), 1);
    assert.equal(valueOf(families, 'ferry_slow_consumers_total'), 0);
    assert.equal(valueOf(families, 'ferry_slow_consumers'), 0);
    assert.ok(valueOf(families, 'ferry_network_received_bytes_total')! > 0);
    assert.ok(valueOf(families, 'ferry_network_sent_bytes_total')! > 0);
    assert.equal(valueOf(families, 'ferry_log_events_total', { level: 'warn', event: 'test.warned', code: 'DISK_FULL' }), 1);
    assert.ok(valueOf(families, 'ferry_process_resident_memory_bytes')! > 0);
    for (const stat of ['p50', 'p99', 'max']) assert.ok(valueOf(families, `ferry_event_loop_delay_${stat}_seconds`)! >= 0, stat);
    // The cluster's families exist only in cluster mode (test/admin/cluster-admin.test.ts).
    for (const name of ['ferry_cluster_etcd_up', 'ferry_leader_changes_total', 'ferry_in_sync_shrinks_total', 'ferry_replica_lag_records']) assert.equal(families.has(name), false, name);

    // A deleted topic's series go with it.
    await subscription.close();
    await observed.deleteTopic('m');
    const after = parsePrometheus(await (await fetch(`${fixture.base}/metrics`)).text());
    assert.equal(valueOf(after, 'ferry_topic_messages_in_total', topic), undefined);
    assert.equal(valueOf(after, 'ferry_topic_messages', topic), undefined);
    assert.equal(valueOf(after, 'ferry_group_lag', group), undefined);
  } finally {
    await client.close();
    await fixture.close();
  }
});

test('metrics - before recovery finished only process metrics and ferry_ready 0 are served', async () => {
  const fixture = await startAdmin({ attach: false });
  try {
    const families = parsePrometheus(await (await fetch(`${fixture.base}/metrics`)).text());
    assert.equal(valueOf(families, 'ferry_ready'), 0);
    assert.equal(families.get('ferry_topic_messages')!.samples.length, 0);
    assert.ok(valueOf(families, 'ferry_process_resident_memory_bytes')! > 0);
  } finally {
    await fixture.close();
  }
});

test('metrics - the parser rejects malformed exposition text', () => {
  assert.throws(() => parsePrometheus('ferry_x 1\n'), /without a TYPE/);
  assert.throws(() => parsePrometheus('# TYPE ferry_x gauge\nferry_x{a="1} 1\n'), /unterminated/);
  assert.throws(() => parsePrometheus('# TYPE ferry_x gauge\nferry_x one\n'), /bad value/);
  assert.throws(
    () => parsePrometheus('# TYPE ferry_h histogram\nferry_h_bucket{le="1"} 2\nferry_h_bucket{le="+Inf"} 1\nferry_h_sum 1\nferry_h_count 1\n'),
    /decrease/,
  );
  const families = parsePrometheus('# HELP ferry_y a "quoted" help\n# TYPE ferry_y counter\nferry_y_total{path="a\\"b\\\\c"} 3 1700000000000\n'.replace('ferry_y_total', 'ferry_y'));
  assert.equal(valueOf(families, 'ferry_y', { path: 'a"b\\c' }), 3);
});
