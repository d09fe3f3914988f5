/**
 * A REST publish request as the broker's messages: the body is the value byte for byte, and the
 * request's headers say the rest (docs/HTTP.md):
 *
 * - `?key=` or `Ferry-Key`: the key (UTF-8); the query wins.
 * - `Ferry-Id`: the message id for exactly-once publish.
 * - `Ferry-Delay-Ms` (milliseconds) or `Ferry-Deliver-At` (ms since the epoch, or a date such as
 *   RFC 3339 or an HTTP date): a delayed message.
 * - `Ferry-Priority`: 0 to 9 (the `ferry-priority` message header).
 * - `Ferry-Header-<name>: value`: the message header `<name>` (lower case, as HTTP headers are).
 * - `traceparent` and `tracestate`: carried into the message, so a consumer continues the trace.
 * - `content-type`: stored as the message header `content-type` (single publishes only; for a batch
 *   it describes the body's form).
 *
 * Batches (`messages:batch`) take a JSON array of `{value, key, headers, id}` when the content type
 * is JSON, newline-delimited values otherwise; values (and keys) are UTF-8 text unless
 * `?encoding=base64`. The request's headers above (not the key or id) apply to every message.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { FerryError } from '../../errors.js';
import type { Header, PublishMessage } from '../../broker/types.js';
import { priorityHeader } from '../../protocol/priority.js';
import { TRACEPARENT_HEADER, TRACESTATE_HEADER } from '../../protocol/tracing.js';
import { HEADER_PREFIX } from './limits.js';

export type ValueEncoding = 'utf8' | 'base64';

/** Standard base64 (RFC 4648, section 4), padded or not. */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** A whole number of milliseconds, as `Ferry-Delay-Ms` and an epoch `Ferry-Deliver-At` are written. */
const DIGITS = /^\d{1,16}$/;

/** What every message of one request shares: the headers, delay and priority its HTTP headers give. */
interface Common {
  headers: Header[];
  delayMs?: number;
  deliverAtMs?: number;
}

/** The message of a single publish: `value` is the request body. */
export function singleMessage(headers: IncomingHttpHeaders, query: URLSearchParams | null, value: Buffer): PublishMessage {
  const common = commonParts(headers);
  const contentType = headers['content-type'];
  if (contentType !== undefined) common.headers.push(['content-type', contentType]);
  const message: PublishMessage = { value, headers: common.headers };
  const key = query?.get('key') ?? single(headers['ferry-key']);
  if (key !== undefined && key !== null) message.key = Buffer.from(key, 'utf8');
  const id = single(headers['ferry-id']);
  if (id !== undefined) message.id = id;
  if (common.delayMs !== undefined) message.delayMs = common.delayMs;
  if (common.deliverAtMs !== undefined) message.deliverAtMs = common.deliverAtMs;
  return message;
}

/** `?encoding=`: utf8 (the default) or base64. */
export function valueEncoding(query: URLSearchParams | null): ValueEncoding {
  const encoding = query?.get('encoding') ?? 'utf8';
  if (encoding === 'utf8' || encoding === 'base64') return encoding;
  throw new FerryError('INVALID_ARGUMENT', `encoding must be utf8 or base64, got ${JSON.stringify(encoding.slice(0, 32))}`);
}

/** The messages of a batch publish. */
export function batchMessages(headers: IncomingHttpHeaders, query: URLSearchParams | null, body: Buffer): PublishMessage[] {
  if (headers['ferry-id'] !== undefined) throw new FerryError('INVALID_ARGUMENT', 'Ferry-Id names one message: give each message of a batch its own "id" (JSON form)');
  const encoding = valueEncoding(query);
  const common = commonParts(headers);
  const isJson = /^application\/json\b/i.test(headers['content-type'] ?? '');
  const messages = isJson ? jsonMessages(body, encoding, common) : lineMessages(body, encoding, common);
  if (messages.length === 0) throw new FerryError('INVALID_ARGUMENT', 'the batch holds no messages');
  return messages;
}

function lineMessages(body: Buffer, encoding: ValueEncoding, common: Common): PublishMessage[] {
  const messages: PublishMessage[] = [];
  let start = 0;
  let line = 0;
  while (start < body.length) {
    let end = body.indexOf(0x0a, start);
    const next = end < 0 ? body.length : end + 1;
    if (end < 0) end = body.length;
    // CRLF line ends count as LF (a shell here-document or a Windows file).
    const last = end > start && body[end - 1] === 0x0d ? end - 1 : end;
    const raw = body.subarray(start, last);
    const value = encoding === 'utf8' ? Buffer.from(raw) : decodeBase64(raw.toString('latin1'), `line ${line + 1}`);
    messages.push(withCommon({ value }, common));
    start = next;
    line++;
  }
  return messages;
}

