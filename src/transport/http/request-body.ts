/**
 * A request's body read by listeners, for the hot handlers (the REST publish, the gRPC/Connect
 * Publish fast path): no promise and no async iterator per request, whose machinery cost more than
 * the rest of reading a small body. A body that arrives in one chunk (a small one usually does) is
 * that chunk, not a copy.
 */
import type { IncomingMessage } from 'node:http';

const EMPTY_BODY = Buffer.alloc(0);

/**
 * Reads `req`'s body and calls `done` once with `bytes` read: the body whole; or, once more than
 * `bytesMax` has come, the chunks read so far (the last one past the limit), after which nothing
 * more is read here (pause the request or answer it); or null when the request failed mid-body
 * (the client went away: nobody is left to read an answer). An error listener stays on the
 * request: without one, a stream error after the body could end the process.
 */
export function readRequestBody(req: IncomingMessage, bytesMax: number, done: (read: Buffer | Buffer[] | null, bytes: number) => void): void {
  let first: Buffer | null = null;
  let more: Buffer[] | null = null;
  let bytes = 0;
  let settled = false;
  const settle = (read: Buffer | Buffer[] | null): void => {
    settled = true;
    req.off('data', onData);
    req.off('end', onEnd);
    done(read, bytes);
  };
  const onData = (chunk: Buffer): void => {
    bytes += chunk.length;
    if (first === null) first = chunk;
    else (more ??= [first]).push(chunk);
    if (bytes > bytesMax) settle(more ?? [first]);
  };
  const onEnd = (): void => settle(more !== null ? Buffer.concat(more, bytes) : (first ?? EMPTY_BODY));
  const onError = (): void => {
    if (!settled) settle(null);
  };
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('error', onError);
}
