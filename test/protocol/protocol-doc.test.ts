import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES, type ErrorCode } from '../../src/errors.js';
import { FRAME_TYPES, type FrameTypeName } from '../../src/protocol/frame.js';
import { FRAME_HEADER_BYTES } from '../../src/protocol/limits.js';

const doc = readFileSync(new URL('../../docs/PROTOCOL.md', import.meta.url), 'utf8');

test('protocol doc - lists every frame type with its number', () => {
  for (const name of Object.keys(FRAME_TYPES) as FrameTypeName[]) {
    const hex = `0x${FRAME_TYPES[name].toString(16).padStart(2, '0')}`;
    assert.match(doc, new RegExp(`\\| ${hex} \\| ${name} +\\|`), `${name} (${hex}) missing from docs/PROTOCOL.md`);
  }
});

test('protocol doc - lists every error code with its wire number and fatality', () => {
  for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
    const spec = ERROR_CODES[code];
    assert.match(doc, new RegExp(`\\| \`${code}\` \\| ${spec.wire} \\| ${spec.fatal ? 'yes' : 'no'} \\|`), `${code} missing`);
  }
});

test('protocol doc - the header size matches', () => {
  assert.match(doc, new RegExp(`## Frame header \\(${FRAME_HEADER_BYTES} bytes\\)`));
});
