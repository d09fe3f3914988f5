/**
 * The Node request of a gRPC or Connect call, handed to the services through connect's context
 * values: the broker a call may use depends on who sent the request, and the security wrapper
 * leaves the caller on the request itself (security/http-auth.ts), not in an async context.
 */
import type { IncomingMessage } from 'node:http';
import { createContextKey, createContextValues, type ContextValues, type HandlerContext } from '@connectrpc/connect';
import { FerryError } from '../../errors.js';

const CALL_REQUEST = createContextKey<IncomingMessage | null>(null, { description: 'ferry: the node request of a call' });

/** The context values of a call made by `req`. */
export function callValues(req: IncomingMessage): ContextValues {
  return createContextValues().set(CALL_REQUEST, req);
}

/** The request of the call; a call without one (never served by the handler) fails closed. */
export function requestOfValues(values: ContextValues): IncomingMessage {
  const req = values.get(CALL_REQUEST);
  if (req === null) throw new FerryError('AUTH_REQUIRED', 'authentication required');
  return req;
}

/** requestOfValues for a service method. */
export function callRequest(context: HandlerContext): IncomingMessage {
  return requestOfValues(context.values);
}
