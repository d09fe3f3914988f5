/**
 * A connection's frames handled in turns (src/transport/tcp/turns.ts): opened subscriptions weigh
 * more of a turn's budget than other frames, so a client opening a thousand at once does not hold
 * the loop for long turns; refused ones stay cheap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SystemClock } from '../../src/platform/clock.js';
import { silentLogger } from '../../src/platform/logger.js';
import { FRAME_TYPES, type Frame, type FrameType } from '../../src/protocol/frame.js';
import { FrameTurns, SUBSCRIBE_FRAME_WEIGHT, type TurnHost } from '../../src/transport/tcp/turns.js';

/** A host whose SUBSCRIBEs open subscriptions up to `subscriptionsMax`, then are refused; it counts frames per turn. */
function host(subscriptionsMax: number): TurnHost & { perTurn: number[]; handled: number } {
  let subscriptions = 0;
  /** A turn is one macrotask: the frames handled before the microtask queue next runs. */
  let inTurn = false;
  const fake = {
    state: 'open' as const,
    stopped: false,
    refusals: 0,
    logger: silentLogger,
    perTurn: [] as number[],
    handled: 0,
    admitHandshake: () => true,
    handleAt(frames: Frame[], i: number): number {
      if (!inTurn) {
        inTurn = true;
        fake.perTurn.push(0);
        queueMicrotask(() => (inTurn = false));
      }
      fake.perTurn[fake.perTurn.length - 1]!++;
      fake.handled++;
      if (frames[i]!.type === FRAME_TYPES.SUBSCRIBE && subscriptions++ >= subscriptionsMax) fake.refusals++;
      return i + 1;
    },
    pauseReading: () => undefined,
    resumeReading: () => undefined,
    throttled: () => undefined,
    logFields: () => ({}),
  };
  return fake;
}

function frames(type: FrameType, count: number): Frame[] {
  return Array.from({ length: count }, (_, i) => ({ version: 1, type, flags: 0, requestId: i + 1, payload: Buffer.alloc(0) }));
}

/** Pushes `batch` and runs the turns until every frame is handled; the frames handled in each turn. */
async function turnsFor(fake: ReturnType<typeof host>, batch: Frame[]): Promise<number[]> {
  const turns = new FrameTurns(fake, new SystemClock());
  fake.perTurn.length = 0;
  fake.handled = 0;
  turns.push(batch);
  while (fake.handled < batch.length) await new Promise((resolve) => setTimeout(resolve, 2));
  return [...fake.perTurn];
}

test('turns - SUBSCRIBEs that open subscriptions are handled FRAMES_PER_TURN_MAX / SUBSCRIBE_FRAME_WEIGHT a turn', async () => {
  const perTurn = await turnsFor(host(1024), frames(FRAME_TYPES.SUBSCRIBE, 64));
  assert.equal(perTurn[0], 128 / SUBSCRIBE_FRAME_WEIGHT, `per turn: ${perTurn.join(' ')}`);
  assert.deepEqual(perTurn, [16, 16, 16, 16]);
});

test('turns - refused SUBSCRIBEs and other frames count one each: 128 a turn', async () => {
  assert.deepEqual(await turnsFor(host(0), frames(FRAME_TYPES.SUBSCRIBE, 300)), [128, 128, 44]);
  assert.deepEqual(await turnsFor(host(0), frames(FRAME_TYPES.PING, 200)), [128, 72]);
});
