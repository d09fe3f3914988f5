/** MQTT topic names and filters: wildcards as MQTT-4.7 defines them, the mapping onto Ferry topics and groups. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ferryTopicOf, ferryTopicOfFilter, parseFilter, sessionGroupName, shareGroupName, topicFilterProblem, topicMatches, topicNameProblem } from '../../../src/transport/mqtt/topics.js';
import { isFerryName } from '../../../src/transport/mqtt/topics.js';

test('mqtt topics - + matches one level, # this level and every one below, $ topics only literally', () => {
  const cases: Array<[string, string, boolean]> = [
    ['sport/tennis/player1/#', 'sport/tennis/player1', true],
    ['sport/tennis/player1/#', 'sport/tennis/player1/ranking', true],
    ['sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon', true],
    ['sport/#', 'sport', true],
    ['#', 'sport/tennis', true],
    ['sport/tennis/+', 'sport/tennis/player1', true],
    ['sport/tennis/+', 'sport/tennis/player1/ranking', false],
    ['sport/+', 'sport', false],
    ['sport/+', 'sport/', true],
    ['+/+', '/finance', true],
    ['/+', '/finance', true],
    ['+', '/finance', false],
    ['#', '$SYS/x', false],
    ['+/monitor/Clients', '$SYS/monitor/Clients', false],
    ['$SYS/#', '$SYS/x', true],
    ['a/b', 'a/b', true],
    ['a/b', 'a/c', false],
  ];
  for (const [filter, topic, expected] of cases) assert.equal(topicMatches(filter, topic), expected, `${filter} against ${topic}`);
});

test('mqtt topics - names and filters are checked for form and length', () => {
  assert.equal(topicNameProblem('a/b', 10), null);
  assert.match(topicNameProblem('a/+', 10)!, /wildcards/);
  assert.match(topicNameProblem('', 10)!, /empty/);
  assert.match(topicNameProblem('a'.repeat(11), 10)!, /longer/);
  assert.equal(topicFilterProblem('a/+/#', 100), null);
  assert.match(topicFilterProblem('a/#/b', 100)!, /#/);
  assert.match(topicFilterProblem('a/b#', 100)!, /#/);
  assert.match(topicFilterProblem('a/b+/c', 100)!, /\+/);
});

test('mqtt topics - the first level names the Ferry topic; groups are valid Ferry names apart per client and filter', () => {
  assert.equal(ferryTopicOf('sensors/kitchen/temp'), 'sensors');
  assert.equal(ferryTopicOf('sensors'), 'sensors');
  assert.equal(ferryTopicOf('/leading'), null);
  assert.equal(ferryTopicOf('bad name/x'), null);
  assert.equal(ferryTopicOfFilter('#'), null);
  assert.equal(ferryTopicOfFilter('+/x'), null);
  assert.equal(ferryTopicOfFilter('jobs/#'), 'jobs');
  assert.deepEqual(parseFilter('$share/workers/jobs/#'), { filter: 'jobs/#', shareGroup: 'workers' });
  assert.deepEqual(parseFilter('jobs/#'), { filter: 'jobs/#', shareGroup: null });
  assert.equal(parseFilter('$share/workers'), null);
  assert.equal(parseFilter('$share//jobs'), null);
  const names = [sessionGroupName('client 1/ä', 'jobs/#'), sessionGroupName('client 1/ä', 'jobs/+'), sessionGroupName('client 2', 'jobs/#'), shareGroupName('workers', 'jobs/#')];
  for (const name of names) assert.ok(isFerryName(name), name);
  assert.equal(new Set(names).size, names.length);
});
