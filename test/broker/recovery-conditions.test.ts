/**
 * A topic's group that cannot open because the cluster takes no write now (a new leader whose
 * in-sync set is still below minInSync: NOT_ENOUGH_REPLICAS) is not a bad entry. It used to be
 * moved to quarantine, and the group started over from its start position: every message it had
 * acked was delivered again (found by the cluster chaos suite, `leader-kill` seed 101: 72,386
 * deliveries after confirmed acks). Now the open fails, leaves the group where it is and the topic
 * closed, and the next try opens the topic with its group and the group's state.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Broker } from '../../src/broker/broker.js';
import { FerryError, isFerryError } from '../../src/errors.js';
import { Log } from '../../src/storage/log.js';
import type { LogFactory } from '../../src/storage/types.js';
import { RecordingLogger } from '../storage/log-kit.js';
import { tempDir } from '../helpers.js';

test('recovery - a group whose open meets NOT_ENOUGH_REPLICAS is not quarantined, and opens with its acks on the next try', async () => {
  await using dir = await tempDir();
  const first = await Broker.open({ dir: dir.path });
  await first.createTopic('orders');
  await first.publish('orders', 'a');
  await first.publish('orders', 'b');
  const stream = await first.subscribe('orders', { group: 'billing', from: 'earliest' });
  for await (const message of stream) {
    assert.equal(message.value.toString(), 'a');
    await message.ack();
    break;
  }
  await first.close();

  let refuse = true;
  const openLog: LogFactory = async (options, role) => {
    if (refuse && role.kind === 'group-journal') throw new FerryError('NOT_ENOUGH_REPLICAS', 'topic orders has 1 replicas in sync, fewer than minInSync 2');
    return Log.open(options);
  };
  const logger = new RecordingLogger();
  const second = await Broker.open({ dir: dir.path, openLog, topicsAtOpen: 'none', logger });
  try {
    await assert.rejects(second.openTopic('orders'), (error: unknown) => isFerryError(error, 'NOT_ENOUGH_REPLICAS'));
    assert.deepEqual(logger.events('broker.group.quarantined'), []);
    assert.equal(existsSync(join(dir.path, 'quarantine')), false, 'nothing was moved to quarantine');
    assert.deepEqual(
      second.listTopics().map((topic) => topic.name),
      [],
      'the topic is not served without its group',
    );

    refuse = false;
    assert.equal(await second.openTopic('orders'), true);
    assert.deepEqual(second.listTopics()[0]!.groups, ['billing']);
    const again = await second.subscribe('orders', { group: 'billing', from: 'earliest' });
    for await (const message of again) {
      assert.equal(message.value.toString(), 'b', 'the acked message is not delivered again');
      await message.ack();
      break;
    }
  } finally {
    await second.close();
  }
});
