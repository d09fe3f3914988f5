/**
 * Session frames: HELLO, HELLO_OK, ERROR, GOODBYE (PING, PONG and OK have empty payloads and are
 * written with FrameWriter.emptyFrame). Layouts are in docs/PROTOCOL.md.
 */
import { ERROR_CODES, errorCodeFromWire, FerryError } from '../errors.js';
import { FRAME_TYPES } from './frame.js';
import type { ErrorReply, Goodbye, HelloOk, HelloRequest } from './messages.js';
import { malformed, type PayloadReader } from './reader.js';
import type { FrameWriter } from './writer.js';

const HELLO_TAG_AUTH_TOKEN = 1;
const HELLO_TAG_FRAME_BYTES_MAX = 2;
const HELLO_TAG_USER = 3;
const HELLO_TAG_PASSWORD = 4;
/** HELLO_OK tag 1: the broker's node id, sent only by a broker in cluster mode. */
const HELLO_OK_TAG_CLUSTER_NODE_ID = 1;
/**
 * Longest user name or password accepted in HELLO: far above any real one, and it bounds what a
 * client makes the server hash before it is authenticated.
 */
export const HELLO_CREDENTIAL_CHARS_MAX = 1024;
/**
 * Longest client name kept from HELLO: the name is a label for logs and the admin view, so a longer
 * one is cut here rather than carried into every log line about the connection.
 */
export const CLIENT_NAME_CHARS_MAX = 256;
/** Versions listed in one HELLO: a handful at most; more is a malformed frame. */
const HELLO_VERSIONS_MAX = 32;

export function encodeHello(w: FrameWriter, requestId: number, hello: HelloRequest): void {
  w.beginFrame(FRAME_TYPES.HELLO, requestId);
  w.string16(hello.clientName);
  w.u8(hello.versions.length);
  for (const version of hello.versions) w.u8(version);
  const tagged = w.taggedBegin();
  let count = 0;
  if (hello.authToken !== undefined) {
    w.tagString(HELLO_TAG_AUTH_TOKEN, hello.authToken);
    count++;
  }
  if (hello.frameBytesMax !== undefined) {
    w.tagU32(HELLO_TAG_FRAME_BYTES_MAX, hello.frameBytesMax);
    count++;
  }
  if (hello.user !== undefined) {
    w.tagString(HELLO_TAG_USER, hello.user);
    count++;
  }
  if (hello.password !== undefined) {
    w.tagString(HELLO_TAG_PASSWORD, hello.password);
    count++;
  }
  w.taggedEnd(tagged, count);
  w.endFrame();
}

function visitHello(tag: number, r: PayloadReader, hello: HelloRequest): void {
  if (tag === HELLO_TAG_AUTH_TOKEN) hello.authToken = credential(r.string32(), 'token');
  else if (tag === HELLO_TAG_FRAME_BYTES_MAX) hello.frameBytesMax = r.u32();
  else if (tag === HELLO_TAG_USER) hello.user = credential(r.string32(), 'user');
  else if (tag === HELLO_TAG_PASSWORD) hello.password = credential(r.string32(), 'password');
}

function credential(text: string, what: string): string {
  if (text.length > HELLO_CREDENTIAL_CHARS_MAX) throw malformed(`HELLO ${what} longer than ${HELLO_CREDENTIAL_CHARS_MAX} characters`);
  return text;
}

export function decodeHello(r: PayloadReader): HelloRequest {
  const clientName = r.string16().slice(0, CLIENT_NAME_CHARS_MAX);
  const versionCount = r.u8();
  if (versionCount === 0 || versionCount > HELLO_VERSIONS_MAX) throw malformed(`HELLO lists ${versionCount} versions`);
  const versions: number[] = [];
  for (let i = 0; i < versionCount; i++) versions.push(r.u8());
  const hello: HelloRequest = { clientName, versions };
  r.tagged(visitHello, hello);
  r.done();
  return hello;
}

export function encodeHelloOk(w: FrameWriter, requestId: number, ok: HelloOk): void {
  w.beginFrame(FRAME_TYPES.HELLO_OK, requestId);
  w.u8(ok.version);
  w.string16(ok.serverName);
  w.u32(ok.frameBytesMax);
  w.u32(ok.payloadBytesMax);
  w.u32(ok.heartbeatIntervalMs);
  if (ok.clusterNodeId === undefined) {
    w.u8(0);
  } else {
    const tagged = w.taggedBegin();
    const at = w.tagBegin(HELLO_OK_TAG_CLUSTER_NODE_ID);
    w.string16(ok.clusterNodeId);
    w.tagEnd(at);
    w.taggedEnd(tagged, 1);
  }
  w.endFrame();
}

function visitHelloOk(tag: number, r: PayloadReader, ok: HelloOk): void {
  if (tag === HELLO_OK_TAG_CLUSTER_NODE_ID) ok.clusterNodeId = r.string16();
}

export function decodeHelloOk(r: PayloadReader): HelloOk {
  const ok: HelloOk = {
    version: r.u8(),
    serverName: r.string16(),
    frameBytesMax: r.u32(),
    payloadBytesMax: r.u32(),
    heartbeatIntervalMs: r.u32(),
  };
  r.tagged(visitHelloOk, ok);
  r.done();
  return ok;
}

export function encodeError(w: FrameWriter, requestId: number, error: ErrorReply): void {
  w.beginFrame(FRAME_TYPES.ERROR, requestId);
  w.u16(ERROR_CODES[error.code].wire);
  w.string16(truncate(error.message));
  w.string32(error.detail === undefined ? '' : safeJson(error.detail));
  w.u8(0);
  w.endFrame();
}

export function decodeError(r: PayloadReader): ErrorReply {
  const code = errorCodeFromWire(r.u16());
  const message = r.string16();
  const detailJson = r.string32();
  r.skipTagged();
  r.done();
  const reply: ErrorReply = { code, message };
  if (detailJson.length > 0) {
    let detail: unknown;
    try {
      detail = JSON.parse(detailJson);
    } catch {
      throw malformed('ERROR detail is not JSON');
    }
    if (typeof detail === 'object' && detail !== null && !Array.isArray(detail)) {
      reply.detail = detail as Record<string, unknown>;
    }
  }
  return reply;
}

/** The FerryError a received ERROR frame stands for. */
export function errorFromReply(reply: ErrorReply): FerryError {
  return new FerryError(reply.code, reply.message, reply.detail === undefined ? {} : { detail: reply.detail });
}

export function encodeGoodbye(w: FrameWriter, requestId: number, goodbye: Goodbye): void {
  w.beginFrame(FRAME_TYPES.GOODBYE, requestId);
  w.u16(ERROR_CODES[goodbye.code].wire);
  w.string16(truncate(goodbye.message));
  w.u8(0);
  w.endFrame();
}

export function decodeGoodbye(r: PayloadReader): Goodbye {
  const goodbye: Goodbye = { code: errorCodeFromWire(r.u16()), message: r.string16() };
  r.skipTagged();
  r.done();
  return goodbye;
}

/** Messages travel as u16-length strings; 1,000 characters is plenty for a human-readable reason. */
const MESSAGE_CHARS_MAX = 1000;

function truncate(message: string): string {
  return message.length <= MESSAGE_CHARS_MAX ? message : message.slice(0, MESSAGE_CHARS_MAX);
}

function safeJson(detail: Record<string, unknown>): string {
  try {
    return JSON.stringify(detail, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value));
  } catch {
    return '';
  }
}
