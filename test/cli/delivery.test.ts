/** The reliable-delivery commands of `ferry`, as child processes: pub options, sub --nack, groups, dlq redrive. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../../src/client/index.js';
import { ferry, withBroker } from './run-ferry.js';

test('cli - pub --id dedups, --delay-ms and --deliver-at hold back, sub --nack redelivers', async () => {
  await withBroker(async (port) => {
    assert.equal((await ferry(['topics', 'create', 'jobs', '--dedup-window-ms', '60000', '--port', port])).code, 0);
    const first = await ferry(['pub', 'jobs', 'hello', '--id', 'order-42', '--port', port]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /offset 0 \(synced\)/);
    const again = await ferry(['pub', 'jobs', 'hello', '--id', 'order-42', '--port', port]);
    assert.match(again.stdout, /offset 0 \(synced, duplicate: already stored\)/);
    const run = await ferry(['pub', 'jobs', '--count', '3', '--id', 'batch', '--port', port]);
    assert.equal(run.code, 0, run.stderr);
    const rerun = await ferry(['pub', 'jobs', '--count', '3', '--id', 'batch', '--port', port]);
    assert.equal(rerun.code, 0, rerun.stderr);
    const described = JSON.parse((await ferry(['topics', 'describe', 'jobs', '--json', '--port', port])).stdout);
    assert.equal(described.partitions[0].nextOffset, 4, 'the run of 3 was stored once');
    assert.equal(described.config.dedupWindowMs, 60_000);

    const delayed = await ferry(['pub', 'jobs', 'later', '--delay-ms', '300', '--port', port]);
    assert.equal(delayed.code, 0, delayed.stderr);
    assert.match(delayed.stdout, /delivered from \d{4}-/);
    const at = await ferry(['pub', 'jobs', 'at', '--deliver-at', new Date(Date.now() + 300).toISOString(), '--port', port]);
    assert.equal(at.code, 0, at.stderr);
    const both = await ferry(['pub', 'jobs', 'x', '--delay-ms', '1', '--deliver-at', new Date().toISOString(), '--port', port]);
    assert.equal(both.code, 2);
    const tooHigh = await ferry(['pub', 'jobs', 'x', '--priority', '10', '--port', port]);
    assert.equal(tooHigh.code, 1);
    assert.match(tooHigh.stderr, /priority must be an integer from 0 to 9/);

    const read = await ferry(['sub', 'jobs', '--group', 'g', '--count', '6', '--port', port]);
    assert.equal(read.code, 0, read.stderr);
    assert.deepEqual(read.stdout.trim().split('\n').sort(), ['at', 'hello', 'later', ...Array(3).fill('abcdefghijklmnop')].sort());

    // Six messages, each nacked (the default backoff: about a second); the seventh line is a redelivery.
    const nacked = await ferry(['sub', 'jobs', '--group', 'n', '--nack', '--count', '7', '--json', '--port', port]);
    assert.equal(nacked.code, 0, nacked.stderr);
    const counts = nacked.stdout.trim().split('\n').map((line) => JSON.parse(line).deliveryCount);
    assert.deepEqual(counts, [1, 1, 1, 1, 1, 1, 2], 'a nacked message came back');
    assert.equal((await ferry(['sub', 'jobs', '--nack', '--port', port])).code, 2, '--nack needs a group');
  });
});

test('cli - groups list, describe and reset; dlq redrive by limit, header and offset range', async () => {
  await withBroker(async (port) => {
    const client = await connect({ port: Number(port), reconnect: false });
    try {
      await client.createTopic('jobs');
      await client.publishBatch('jobs', [{ value: 'a' }, { value: 'b' }, { value: 'c' }, { value: 'd' }]);
      const sub = await client.subscribe('jobs', { group: 'w', prefetch: 10 });
      let seen = 0;
      for await (const message of sub) {
        const value = message.value.toString();
        if (value === 'a') await message.ack();
        else await message.reject(value === 'c' ? 'wrong size' : 'bad input');
        if (++seen === 4) break;
      }
    } finally {
      await client.close();
    }

    const listed = await ferry(['groups', 'list', 'jobs', '--port', port]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^w +pending=0 in-flight=0 subscribers=0 redelivered=0 dead-lettered=3$/m);
    const described = await ferry(['groups', 'describe', 'jobs', 'w', '--port', port]);
    assert.equal(described.code, 0, described.stderr);
    assert.match(described.stdout, /dead-lettered: +3 \(to jobs\.dlq\)/);
    assert.match(described.stdout, /oldest unacked age: +0 ms/);
    assert.match(described.stdout, /partition 0: acked floor 4, lag 0/);
    const json = JSON.parse((await ferry(['groups', 'describe', 'jobs', 'w', '--json', '--port', port])).stdout);
    assert.equal(json.deadLetteredTotal, 3);
    assert.equal(json.config.deadLetterTopic, 'jobs.dlq');

    const reset = await ferry(['groups', 'reset', 'jobs', 'w', '--to', 'earliest', '--port', port]);
    assert.equal(reset.code, 0, reset.stderr);
    assert.match(reset.stdout, /pending=4/);
    assert.match((await ferry(['groups', 'reset', 'jobs', 'w', '--to', '3', '--port', port])).stdout, /pending=1/);
    assert.match((await ferry(['groups', 'reset', 'jobs', 'w', '--to', new Date(Date.now() + 60_000).toISOString(), '--port', port])).stdout, /pending=0/);
    assert.match((await ferry(['groups', 'reset', 'jobs', 'w', '--to', 'latest', '--port', port])).stdout, /pending=0/);

    const one = await ferry(['dlq', 'redrive', 'jobs.dlq', '--limit', '1', '--port', port]);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(one.stdout, 'moved 1 message from jobs.dlq\n');
    const byHeader = await ferry(['dlq', 'redrive', 'jobs.dlq', '--header', 'ferry-dlq-reason=wrong size', '--port', port]);
    assert.equal(byHeader.stdout, 'moved 1 message from jobs.dlq\n');
    const byRange = await ferry(['dlq', 'redrive', 'jobs.dlq', '--from-offset', '0', '--to-offset', '3', '--port', port]);
    assert.equal(byRange.stdout, 'moved 1 message from jobs.dlq\n');
    assert.equal((await ferry(['dlq', 'redrive', 'jobs.dlq', '--port', port])).stdout, 'moved 0 messages from jobs.dlq\n');
    assert.match((await ferry(['groups', 'list', 'jobs', '--port', port])).stdout, /^w +pending=3 /m, 'redriven messages are pending again');

    const noTo = await ferry(['groups', 'reset', 'jobs', 'w', '--port', port]);
    assert.equal(noTo.code, 2);
    assert.match(noTo.stderr, /--to/);
    const missing = await ferry(['groups', 'describe', 'jobs', 'missing', '--port', port]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /UNKNOWN_GROUP/);
    assert.equal((await ferry(['dlq', 'redrive', 'jobs.dlq', '--header', 'novalue', '--port', port])).code, 2);
    assert.equal((await ferry(['dlq', 'purge', 'jobs.dlq', '--port', port])).code, 2);
  });
});
