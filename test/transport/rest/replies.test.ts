/**
 * How the REST endpoints answer (replies.ts): the header list of a JSON answer, cached per body
 * length, stays the same list for every answer of that length, whatever headers another answer added.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { sendJson } from '../../../src/transport/rest/replies.js';

function response(): { res: ServerResponse; heads: Array<{ status: number; headers: string[] }>; bodies: string[] } {
  const heads: Array<{ status: number; headers: string[] }> = [];
  const bodies: string[] = [];
  const res = {
    writeHead: (status: number, headers: string[]) => void heads.push({ status, headers: [...headers] }),
    end: (text: string) => void bodies.push(text),
  } as unknown as ServerResponse;
  return { res, heads, bodies };
}

test('rest replies - every answer carries its own length, and headers added to one answer stay off the next', () => {
  const { res, heads, bodies } = response();
  const short = '{"partition":0,"offset":7,"durability":"synced"}';
  const accented = '{"message":"déjà"}';
  sendJson(res, 200, short);
  sendJson(res, 405, short, ['allow', 'POST']);
  sendJson(res, 200, short);
  sendJson(res, 200, accented);
  const long = JSON.stringify({ error: { code: 'INVALID_ARGUMENT', message: 'x'.repeat(400) } });
  sendJson(res, 400, long);
  const plain = (bytes: number): string[] => ['content-type', 'application/json; charset=utf-8', 'content-length', String(bytes), 'cache-control', 'no-store'];
  assert.deepEqual(heads, [
    { status: 200, headers: plain(short.length) },
    { status: 405, headers: [...plain(short.length), 'allow', 'POST'] },
    { status: 200, headers: plain(short.length) },
    { status: 200, headers: plain(Buffer.byteLength(accented)) },
    { status: 400, headers: plain(Buffer.byteLength(long)) },
  ]);
  assert.deepEqual(bodies, [short, short, short, accented, long]);
});
