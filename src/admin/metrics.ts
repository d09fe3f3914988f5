/**
 * /metrics: Prometheus text from a Registry built here (never prom-client's global one). Three
 * kinds of source:
 * - traffic counters and latency histograms fed by the observed broker (traffic.ts);
 * - gauges and durable counters computed at scrape time from the broker's describe calls
 *   (snapshot.ts) and the TCP server's statistics;
 * - process health: event-loop delay, memory; and warn/error log events by name (log-tap.ts).
 * Storage fsync latency and batch sizes arrive through StorageObserver once the log calls it.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BrokerApi, StorageObserver } from '../broker/types.js';
import type { ServerStats } from '../transport/tcp/server.js';
import type { RejectionCount } from '../security/rejections.js';
import type { ConnectionSource, ConnectionView, MqttSource, UdpSource } from './hooks.js';
import type { CountingLogger } from './log-tap.js';
import { takeSnapshot, type BrokerSnapshot } from './snapshot.js';
import { Traffic } from './traffic.js';
import { LabelledHistogram } from './histogram.js';
import type { ClusterSource } from './cluster-view.js';

/** Request latencies: from a sub-millisecond `never` write to a multi-second stalled fsync. */
const LATENCY_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** End to end includes time spent waiting for a consumer: up to an hour is meaningful. */
const END_TO_END_BUCKETS_S = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
/** An fdatasync on an SSD takes 0.1–5 ms; the upper buckets show a struggling disk. */
const FSYNC_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
/** Records per write: powers of two up to the append limit's order of magnitude. */
const BATCH_RECORDS_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536];
/** Event-loop delay sampling resolution. */
const EVENT_LOOP_RESOLUTION_MS = 10;

export interface MetricsSources {
  /** The broker; null while it is still recovering. */
  broker: () => BrokerApi | null;
  connections?: () => ConnectionSource | null;
  log?: CountingLogger;
  ready: () => boolean;
  version: string;
  /** Refusals sent to clients, by code and transport (src/security/rejections.ts). */
  rejections?: () => RejectionCount[];
  /** Cluster mode: this broker as a member; the cluster metrics exist only with it. */
  cluster?: ClusterSource;
  /** The UDP ingest port; null when none is open. */
  udp?: () => UdpSource | null;
  /** The MQTT port; null when none is open. */
  mqtt?: () => MqttSource | null;
}

export class BrokerMetrics implements StorageObserver {
  readonly registry = new Registry();
  readonly traffic: Traffic;
  private readonly eventLoop: IntervalHistogram;
  private snapshot: BrokerSnapshot | null = null;
  private connectionViews: ConnectionView[] = [];
  private serverStats: ServerStats | null = null;
  /** The event-loop delay since the previous scrape, read once per scrape; null when nothing was sampled. */
  private eventLoopDelay: { p50Seconds: number; p99Seconds: number; maxSeconds: number } | null = null;
  private rendering: Promise<string> | null = null;
  private readonly confirm: LabelledHistogram;
  private readonly endToEnd: LabelledHistogram;
  private readonly fsync: Histogram;
  private readonly batchRecords: Histogram;
  private readonly batchBytes: Counter;

