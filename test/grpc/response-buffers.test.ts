/**
 * A Consume stream's response buffers: a written buffer is filled again by a later response, one
 * still being written never is, and nothing that was not taken here (a slice of Node's shared
 * pool) is ever kept.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResponseBuffers } from '../../src/transport/grpc/response-buffers.js';

test('response buffers - a written buffer is reused; one not given back is not; foreign buffers are ignored', () => {
  const buffers = new ResponseBuffers();
  const first = buffers.take(1000);
  assert.equal(first.length, 1000);
  const second = buffers.take(2000);
  assert.notEqual(second.buffer, first.buffer, 'a buffer still being written is not handed out again');
  buffers.give(first);
  const third = buffers.take(500);
  assert.equal(third.buffer, first.buffer, 'the written buffer is filled again');
  assert.equal(third.length, 500);
  buffers.give(Buffer.allocUnsafe(100));
  buffers.give(Buffer.from('pooled'));
  assert.equal(buffers.spareCount, 0, 'only buffers taken here come back');
});

test('response buffers - a response larger than any spare gets a new buffer; a very large one is not kept', () => {
  const buffers = new ResponseBuffers();
  const small = buffers.take(10);
  buffers.give(small);
  const large = buffers.take(small.buffer.byteLength + 1);
  assert.notEqual(large.buffer, small.buffer);
  assert.equal(buffers.spareCount, 1);
  const huge = buffers.take(64 * 1024 * 1024);
  buffers.give(huge);
  assert.equal(buffers.spareCount, 1, 'a 64 MiB buffer is dropped, not pinned');
});
