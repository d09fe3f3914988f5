/**
 * What became of each datagram the UDP port received: stored, or dropped for one reason. Counted
 * here and shown as `ferry_udp_datagrams_total{outcome}` (docs/OPERATIONS.md, "UDP ingest").
 * Datagrams the kernel dropped before the broker read them (a full socket buffer) are not seen
 * here: the host's `RcvbufErrors` (/proc/net/snmp) counts those.
 *
 * The receiver thread (receiver-worker.ts) and the broker's thread both count (the receiver its
 * `oversized` and `overloaded` drops, the broker's thread the rest), into one set of counters in
 * memory both share.
 */
export const UDP_OUTCOMES = [
  /** Appended to its topic. */
  'stored',
  /** Neither form parses (bad magic or version, a field past the end, a bad topic name, a ferry-* header). */
  'malformed',
  /** Longer than udp.datagramBytesMax, or a key, headers or message over the limits.* settings. */
  'oversized',
  /** Its topic matches none of udp.topics. */
  'forbidden',
  /** Its source address sent more than udp.sourceMessagesPerSecond (with the burst). */
  'rate_limited',
  /**
   * The broker is behind, and UDP cannot wait: its thread had UDP_HANDOFF_BYTES_MAX of datagrams
   * not yet taken from the receiver, or UDP_IN_FLIGHT_BYTES_MAX taken and not yet stored.
   */
  'overloaded',
  /** The topic does not exist (or not on this broker, in a cluster). */
  'unknown_topic',
  /** The store refused or failed (memory or disk admission, a closing broker, not the topic's leader). */
  'failed',
] as const;

export type UdpOutcome = (typeof UDP_OUTCOMES)[number];

const OUTCOME_INDEX = Object.fromEntries(UDP_OUTCOMES.map((outcome, index) => [outcome, index])) as Record<UdpOutcome, number>;

/**
 * One counter per outcome, in shared memory (64-bit, added atomically): each thread holding the
 * buffer counts into the same numbers, read at scrape time.
 */
export class DatagramCounts {
  readonly buffer: SharedArrayBuffer;
  private readonly counts: BigInt64Array;

  /** New counters, or (with `buffer`) the ones another thread made. */
  constructor(buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(UDP_OUTCOMES.length * BigInt64Array.BYTES_PER_ELEMENT);
    this.counts = new BigInt64Array(this.buffer);
  }

  add(outcome: UdpOutcome, count = 1): void {
    Atomics.add(this.counts, OUTCOME_INDEX[outcome], BigInt(count));
  }

  get(outcome: UdpOutcome): number {
    return Number(Atomics.load(this.counts, OUTCOME_INDEX[outcome]));
  }

  /** Every outcome with its count, zeros included, in UDP_OUTCOMES order. */
  entries(): Array<{ outcome: UdpOutcome; count: number }> {
    return UDP_OUTCOMES.map((outcome) => ({ outcome, count: this.get(outcome) }));
  }
}
