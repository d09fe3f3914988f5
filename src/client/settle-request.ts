/**
 * A settle frame sent with a request id (today: REJECT), answered by one SETTLED reply with an
 * outcome per entry. Entries appended to the same open frame share the request; each caller gets
 * the outcome at its own position.
 */
import { FerryError } from '../errors.js';
import { FRAME_TYPES, frameTypeName, type Frame } from '../protocol/frame.js';
import { decodeSettled } from '../protocol/codec-settle.js';
import type { PayloadReader } from '../protocol/reader.js';
import type { PendingRequest } from './connection.js';

interface Caller {
  resolve(): void;
  reject(error: unknown): void;
}

export class SettleRequest implements PendingRequest {
  private readonly callers: Caller[] = [];

  constructor(
    readonly id: number,
    public deadlineMs: number,
  ) {}

  /** Adds the caller of the entry just appended to this request's frame. */
  add(caller: Caller): void {
    this.callers.push(caller);
  }

  settle(frame: Frame, reader: PayloadReader): void {
    if (frame.type !== FRAME_TYPES.SETTLED) {
      this.fail(new FerryError('MALFORMED_FRAME', `expected SETTLED, got ${frameTypeName(frame.type)}`));
      return;
    }
    let outcomes;
    try {
      outcomes = decodeSettled(reader.reset(frame.payload));
    } catch (error) {
      this.fail(error as FerryError);
      return;
    }
    this.callers.forEach((caller, index) => {
      const outcome = outcomes[index];
      if (outcome === undefined) caller.reject(new FerryError('MALFORMED_FRAME', 'SETTLED carries fewer outcomes than entries'));
      else if (outcome.code === null) caller.resolve();
      else caller.reject(new FerryError(outcome.code, outcome.message));
    });
  }

  fail(error: FerryError): void {
    for (const caller of this.callers) caller.reject(error);
  }
}
