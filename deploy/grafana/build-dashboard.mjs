#!/usr/bin/env node
// Writes deploy/grafana/ferry.json, the Grafana dashboard over Ferry's /metrics. The panels are
// described here compactly and expanded into Grafana's JSON model, so a change is one line here
// and `node deploy/grafana/build-dashboard.mjs`. test/admin/grafana.test.ts checks that every
// metric the dashboard queries is one /metrics serves.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const OUT = fileURLToPath(new URL('./ferry.json', import.meta.url));
const SEL = 'instance=~"$instance"';
const TOPIC = `${SEL},topic=~"$topic"`;
const RATE = '$__rate_interval';

let nextId = 1;
let y = 0;
const panels = [];

function row(title) {
  panels.push({ id: nextId++, type: 'row', title, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] });
  y += 1;
}

/** A line of panels, each `{ w, h, ... }`; x positions follow from the widths. */
function line(...specs) {
  let x = 0;
  const height = Math.max(...specs.map((spec) => spec.h ?? 8));
  for (const spec of specs) {
    panels.push(panel(spec, { h: spec.h ?? 8, w: spec.w, x, y }));
    x += spec.w;
  }
  y += height;
}

function panel(spec, gridPos) {
  const base = {
    id: nextId++,
    type: spec.type ?? 'timeseries',
    title: spec.title,
    description: spec.description ?? '',
    datasource: { type: 'prometheus', uid: '${datasource}' },
    gridPos,
    targets: spec.targets.map(([expr, legendFormat], index) => ({
      refId: String.fromCharCode(65 + index),
      datasource: { type: 'prometheus', uid: '${datasource}' },
      expr,
      legendFormat: legendFormat ?? '',
      ...(spec.type === 'stat' ? { instant: true } : {}),
    })),
    fieldConfig: {
      defaults: {
        unit: spec.unit ?? 'short',
        ...(spec.thresholds === undefined
          ? {}
          : { thresholds: { mode: 'absolute', steps: spec.thresholds.map(([value, color]) => ({ value, color })) }, color: { mode: 'thresholds' } }),
        ...(spec.type === 'stat' || spec.type === 'table' ? {} : { custom: { drawStyle: 'line', lineWidth: 2, fillOpacity: spec.fill ?? 10, showPoints: 'never', spanNulls: true, stacking: { mode: spec.stack ? 'normal' : 'none' } } }),
        ...(spec.mappings === undefined ? {} : { mappings: spec.mappings }),
      },
      overrides: [],
    },
    options:
      spec.type === 'stat'
        ? { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'value', graphMode: spec.graph ? 'area' : 'none', textMode: 'auto', justifyMode: 'auto', orientation: 'auto' }
        : { legend: { displayMode: 'table', placement: 'bottom', calcs: spec.legendCalcs ?? ['lastNotNull', 'max'] }, tooltip: { mode: 'multi', sort: 'desc' } },
  };
  return base;
}

const readyMapping = [{ type: 'value', options: { 0: { text: 'Recovering', color: 'orange' }, 1: { text: 'Ready', color: 'green' } } }];

row('Overview');
line(
  { type: 'stat', title: 'State', w: 4, h: 4, targets: [[`min(ferry_ready{${SEL}})`]], mappings: readyMapping, thresholds: [[null, 'orange'], [1, 'green']] },
  { type: 'stat', title: 'Messages in / s', w: 4, h: 4, graph: true, targets: [[`sum(rate(ferry_topic_messages_in_total{${TOPIC}}[${RATE}]))`]], unit: 'short' },
  { type: 'stat', title: 'Delivered / s', w: 4, h: 4, graph: true, targets: [[`sum(rate(ferry_group_delivered_total{${TOPIC}}[${RATE}])) + sum(rate(ferry_stream_delivered_total{${TOPIC}}[${RATE}]) or vector(0))`]] },
  { type: 'stat', title: 'Consumer lag', w: 4, h: 4, graph: true, targets: [[`sum(ferry_group_lag{${TOPIC}})`]], thresholds: [[null, 'green'], [1000, 'orange'], [100000, 'red']] },
  { type: 'stat', title: 'Dead letters waiting', w: 4, h: 4, targets: [[`sum(ferry_dead_letter_waiting{${SEL}}) or vector(0)`]], thresholds: [[null, 'green'], [1, 'red']] },
  { type: 'stat', title: 'Connections', w: 4, h: 4, graph: true, targets: [[`sum(ferry_connections{${SEL}})`]] },
);