function jsonMessages(body: Buffer, encoding: ValueEncoding, common: Common): PublishMessage[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new FerryError('INVALID_ARGUMENT', `the batch is not JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(parsed)) throw new FerryError('INVALID_ARGUMENT', 'a JSON batch is an array of {value, key, headers, id}');
  return parsed.map((entry: unknown, index) => jsonMessage(entry, index, encoding, common));
}

function jsonMessage(entry: unknown, index: number, encoding: ValueEncoding, common: Common): PublishMessage {
  const where = `message ${index}`;
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new FerryError('INVALID_ARGUMENT', `${where}: expected an object {value, key, headers, id}`);
  const { value, key, headers, id, ...unknown } = entry as Record<string, unknown>;
  const extra = Object.keys(unknown);
  if (extra.length > 0) throw new FerryError('INVALID_ARGUMENT', `${where}: unknown field ${extra[0]} (fields: value, key, headers, id)`);
  if (typeof value !== 'string') throw new FerryError('INVALID_ARGUMENT', `${where}: value must be a string (${encoding === 'utf8' ? 'UTF-8 text' : 'base64'})`);
  const message: PublishMessage = { value: encoding === 'utf8' ? Buffer.from(value, 'utf8') : decodeBase64(value, `${where} value`) };
  if (key !== undefined && key !== null) {
    if (typeof key !== 'string') throw new FerryError('INVALID_ARGUMENT', `${where}: key must be a string`);
    message.key = encoding === 'utf8' ? Buffer.from(key, 'utf8') : decodeBase64(key, `${where} key`);
  }
  if (id !== undefined) {
    if (typeof id !== 'string' || id === '') throw new FerryError('INVALID_ARGUMENT', `${where}: id must be a non-empty string`);
    message.id = id;
  }
  const own: Header[] = [];
  if (headers !== undefined) {
    if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) throw new FerryError('INVALID_ARGUMENT', `${where}: headers must be an object of strings`);
    for (const [name, headerValue] of Object.entries(headers)) {
      if (typeof headerValue !== 'string') throw new FerryError('INVALID_ARGUMENT', `${where}: header ${name} must be a string`);
      own.push([name, headerValue]);
    }
  }
  return withCommon(message, common, own);
}

function withCommon(message: PublishMessage, common: Common, own: Header[] = []): PublishMessage {
  message.headers = own.length === 0 ? common.headers : [...common.headers, ...own];
  if (common.delayMs !== undefined) message.delayMs = common.delayMs;
  if (common.deliverAtMs !== undefined) message.deliverAtMs = common.deliverAtMs;
  return message;
}

/** The parts every message of a request takes from its HTTP headers. */
function commonParts(headers: IncomingHttpHeaders): Common {
  const result: Common = { headers: [] };
  for (const name in headers) {
    if (!name.startsWith('ferry-') && name !== TRACEPARENT_HEADER && name !== TRACESTATE_HEADER) continue;
    const value = single(headers[name]);
    if (value === undefined) continue;
    if (name === TRACEPARENT_HEADER || name === TRACESTATE_HEADER) result.headers.push([name, value]);
    else if (name.startsWith(HEADER_PREFIX)) {
      const headerName = name.slice(HEADER_PREFIX.length);
      if (headerName === '') throw new FerryError('INVALID_ARGUMENT', 'Ferry-Header- needs a name after it: Ferry-Header-<name>: value');
      result.headers.push([headerName, value]);
    } else if (name === 'ferry-priority') result.headers.push(priorityHeader(Number(value.trim() === '' ? NaN : value), 'Ferry-Priority'));
    else if (name === 'ferry-delay-ms') result.delayMs = wholeMs(value, 'Ferry-Delay-Ms');
    else if (name === 'ferry-deliver-at') result.deliverAtMs = instantMs(value);
  }
  return result;
}

/** A header sent once; sent twice it is ambiguous (Node joins most repeats with ", "). */
function single(value: string | string[] | undefined): string | undefined {
  if (Array.isArray(value)) throw new FerryError('INVALID_ARGUMENT', 'a Ferry header was sent more than once');
  return value;
}

function wholeMs(value: string, header: string): number {
  const text = value.trim();
  if (!DIGITS.test(text)) throw new FerryError('INVALID_ARGUMENT', `${header} must be a whole number of milliseconds, got ${JSON.stringify(value.slice(0, 32))}`);
  return Number(text);
}

/** `Ferry-Deliver-At`: milliseconds since the epoch, or a date Date.parse reads (RFC 3339, HTTP date). */
function instantMs(value: string): number {
  const text = value.trim();
  if (DIGITS.test(text)) return Number(text);
  const parsed = Date.parse(text);
  if (Number.isNaN(parsed)) throw new FerryError('INVALID_ARGUMENT', `Ferry-Deliver-At must be milliseconds since the epoch or a date (2026-01-02T03:04:05Z), got ${JSON.stringify(value.slice(0, 40))}`);
  return parsed;
}

function decodeBase64(text: string, where: string): Buffer {
  if (text.length % 4 === 1 || !BASE64.test(text)) throw new FerryError('INVALID_ARGUMENT', `${where} is not base64`);
  return Buffer.from(text, 'base64');
}