  constructor(private readonly sources: MetricsSources) {
    const registers = [this.registry];
    this.confirm = new LabelledHistogram('ferry_publish_confirm_seconds', 'Publish request received to publish confirmed (after fsync for durability=always).', 'topic', LATENCY_BUCKETS_S, this.registry);
    this.endToEnd = new LabelledHistogram('ferry_end_to_end_seconds', 'Message timestamp (publish) to its first delivery to a subscriber.', 'topic', END_TO_END_BUCKETS_S, this.registry);
    this.fsync = new Histogram({ name: 'ferry_storage_fsync_seconds', help: 'Duration of one fdatasync of a log.', buckets: FSYNC_BUCKETS_S, registers });
    this.batchRecords = new Histogram({ name: 'ferry_storage_batch_records', help: 'Records per write issued by a log writer (group commit size).', buckets: BATCH_RECORDS_BUCKETS, registers });
    this.batchBytes = new Counter({ name: 'ferry_storage_written_bytes_total', help: 'Bytes written by log writers.', registers });
    this.traffic = new Traffic(
      (topic) => {
        const child = this.confirm.labels(topic);
        return (seconds) => child.observe(seconds);
      },
      (topic) => {
        const child = this.endToEnd.labels(topic);
        return (seconds) => child.observe(seconds);
      },
    );
    this.eventLoop = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS });
    this.eventLoop.enable();
    this.defineBrokerMetrics();
    this.defineProcessMetrics();
  }

  fsyncCompleted(seconds: number): void {
    this.fsync.observe(seconds);
  }

  batchWritten(records: number, bytes: number): void {
    this.batchRecords.observe(records);
    this.batchBytes.inc(bytes);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * The scrape: one snapshot of the broker, then every metric renders from it. Scrapes that arrive
   * while one renders share its text (the snapshot is per render, so renders must not overlap).
   */
  render(): Promise<string> {
    return (this.rendering ??= this.renderOnce().finally(() => {
      this.rendering = null;
    }));
  }

  private async renderOnce(): Promise<string> {
    const broker = this.sources.broker();
    this.snapshot = broker === null ? null : takeSnapshot(broker);
    const connections = this.sources.connections?.() ?? null;
    this.serverStats = connections?.stats() ?? null;
    this.connectionViews = connections?.connectionStats() ?? [];
    this.eventLoopDelay = this.takeEventLoopDelay();
    try {
      return await this.registry.metrics();
    } finally {
      this.snapshot = null;
      this.serverStats = null;
      this.connectionViews = [];
    }
  }

  close(): void {
    this.eventLoop.disable();
  }

  /** The event-loop delay since the previous scrape (then the monitor starts over). */
  private takeEventLoopDelay(): BrokerMetrics['eventLoopDelay'] {
    const eventLoop = this.eventLoop;
    // The monitor's samples include its own sampling interval: subtract it to get the delay.
    const delaySeconds = (nanoseconds: number): number => Math.max(0, nanoseconds / 1e6 - EVENT_LOOP_RESOLUTION_MS) / 1000;
    const delay =
      eventLoop.count === 0
        ? null
        : { p50Seconds: delaySeconds(eventLoop.percentile(50)), p99Seconds: delaySeconds(eventLoop.percentile(99)), maxSeconds: delaySeconds(eventLoop.max) };
    eventLoop.reset();
    return delay;
  }

  /** A gauge filled at scrape time. */
  private gauge(name: string, help: string, labelNames: string[], fill: (metric: Gauge) => void): void {
    new Gauge({ name, help, labelNames, registers: [this.registry], collect() { this.reset(); fill(this); } });
  }

  /** A counter filled at scrape time (from totals kept elsewhere). */
  private counter(name: string, help: string, labelNames: string[], fill: (metric: Counter) => void): void {
    new Counter({ name, help, labelNames, registers: [this.registry], collect() { this.reset(); fill(this); } });
  }

  /** Build, readiness, then per topic, per group and per connection, in this order on /metrics. */
  private defineBrokerMetrics(): void {
    const gauge = this.gauge.bind(this);
    gauge('ferry_build_info', 'Ferry version and Node.js version; the value is always 1.', ['version', 'node'], (m) => m.set({ version: this.sources.version, node: process.version }, 1));
    gauge('ferry_ready', '1 while /readyz answers 200: recovery finished, not shutting down, and in a cluster joined and reaching etcd.', [], (m) => m.set(this.sources.ready() ? 1 : 0));
    if (this.sources.cluster !== undefined) this.defineClusterMetrics(this.sources.cluster);
    this.defineTopicMetrics();
    this.defineGroupMetrics();
    this.defineConnectionMetrics();
  }

  /** Cluster mode only. Counters count what this broker saw in etcd: every broker sees every change. */
  private defineClusterMetrics(cluster: ClusterSource): void {
    const gauge = this.gauge.bind(this);
    const counter = this.counter.bind(this);
    gauge('ferry_cluster_etcd_up', '1 while this broker reaches etcd (its last call was answered), 0 while etcd is unreachable.', [], (m) => m.set(cluster.etcdUp ? 1 : 0));
    counter('ferry_leader_changes_total', 'Leadership changes of topics seen by this broker (since start).', [], (m) => m.inc(cluster.counters.leaderChanges));
    counter('ferry_in_sync_shrinks_total', 'Times a topic\'s in-sync set shrank, seen by this broker (since start).', [], (m) => m.inc(cluster.counters.inSyncShrinks));
    counter('ferry_replica_mismatches_total', 'Followers this broker, as their leader, found to differ from its logs below the high watermark or to hold damaged records (since start).', [], (m) => m.inc(cluster.counters.replicaMismatches));
    gauge('ferry_replica_lag_records', 'Records a replica is behind its leader, per partition of each topic this broker leads.', ['topic', 'partition', 'replica'], (m) => {
      for (const t of this.snapshot?.topics ?? []) {
        for (const p of t.info.partitions) {
          for (const r of p.replicaOffsets ?? []) m.set({ topic: t.info.name, partition: String(p.partition), replica: r.nodeId }, r.lag);
        }
      }
    });
  }

  private defineTopicMetrics(): void {
    const gauge = this.gauge.bind(this);
    const counter = this.counter.bind(this);
    const topics = () => this.snapshot?.topics ?? [];
    counter('ferry_topic_messages_in_total', 'Messages accepted by publish requests (duplicates not counted).', ['topic'], (m) => {
      for (const t of this.traffic.topicRecords()) m.inc({ topic: t.topic }, t.messagesIn);
    });
    counter('ferry_topic_bytes_in_total', 'Key and value bytes of messages accepted by publish requests.', ['topic'], (m) => {
      for (const t of this.traffic.topicRecords()) m.inc({ topic: t.topic }, t.bytesIn);
    });
    counter('ferry_topic_publish_errors_total', 'Failed publish requests by error code.', ['topic', 'code'], (m) => {
      for (const t of this.traffic.topicRecords()) for (const [code, count] of t.publishErrors) m.inc({ topic: t.topic, code }, count);
    });
    gauge('ferry_topic_messages', 'Messages stored in the topic now (after retention).', ['topic'], (m) => {
      for (const t of topics()) m.set({ topic: t.info.name }, t.messages);
    });
    gauge('ferry_partition_start_offset', 'Oldest offset kept in the partition.', ['topic', 'partition'], (m) => {
      for (const t of topics()) for (const p of t.info.partitions) m.set({ topic: t.info.name, partition: String(p.partition) }, p.startOffset);
    });
    gauge('ferry_partition_end_offset', 'Next offset of the partition; its rate is the append rate from every source.', ['topic', 'partition'], (m) => {
      for (const t of topics()) for (const p of t.info.partitions) m.set({ topic: t.info.name, partition: String(p.partition) }, p.nextOffset);
    });
    gauge('ferry_storage_bytes', 'Bytes of segment files of the topic.', ['topic'], (m) => {
      for (const t of topics()) m.set({ topic: t.info.name }, t.bytes);
    });
    gauge('ferry_storage_segments', 'Segment files of the topic.', ['topic'], (m) => {
      for (const t of topics()) m.set({ topic: t.info.name }, t.segments);
    });
    gauge('ferry_dead_letter_waiting', 'Messages in a dead-letter topic not yet redriven.', ['topic'], (m) => {
      for (const t of topics()) if (t.deadLetter) m.set({ topic: t.info.name }, t.deadLetterWaiting);
    });
  }

  private defineGroupMetrics(): void {
    const gauge = this.gauge.bind(this);
    const counter = this.counter.bind(this);
    const groups = () => (this.snapshot?.topics ?? []).flatMap((topic) => topic.groups.filter((group) => !group.internal));
    const groupCounter = (name: string, help: string, read: (g: { delivered: number; acked: number; nacked: number }) => number): void =>
      counter(name, help, ['topic', 'group'], (m) => {
        for (const g of this.traffic.groupRecords()) if (g.group !== '') m.inc({ topic: g.topic, group: g.group }, read(g));
      });
    groupCounter('ferry_group_delivered_total', 'Deliveries to the group\'s subscribers (redeliveries included).', (g) => g.delivered);
    groupCounter('ferry_group_acked_total', 'Acks from the group\'s subscribers.', (g) => g.acked);
    groupCounter('ferry_group_nacked_total', 'Nacks from the group\'s subscribers.', (g) => g.nacked);
    counter('ferry_stream_delivered_total', 'Deliveries to stream (group-less) subscriptions.', ['topic'], (m) => {
      for (const g of this.traffic.groupRecords()) if (g.group === '') m.inc({ topic: g.topic }, g.delivered);
    });
    counter('ferry_group_redelivered_total', 'Messages delivered again after a nack, timeout or departed subscriber (kept across restarts).', ['topic', 'group'], (m) => {
      for (const g of groups()) m.inc({ topic: g.topic, group: g.name }, g.redeliveredTotal);
    });
    counter('ferry_group_dead_lettered_total', 'Messages moved to the dead-letter topic (kept across restarts).', ['topic', 'group'], (m) => {
      for (const g of groups()) m.inc({ topic: g.topic, group: g.name }, g.deadLetteredTotal);
    });
    const groupGauge = (name: string, help: string, read: (g: ReturnType<typeof groups>[number]) => number): void =>
      gauge(name, help, ['topic', 'group'], (m) => {
        for (const g of groups()) m.set({ topic: g.topic, group: g.name }, read(g));
      });
    groupGauge('ferry_group_lag', 'Messages not yet settled by the group (in flight included).', (g) => g.pending);
    groupGauge('ferry_group_in_flight', 'Delivered and not yet settled.', (g) => g.inFlight);
    groupGauge('ferry_group_pending_redelivery', 'Waiting to be delivered again.', (g) => g.pendingRedelivery);
    groupGauge('ferry_group_oldest_unacked_age_seconds', 'Age of the oldest delivered, unsettled message (0 when none).', (g) => g.oldestUnackedAgeMs / 1000);
    groupGauge('ferry_group_subscribers', 'Subscribers of the group on this broker.', (g) => g.subscribers);
  }

  private defineConnectionMetrics(): void {
    const gauge = this.gauge.bind(this);
    const counter = this.counter.bind(this);
    const server = () => this.serverStats;
    gauge('ferry_connections', 'Open client connections.', [], (m) => m.set(server()?.connections ?? 0));
    counter('ferry_connections_opened_total', 'Client connections accepted.', [], (m) => m.inc(server()?.connectionsTotal ?? 0));
    counter('ferry_connections_rejected_total', 'Connections refused at the connection limit.', [], (m) => m.inc(server()?.connectionsRejected ?? 0));
    const refusedHelp = 'Sockets refused at accept on the TCP port, by reason: accept_rate (the per-address rate), per_ip, total, tls_only; and on the MQTT port: mqtt_accept_rate, mqtt_per_ip, mqtt_total.';
    counter('ferry_connections_refused_total', refusedHelp, ['reason'], (m) => {
      for (const [reason, count] of Object.entries(server()?.refusedByReason ?? {})) m.inc({ reason }, count);
      for (const [reason, count] of Object.entries(this.sources.mqtt?.()?.refusedCounts() ?? {})) m.inc({ reason: `mqtt_${reason}` }, count);
    });
    counter('ferry_tls_handshakes_deferred_total', 'TLS handshakes on the TCP port started a turn late because the per-turn budget was spent (a connection storm).', [], (m) =>
      m.inc(server()?.tlsHandshakesDeferred ?? 0),
    );
    counter('ferry_slow_consumers_total', 'Connections closed as slow consumers.', [], (m) => m.inc(server()?.slowConsumersTotal ?? 0));
    counter('ferry_handshakes_deferred_total', 'Times a HELLO was put off to the next turn because the per-turn handshake budget was spent (a connection storm); once per HELLO and turn.', [], (m) =>
      m.inc(server()?.handshakesDeferred ?? 0),
    );
    counter('ferry_throttled_turns_total', 'Turns connections waited out for refusing too many of their requests at once.', [], (m) =>
      m.inc(server()?.throttledTurns ?? 0),
    );
    gauge('ferry_slow_consumers', 'Connections backed up above the write high-water mark now.', [], (m) => {
      m.set(this.connectionViews.filter((c) => (c.backedUpMs ?? 0) > 0).length);
    });
    counter('ferry_rejections_total', 'Refusals sent to clients (ERROR frames, refused connections, 401/403/429), by error code and transport.', ['code', 'transport'], (m) => {
      for (const r of this.sources.rejections?.() ?? []) m.inc({ code: r.code, transport: r.transport }, r.count);
    });
    counter('ferry_udp_datagrams_total', 'Datagrams received on the UDP ingest port, by outcome: stored, or why dropped (malformed, oversized, forbidden, rate_limited, overloaded, unknown_topic, failed).', ['outcome'], (m) => {
      for (const { outcome, count } of this.sources.udp?.()?.datagramCounts() ?? []) m.inc({ outcome }, count);
    });
    gauge('ferry_udp_receive_buffer_bytes', 'Receive buffer the kernel granted the UDP ingest socket (Linux reports twice the usable size; capped by net.core.rmem_max); 0 when no UDP port is open.', [], (m) =>
      m.set(this.sources.udp?.()?.receiveBufferBytes ?? 0),
    );
    gauge('ferry_udp_in_flight_bytes', 'Datagram bytes received on the UDP ingest port and not yet stored (past UDP_HANDOFF_BYTES_MAX or UDP_IN_FLIGHT_BYTES_MAX datagrams are dropped as overloaded).', [], (m) =>
      m.set(this.sources.udp?.()?.bytesInFlight ?? 0),
    );
    counter('ferry_udp_receiver_restarts_total', 'UDP receiver threads started to replace one that ended unasked (the port is silent between the end and the restart).', [], (m) =>
      m.inc(this.sources.udp?.()?.receiverRestarts ?? 0),
    );
    counter('ferry_network_received_bytes_total', 'Bytes read from client connections.', [], (m) => m.inc(server()?.bytesIn ?? 0));
    counter('ferry_network_sent_bytes_total', 'Bytes written to client connections.', [], (m) => m.inc(server()?.bytesOut ?? 0));
  }

  private defineProcessMetrics(): void {
    const registers = [this.registry];
    // Three gauges, not one with a `quantile` label: that label belongs to summaries, whose
    // quantiles are numbers (promtool rejects it on a gauge, and "max" is no quantile).
    const delay = (name: string, help: string, pick: (sample: NonNullable<BrokerMetrics['eventLoopDelay']>) => number): void => {
      this.gauge(name, help, [], (metric) => {
        if (this.eventLoopDelay !== null) metric.set(pick(this.eventLoopDelay));
      });
    };
    delay('ferry_event_loop_delay_p50_seconds', 'Median event-loop delay since the previous scrape.', (sample) => sample.p50Seconds);
    delay('ferry_event_loop_delay_p99_seconds', '99th percentile of the event-loop delay since the previous scrape.', (sample) => sample.p99Seconds);
    delay('ferry_event_loop_delay_max_seconds', 'Largest event-loop delay since the previous scrape.', (sample) => sample.maxSeconds);
    new Gauge({ name: 'ferry_process_resident_memory_bytes', help: 'Resident set size of the broker process.', registers, collect() { this.set(process.memoryUsage.rss()); } });
    new Gauge({ name: 'ferry_process_heap_used_bytes', help: 'V8 heap in use.', registers, collect() { this.set(process.memoryUsage().heapUsed); } });
    const log = this.sources.log;
    new Counter({
      name: 'ferry_log_events_total',
      help: 'Warnings and errors logged, by event name and error code.',
      labelNames: ['level', 'event', 'code'],
      registers,
      collect() {
        this.reset();
        for (const entry of log?.eventCounts() ?? []) this.inc({ level: entry.level, event: entry.event, code: entry.code }, entry.count);
      },
    });
  }
}
