/**
 * Test fixtures for the broker on the simulated clock and disk: a broker incarnation, a recording
 * sink, and helpers to run a few turns of the event loop.
 */
import { Broker, type BrokerOptions } from '../../src/broker/broker.js';
import type { Delivery, DeliverySink } from '../../src/broker/types.js';
import { SimClock, settle } from '../sim/sim-clock.js';
import { SimFileSystem } from '../sim/sim-fs.js';
import { seededRandom } from '../sim/random.js';

export class RecordingSink implements DeliverySink {
  readonly received: Delivery[] = [];
  open = true;
  deliver(delivery: Delivery): void {
    this.received.push(delivery);
  }
  writable(): boolean {
    return this.open;
  }
  get last(): Delivery | undefined {
    return this.received.at(-1);
  }
}

export interface SimWorld {
  fs: SimFileSystem;
  clock: SimClock;
  broker: Broker;
}

export const SIM_DIR = '/data';

export async function openSimBroker(
  fs: SimFileSystem = new SimFileSystem(),
  clock: SimClock = new SimClock(),
  options: Partial<BrokerOptions> = {},
): Promise<SimWorld> {
  const broker = await Broker.open({ dir: SIM_DIR, fs, clock, random: seededRandom(7), ...options });
  return { fs, clock, broker };
}

/** Lets promise chains over the in-memory disk finish. */
export async function flush(): Promise<void> {
  await settle();
  await settle();
}

export function values(sink: RecordingSink): string[] {
  return sink.received.map((delivery) => delivery.value.toString());
}
