/**
 * What became of each datagram the UDP port received: stored, or dropped for one reason. Counted
 * here and shown as `ferry_udp_datagrams_total{outcome}` (docs/OPERATIONS.md, "UDP ingest").
 * Datagrams the kernel dropped before the broker read them (a full socket buffer) are not seen
 * here: the host's `RcvbufErrors` (/proc/net/snmp) counts those.
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
  /** The broker had UDP_IN_FLIGHT_BYTES_MAX of datagrams not yet stored: it is behind, and UDP cannot wait. */
  'overloaded',
  /** The topic does not exist (or not on this broker, in a cluster). */
  'unknown_topic',
  /** The store refused or failed (memory or disk admission, a closing broker, not the topic's leader). */
  'failed',
] as const;

export type UdpOutcome = (typeof UDP_OUTCOMES)[number];

/** One counter per outcome; plain numbers, read at scrape time. */
export class DatagramCounts {
  private readonly counts = new Map<UdpOutcome, number>(UDP_OUTCOMES.map((outcome) => [outcome, 0]));

  add(outcome: UdpOutcome, count = 1): void {
    this.counts.set(outcome, this.counts.get(outcome)! + count);
  }

  get(outcome: UdpOutcome): number {
    return this.counts.get(outcome)!;
  }

  /** Every outcome with its count, zeros included, in UDP_OUTCOMES order. */
  entries(): Array<{ outcome: UdpOutcome; count: number }> {
    return UDP_OUTCOMES.map((outcome) => ({ outcome, count: this.counts.get(outcome)! }));
  }
}
