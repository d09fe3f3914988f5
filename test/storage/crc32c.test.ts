import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32c, crc32cImplementation, crc32cJs } from '../../src/storage/crc32c.js';
import { randomBytes, randomInt, seededRandom } from '../sim/random.js';

/** The CRC32C of the ASCII digits 1..9: the check value every implementation publishes. */
const CHECK_VALUE = 0xe3069283;

test('crc32c - both implementations give the standard check value', () => {
  assert.equal(crc32c(Buffer.from('123456789')), CHECK_VALUE);
  assert.equal(crc32cJs(Buffer.from('123456789')), CHECK_VALUE);
  assert.equal(crc32cJs(new Uint8Array(0)), 0);
  assert.ok(crc32cImplementation === 'native' || crc32cImplementation === 'js');
});

test('crc32c - the JS fallback equals the native module on random inputs of every alignment', () => {
  const random = seededRandom(7);
  for (let i = 0; i < 300; i++) {
    const data = randomBytes(random, randomInt(random, 0, 2_100));
    const start = randomInt(random, 0, Math.min(9, data.length));
    const view = data.subarray(start);
    assert.equal(crc32cJs(view), crc32c(view), `length ${view.length}`);
  }
});

test('crc32c - continues a checksum across chunks', () => {
  const random = seededRandom(11);
  const data = randomBytes(random, 5_000);
  const whole = crc32c(data);
  for (const cut of [0, 1, 7, 8, 9, 1_000, 4_999, 5_000]) {
    assert.equal(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut))), whole, `native, cut at ${cut}`);
    assert.equal(crc32cJs(data.subarray(cut), crc32cJs(data.subarray(0, cut))), whole, `js, cut at ${cut}`);
  }
});
