/**
 * The canonical request path: a path already canonical is taken as it is (the fast path), and it
 * must be exactly what the full normalisation would make of it; every other spelling still goes
 * through the normalisation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normaliseRequestTarget } from '../../../src/transport/http/request-path.js';

test('request path - canonical paths come back unchanged, with their query', () => {
  for (const url of ['/', '/v1/topics/orders/messages', '/v1/topics/orders/messages?key=a%2Fb&x=1', "/api/topics/it's_(1)~*!", '/a.b/c..d']) {
    const target = normaliseRequestTarget(url);
    assert.ok(target.ok);
    assert.equal(target.url, url === '/' ? '/' : url);
    assert.equal(target.path, url.split('?')[0]);
  }
});

test('request path - other spellings are normalised as before: dots, empty segments, escapes, reserved characters', () => {
  const cases: Array<[string, string]> = [
    ['/a/./b', '/a/b'],
    ['/a/../b', '/b'],
    ['//a//b/', '/a/b'],
    ['/a/', '/a'],
    ['/.hidden/x', '/.hidden/x'],
    ['/v1/topics/orders/messages:batch?encoding=base64', '/v1/topics/orders/messages%3Abatch?encoding=base64'],
    ['/v1/topics/%6Frders/messages', '/v1/topics/orders/messages'],
    ['/a%20b', '/a%20b'],
    ['http://example.com/v1/topics/t/messages?k=v', '/v1/topics/t/messages?k=v'],
  ];
  for (const [raw, url] of cases) {
    const target = normaliseRequestTarget(raw);
    assert.ok(target.ok, raw);
    assert.equal(target.url, url, raw);
  }
  for (const bad of ['/..', '/a/%2F', 'relative', '/a%zz', '/a\u00e9']) assert.equal(normaliseRequestTarget(bad).ok, false, bad);
});