row('Throughput');
line(
  { title: 'Messages in by topic', w: 12, targets: [[`sum by (topic) (rate(ferry_topic_messages_in_total{${TOPIC}}[${RATE}]))`, '{{topic}}']], unit: 'short', description: 'Messages accepted by publish requests per second.' },
  { title: 'Bytes in by topic', w: 12, targets: [[`sum by (topic) (rate(ferry_topic_bytes_in_total{${TOPIC}}[${RATE}]))`, '{{topic}}']], unit: 'Bps', description: 'Key + value bytes per second.' },
);
line(
  {
    title: 'Group settlements',
    w: 12,
    targets: [
      [`sum by (topic, group) (rate(ferry_group_delivered_total{${TOPIC}}[${RATE}]))`, 'delivered {{topic}}/{{group}}'],
      [`sum by (topic, group) (rate(ferry_group_acked_total{${TOPIC}}[${RATE}]))`, 'acked {{topic}}/{{group}}'],
      [`sum by (topic, group) (rate(ferry_group_nacked_total{${TOPIC}}[${RATE}]))`, 'nacked {{topic}}/{{group}}'],
    ],
  },
  {
    title: 'Redeliveries and dead letters',
    w: 12,
    targets: [
      [`sum by (topic, group) (rate(ferry_group_redelivered_total{${TOPIC}}[${RATE}]))`, 'redelivered {{topic}}/{{group}}'],
      [`sum by (topic, group) (rate(ferry_group_dead_lettered_total{${TOPIC}}[${RATE}]))`, 'dead-lettered {{topic}}/{{group}}'],
    ],
  },
);

row('Consumers');
line(
  { title: 'Lag by group', w: 8, targets: [[`sum by (topic, group) (ferry_group_lag{${TOPIC}})`, '{{topic}}/{{group}}']], description: 'Messages not yet settled, in flight included.' },
  { title: 'In flight and awaiting redelivery', w: 8, targets: [[`sum by (topic, group) (ferry_group_in_flight{${TOPIC}})`, 'in flight {{topic}}/{{group}}'], [`sum by (topic, group) (ferry_group_pending_redelivery{${TOPIC}})`, 'awaiting {{topic}}/{{group}}']] },
  { title: 'Oldest unacked message', w: 8, targets: [[`max by (topic, group) (ferry_group_oldest_unacked_age_seconds{${TOPIC}})`, '{{topic}}/{{group}}']], unit: 's' },
);

row('Latency');
const quantiles = (metric, by) => [
  [`histogram_quantile(0.5, sum by (le${by}) (rate(${metric}_bucket{${TOPIC}}[${RATE}])))`, `p50${by ? ' {{topic}}' : ''}`],
  [`histogram_quantile(0.99, sum by (le${by}) (rate(${metric}_bucket{${TOPIC}}[${RATE}])))`, `p99${by ? ' {{topic}}' : ''}`],
];
line(
  { title: 'Publish to confirm', w: 12, targets: quantiles('ferry_publish_confirm_seconds', ', topic'), unit: 's', description: 'Request received to publish confirmed; for durability=always this includes the fsync.' },
  { title: 'End to end (publish to first delivery)', w: 12, targets: quantiles('ferry_end_to_end_seconds', ', topic'), unit: 's' },
);

