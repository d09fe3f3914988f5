/**
 * A message's priority travels as a header: `ferry-priority`, 0 (the default) to PRIORITY_MAX. The
 * client, the embedded broker and gRPC take it as a number and make the header here, checked once.
 */
import { FerryError } from '../errors.js';
import type { WireHeader } from './messages.js';

export const PRIORITY_HEADER = 'ferry-priority';
/** Ten levels, as RabbitMQ recommends at most: enough to order work, few enough to keep a queue fair. */
export const PRIORITY_MAX = 9;

/** The header for `priority`, or INVALID_ARGUMENT naming `field` when it is not an integer from 0 to PRIORITY_MAX. */
export function priorityHeader(priority: number, field = 'priority'): WireHeader {
  if (!Number.isInteger(priority) || priority < 0 || priority > PRIORITY_MAX) {
    throw new FerryError('INVALID_ARGUMENT', `${field} must be an integer from 0 to ${PRIORITY_MAX}, got ${priority}`);
  }
  return [PRIORITY_HEADER, String(priority)];
}
