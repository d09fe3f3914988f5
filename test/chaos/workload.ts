/**
 * The workload of a chaos run: what the client processes are told to do, and how every chaos
 * client connects (reconnecting for as long as a run lasts: the broker is killed on purpose).
 */
import { connect, type FerryClient } from '../../src/client/index.js';
import type { ConsumerSettings } from './consumer.js';
import type { ProducerSettings } from './producer.js';

export interface ClientProcessConfig {
  port: number;
  /** A cluster's brokers (host:port); when given, clients connect to them instead of `port`. */
  servers?: string[];
  topic: string;
  /** The topic's partition count: producer i publishes to partition i mod partitions. */
  partitions: number;
  historyPath: string;
  seed: number;
  producers: string[];
  consumers: string[];
  producer: ProducerSettings;
  consumer: ConsumerSettings;
  /** How long producers may keep retrying after SIGTERM. */
  stopGraceMs: number;
}

export const CHAOS_RECONNECT = { attemptsMax: 1_000_000, delayMsMin: 50, delayMsMax: 500, durationMsMax: 3_600_000 };
/** A connect to a live broker on loopback takes milliseconds; a paused one never answers. */
const CONNECT_TIMEOUT_MS = 3_000;

/** Connects to one broker (a port on 127.0.0.1) or to a cluster (its brokers' host:port). */
export function chaosConnect(target: number | readonly string[], name: string, requestTimeoutMs: number): Promise<FerryClient> {
  const where = typeof target === 'number' ? { host: '127.0.0.1', port: target } : { servers: [...target] };
  return connect({ ...where, name, requestTimeoutMs, connectTimeoutMs: CONNECT_TIMEOUT_MS, reconnect: CHAOS_RECONNECT });
}

/** Defaults of the chaos workload; scenarios override what they need. */
export const DEFAULT_PRODUCER: ProducerSettings = {
  window: 32,
  /**
   * 600 msg/s per producer, about half what this 2-core machine confirms flat out: enough load to
   * keep every path busy, little enough that a several-minute run's history stays a few hundred MB.
   */
  ratePerSec: 600,
  valueBytes: 200,
  poisonChance: 0.003,
  delayChance: 0,
  delayMsMin: 1_000,
  delayMsMax: 5_000,
};

export const DEFAULT_CONSUMER: ConsumerSettings = {
  group: 'chaos',
  prefetch: 64,
  /** Longer than any hold plus a flush: a timeout here means the broker or the network stalled. */
  ackTimeoutMs: 10_000,
  /** Short backoffs: poison messages reach the dead-letter topic within a second. */
  backoffMs: [50, 100, 200, 400],
  deliveriesMax: 5,
  holdMsMax: 20,
  nackChance: 0.02,
  rotateMsMin: 1_000,
  rotateMsMax: 4_000,
  /** Short enough that clients notice a paused broker and retry within a pause. */
  requestTimeoutMs: 5_000,
};
