import { test } from 'node:test';
import assert from 'node:assert/strict';
import { needsIndexEntry, OFFSET_INDEX_ENTRY_BYTES, SegmentIndex, TIME_INDEX_ENTRY_BYTES } from '../../src/storage/segment-index.js';

function sampleIndex(): SegmentIndex {
  const index = new SegmentIndex();
  // relative offset, position, running max timestamp
  for (let i = 0; i < 200; i++) index.add(i * 10, i * 4_096, 1_000 + i * 5);
  return index;
}

test('offset index - binary search finds the last entry at or before an offset', () => {
  const index = sampleIndex();
  assert.equal(index.floorByOffset(0), 0);
  assert.equal(index.floorByOffset(9), 0);
  assert.equal(index.floorByOffset(10), 1);
  assert.equal(index.floorByOffset(1_999), 199);
  assert.equal(index.floorByOffset(1_000_000), 199);
  assert.equal(new SegmentIndex().floorByOffset(5), -1);
  assert.equal(index.firstAfterPosition(0), 1);
  assert.equal(index.firstAfterPosition(-1), 0);
  assert.equal(index.firstAfterPosition(4_096 * 199), 200);
});

test('time index - binary search finds the first entry whose running max reaches a time', () => {
  const index = sampleIndex();
  assert.equal(index.firstWithMaxTimestampAtLeast(0), 0);
  assert.equal(index.firstWithMaxTimestampAtLeast(1_000), 0);
  assert.equal(index.firstWithMaxTimestampAtLeast(1_001), 1);
  assert.equal(index.firstWithMaxTimestampAtLeast(1_995), 199);
  assert.equal(index.firstWithMaxTimestampAtLeast(1_996), 200);
});

test('index files - round-trip through their byte format', () => {
  const index = sampleIndex();
  const offsetFile = index.encodeOffsetIndex();
  const timeFile = index.encodeTimeIndex();
  assert.equal(offsetFile.length, 200 * OFFSET_INDEX_ENTRY_BYTES);
  assert.equal(timeFile.length, 200 * TIME_INDEX_ENTRY_BYTES);
  const decoded = SegmentIndex.decode(offsetFile, timeFile, 200 * 4_096);
  assert.ok(decoded instanceof SegmentIndex, String(decoded));
  for (let i = 0; i < 200; i++) {
    assert.equal(decoded.relativeOffsetAt(i), index.relativeOffsetAt(i));
    assert.equal(decoded.positionAt(i), index.positionAt(i));
    assert.equal(decoded.maxTimestampAt(i), index.maxTimestampAt(i));
  }
});

test('index files - damaged files are refused with a reason', () => {
  const index = sampleIndex();
  const offsetFile = index.encodeOffsetIndex();
  const timeFile = index.encodeTimeIndex();
  const size = 200 * 4_096;
  assert.match(String(SegmentIndex.decode(offsetFile.subarray(0, 13), timeFile, size)), /multiple/);
  assert.match(String(SegmentIndex.decode(offsetFile.subarray(0, 16), timeFile, size)), /differ/);
  assert.match(String(SegmentIndex.decode(offsetFile, timeFile, 4_096 * 100)), /past the end/);
  const swapped = Buffer.from(offsetFile);
  swapped.writeUInt32BE(5, 8 * 50);
  assert.equal(typeof SegmentIndex.decode(swapped, timeFile, size), 'string');
  const earlier = Buffer.from(timeFile);
  earlier.writeUInt32BE(0, 12 * 60 + 4);
  assert.match(String(SegmentIndex.decode(offsetFile, earlier, size)), /timestamps decrease/);
  assert.ok(SegmentIndex.decode(Buffer.alloc(0), Buffer.alloc(0), 0) instanceof SegmentIndex);
});

test('index cadence - the first batch, then one entry per indexIntervalBytes', () => {
  assert.equal(needsIndexEntry(-1, 0, 4_096), true);
  assert.equal(needsIndexEntry(0, 4_095, 4_096), false);
  assert.equal(needsIndexEntry(0, 4_096, 4_096), true);
});