row('Storage');
line(
  {
    title: 'fsync latency',
    w: 8,
    targets: [
      [`histogram_quantile(0.5, sum by (le) (rate(ferry_storage_fsync_seconds_bucket{${SEL}}[${RATE}])))`, 'p50'],
      [`histogram_quantile(0.99, sum by (le) (rate(ferry_storage_fsync_seconds_bucket{${SEL}}[${RATE}])))`, 'p99'],
    ],
    unit: 's',
  },
  {
    title: 'Records per write (group commit)',
    w: 8,
    targets: [
      [`histogram_quantile(0.5, sum by (le) (rate(ferry_storage_batch_records_bucket{${SEL}}[${RATE}])))`, 'p50'],
      [`sum(rate(ferry_storage_batch_records_sum{${SEL}}[${RATE}])) / sum(rate(ferry_storage_batch_records_count{${SEL}}[${RATE}]))`, 'mean'],
    ],
  },
  { title: 'Bytes written', w: 8, targets: [[`sum(rate(ferry_storage_written_bytes_total{${SEL}}[${RATE}]))`, 'written']], unit: 'Bps' },
);
line(
  { title: 'On disk by topic', w: 12, targets: [[`sum by (topic) (ferry_storage_bytes{${TOPIC}})`, '{{topic}}']], unit: 'bytes', stack: true, fill: 30 },
  { title: 'Segments by topic', w: 12, targets: [[`sum by (topic) (ferry_storage_segments{${TOPIC}})`, '{{topic}}']], stack: true, fill: 30 },
);

row('Connections and process');
line(
  {
    title: 'Connections',
    w: 8,
    targets: [
      [`sum(ferry_connections{${SEL}})`, 'open'],
      [`sum(rate(ferry_connections_rejected_total{${SEL}}[${RATE}]))`, 'rejected / s'],
      [`sum(ferry_slow_consumers{${SEL}})`, 'backed up now'],
      [`sum(increase(ferry_slow_consumers_total{${SEL}}[${RATE}]))`, 'slow consumers closed'],
    ],
  },
  { title: 'Network', w: 8, targets: [[`sum(rate(ferry_network_received_bytes_total{${SEL}}[${RATE}]))`, 'received'], [`sum(rate(ferry_network_sent_bytes_total{${SEL}}[${RATE}]))`, 'sent']], unit: 'Bps' },
  { title: 'Event-loop delay', w: 8, targets: [[`max(ferry_event_loop_delay_p99_seconds{${SEL}})`, 'p99'], [`max(ferry_event_loop_delay_max_seconds{${SEL}})`, 'max']], unit: 's' },
);
line(
  { title: 'Memory', w: 12, targets: [[`sum(ferry_process_resident_memory_bytes{${SEL}})`, 'resident'], [`sum(ferry_process_heap_used_bytes{${SEL}})`, 'heap used']], unit: 'bytes' },
  { title: 'Warnings and errors logged', w: 12, targets: [[`sum by (level, event, code) (increase(ferry_log_events_total{${SEL}}[${RATE}]))`, '{{level}} {{event}} {{code}}']], stack: true, fill: 40 },
);

const dashboard = {
  __requires: [
    { type: 'grafana', id: 'grafana', name: 'Grafana', version: '10.0.0' },
    { type: 'datasource', id: 'prometheus', name: 'Prometheus', version: '1.0.0' },
  ],
  uid: 'ferry-broker',
  title: 'Ferry broker',
  description: 'Ferry message broker: throughput, consumer lag, dead letters, latency, storage, connections. Built by deploy/grafana/build-dashboard.mjs.',
  tags: ['ferry', 'messaging'],
  timezone: 'browser',
  schemaVersion: 39,
  version: 1,
  editable: true,
  graphTooltip: 1,
  refresh: '10s',
  time: { from: 'now-1h', to: 'now' },
  templating: {
    list: [
      { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', current: {}, hide: 0 },
      {
        name: 'instance',
        label: 'Broker',
        type: 'query',
        datasource: { type: 'prometheus', uid: '${datasource}' },
        query: { query: 'label_values(ferry_build_info, instance)', refId: 'instance' },
        definition: 'label_values(ferry_build_info, instance)',
        refresh: 2,
        includeAll: true,
        multi: true,
        allValue: '.*',
        current: {},
      },
      {
        name: 'topic',
        label: 'Topic',
        type: 'query',
        datasource: { type: 'prometheus', uid: '${datasource}' },
        query: { query: `label_values(ferry_topic_messages{${SEL}}, topic)`, refId: 'topic' },
        definition: `label_values(ferry_topic_messages{${SEL}}, topic)`,
        refresh: 2,
        includeAll: true,
        multi: true,
        allValue: '.*',
        current: {},
      },
    ],
  },
  annotations: { list: [] },
  panels,
};

writeFileSync(OUT, JSON.stringify(dashboard, null, 2) + '\n');
console.log(`wrote ${OUT} (${panels.length} panels)`);
