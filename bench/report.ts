/**
 * What a broker benchmark run reports: the figures per system (median over runs), the Ferry/peer
 * ratios, markdown tables for stdout, and the "## Broker workloads" section of docs/BENCHMARKS.md.
 * Pure functions over the run's records, except `writeDocsSection`, which edits only that section.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { median } from './stats.js';
import type { WorkloadId, WorkloadResult } from './workloads.js';

export interface RunRecord {
  run: number;
  serverPid: number;
  results: Partial<Record<WorkloadId, WorkloadResult>>;
  /** The broker's VmHWM after the selected workloads; for a cluster, its largest node's. */
  peakRssBytes: number;
  /** A cluster's node PIDs and each node's VmHWM, in node order. */
  serverPids?: number[];
  peakRssBytesPerNode?: number[];
  /** Warnings and errors the server logged during the run (Ferry's JSON log lines), if any. */
  serverWarnings?: string[];
}

export interface SystemReport {
  id: string;
  label: string;
  shortLabel: string;
  description: string;
  runs: RunRecord[];
  /** Why the system was skipped or stopped early; runs completed before it still count. */
  error?: string;
}

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryBytes: number;
  kernel: string;
  node: string;
}

export interface BenchReport {
  command: string;
  startedAt: string;
  commit: string;
  machine: Machine;
  quick: boolean;
  runsRequested: number;
  workloads: WorkloadId[];
  systems: SystemReport[];
}

// ---- Figures ---------------------------------------------------------------------------------

interface FigureDefinition {
  label: string;
  unit: string;
  /** Which way is better, for reading the ratio. */
  better: 'higher' | 'lower';
  workload?: WorkloadId;
  pick(record: RunRecord): number | undefined;
}

function throughputOf(id: WorkloadId) {
  return (record: RunRecord): number | undefined => {
    const result = record.results[id];
    return result?.kind === 'throughput' ? result.msgsPerSec : undefined;
  };
}

function latencyOf(key: 'p50Ms' | 'p99Ms' | 'p999Ms' | 'p99AfterFirstSecondMs') {
  return (record: RunRecord): number | undefined => {
    const result = record.results.W3;
    return result?.kind === 'latency' ? result[key] : undefined;
  };
}

const FIGURES: FigureDefinition[] = [
  { label: 'W1 publish, 1 producer', unit: 'msgs/s', better: 'higher', workload: 'W1', pick: throughputOf('W1') },
  { label: 'W2 drain, ack each', unit: 'msgs/s', better: 'higher', workload: 'W2', pick: throughputOf('W2') },
  { label: 'W3 latency p50', unit: 'ms', better: 'lower', workload: 'W3', pick: latencyOf('p50Ms') },
  { label: 'W3 latency p99', unit: 'ms', better: 'lower', workload: 'W3', pick: latencyOf('p99Ms') },
  { label: 'W3 latency p99.9', unit: 'ms', better: 'lower', workload: 'W3', pick: latencyOf('p999Ms') },
  { label: 'W3 p99 after the first second', unit: 'ms', better: 'lower', workload: 'W3', pick: latencyOf('p99AfterFirstSecondMs') },
  { label: 'W4 4 producers, 4 consumers', unit: 'msgs/s', better: 'higher', workload: 'W4', pick: throughputOf('W4') },
  { label: 'Broker peak RSS', unit: 'MiB', better: 'lower', pick: (record) => record.peakRssBytes / (1024 * 1024) },
];

function figuresFor(workloads: readonly WorkloadId[]): FigureDefinition[] {
  return FIGURES.filter((figure) => figure.workload === undefined || workloads.includes(figure.workload));
}

function valuesOf(system: SystemReport, figure: FigureDefinition): number[] {
  return system.runs.map((record) => figure.pick(record)).filter((value): value is number => value !== undefined);
}

function medianOf(system: SystemReport, figure: FigureDefinition): number | undefined {
  const values = valuesOf(system, figure);
  return values.length === 0 ? undefined : median(values);
}

export interface MedianFigure {
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  median: number;
  runs: number[];
}

/** The medians for the JSON results file. */
export function medianFigures(system: SystemReport, workloads: readonly WorkloadId[]): MedianFigure[] {
  return figuresFor(workloads).flatMap((figure) => {
    const runs = valuesOf(system, figure);
    return runs.length === 0 ? [] : [{ label: figure.label, unit: figure.unit, better: figure.better, median: median(runs), runs }];
  });
}

// ---- Formatting ------------------------------------------------------------------------------

function formatValue(value: number | undefined, unit: string): string {
  if (value === undefined) return '—';
  if (unit === 'msgs/s') return Math.round(value).toLocaleString('en-US');
  if (unit === 'ms') return value.toFixed(2);
  return value.toFixed(0);
}

function formatRatio(ferry: number | undefined, peer: number | undefined): string {
  if (ferry === undefined || peer === undefined || peer === 0) return '—';
  return `${(ferry / peer).toFixed(2)}×`;
}

function table(header: string[], rows: string[][]): string {
  const lines = [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`);
  return lines.join('\n');
}

/** One system: each figure's median and the value of every run. */
export function systemTable(system: SystemReport, workloads: readonly WorkloadId[]): string {
  const rows = figuresFor(workloads).map((figure) => {
    const runs = system.runs.map((record) => formatValue(figure.pick(record), figure.unit));
    return [figure.label, figure.unit, formatValue(medianOf(system, figure), figure.unit), runs.join(', ')];
  });
  return table(['Workload', 'Unit', 'Median', 'Runs'], rows);
}

/** The systems the ratios are taken against: the single broker, or the cluster with --cluster. */
const FERRY_IDS = new Set(['ferry', 'ferry-cluster']);

/** Every system side by side, with Ferry/peer for each peer (for msgs/s above 1 is better for Ferry; for ms and MiB below 1). */
export function comparisonTable(systems: readonly SystemReport[], workloads: readonly WorkloadId[]): string {
  const ferry = systems.find((system) => FERRY_IDS.has(system.id));
  const peers = systems.filter((system) => !FERRY_IDS.has(system.id));
  const header = ['Workload', 'Unit'];
  if (ferry !== undefined) header.push(ferry.label);
  for (const peer of peers) {
    header.push(peer.label);
    if (ferry !== undefined) header.push(`Ferry/${peer.shortLabel}`);
  }
  const rows = figuresFor(workloads).map((figure) => {
    const ferryValue = ferry === undefined ? undefined : medianOf(ferry, figure);
    const cells = [figure.label, figure.unit];
    if (ferry !== undefined) cells.push(formatValue(ferryValue, figure.unit));
    for (const peer of peers) {
      const peerValue = medianOf(peer, figure);
      cells.push(formatValue(peerValue, figure.unit));
      if (ferry !== undefined) cells.push(formatRatio(ferryValue, peerValue));
    }
    return cells;
  });
  return table(header, rows);
}

export function machineLine(machine: Machine): string {
  const memoryGiB = (machine.memoryBytes / 1024 ** 3).toFixed(1);
  return `${machine.cpus} cores (${machine.cpuModel}), ${memoryGiB} GiB memory, Linux ${machine.kernel}, Node ${machine.node}`;
}

/** The whole report as markdown, for stdout. */
export function markdownReport(report: BenchReport): string {
  const parts = [
    `# Broker benchmark ${report.startedAt}`,
    `Command: \`${report.command}\`  \nCommit: ${report.commit}  \nMachine: ${machineLine(report.machine)}` +
      (report.quick ? '  \n**--quick: 10x fewer messages, a smoke run; not comparable to full figures.**' : ''),
  ];
  for (const system of report.systems) {
    parts.push(`## ${system.label}\n\n${system.description}`);
    if (system.runs.length > 0) parts.push(systemTable(system, report.workloads));
    if (system.error !== undefined) parts.push(`**Failed:** ${system.error}`);
  }
  parts.push(`## Side by side (medians of ${report.runsRequested} run(s))\n\n${comparisonTable(report.systems, report.workloads)}`);
  return parts.join('\n\n') + '\n';
}

// ---- docs/BENCHMARKS.md ----------------------------------------------------------------------

export const DOCS_SECTION_HEADING = '## Broker workloads';

export function docsSection(report: BenchReport, resultsFile: string): string {
  const ferry = report.systems.find((system) => system.id === 'ferry');
  const lines = [
    DOCS_SECTION_HEADING,
    '',
    'Ferry against NATS JetStream and Redis Streams on the same machine, in the same run, through the',
    'same harness (`bench/`, one Node process for all clients): 1 KiB payloads, every publish',
    'confirmed only once the broker has stored it, one ack per delivered message, at most 256',
    'unacknowledged deliveries per subscriber. Each system runs in a fresh server process with an',
    'empty temp data dir on loopback; figures are medians over runs.',
    '',
    '- W1: one producer publishes 200,000 messages with at most 1,000 unconfirmed: msgs/s.',
    '- W2: one consumer in a group drains those 200,000, acking each: msgs/s.',
    '- W3: open-loop publishes at 5,000 msgs/s for 10 s (after one primer message has gone through);',
    '  publish-to-receive latency from the send time carried in the payload (same process,',
    '  `performance.now()`); how far the sender fell behind its schedule is in the results JSON.',
    '  "After the first second": the p99 of the messages sent after the first second alone, a',
    '  diagnostic of warm-up (the headline p99 covers the whole run).',
    '- W4: 4 producers (250 unconfirmed each) and 4 competing consumers in one group, 100,000',
    '  messages: msgs/s from the first publish until the last ack is confirmed.',
    '- Peak RSS: the broker process\'s VmHWM after all four workloads.',
    '',
    'Peers: `bash scripts/install-peers.sh` (as root) installs Debian\'s nats-server and redis-server.  ',
    `Command: \`${report.command}\`${report.runsRequested > 1 ? ` (medians of ${report.runsRequested} runs)` : ' (one run)'}  `,
    `Commit: ${report.commit}, ${report.startedAt}  `,
    `Machine: ${machineLine(report.machine)}  `,
    `Results: \`${resultsFile}\``,
    '',
    ...report.systems.map((system) => `- ${system.label}: ${system.description}`),
    '',
    comparisonTable(report.systems, report.workloads),
  ];
  if (ferry === undefined) lines.push('', 'Ferry was not part of this run (`--only`).');
  else lines.push('', 'Ferry/peer above 1 means Ferry is faster for msgs/s; below 1 means lower latency or memory for ms and MiB.');
  for (const system of report.systems) {
    if (system.error !== undefined) lines.push('', `${system.label} failed in this run: ${system.error.split('\n')[0]}`);
  }
  lines.push(
    '',
    'Caveats:',
    '- Durability differs in one peer: Debian 12\'s nats-server is 2.9.10, which has no',
    '  `sync_interval: always` (added in 2.10); JetStream acks a publish once written to its file and',
    '  fsyncs every two minutes. Ferry (`durability: always`) and Redis (`appendfsync always`) fsync',
    '  before they confirm, so JetStream\'s figures are not fsync-per-confirm figures.',
    '- Redis keeps every stream in memory, so its peak RSS grows with the messages the run leaves',
    '  in its streams (about 350 MB of payload over the four workloads).',
    '- Two shared cores: the broker and the harness compete for them, as on a small VM.',
  );
  return lines.join('\n') + '\n';
}

export const CLUSTER_DOCS_SECTION_HEADING = '## Replicated workloads';

/** `--cluster --write-docs`: the same figures for the replicated systems, in their own section. */
export function clusterDocsSection(report: BenchReport, resultsFile: string): string {
  const lines = [
    CLUSTER_DOCS_SECTION_HEADING,
    '',
    'The workloads of "Broker workloads", same harness and sizes, against replicated systems: three',
    'nodes each on this machine, every publish confirmed only once the system has replicated it as',
    'configured. A cluster\'s peak RSS is its largest node\'s VmHWM.',
    '',
    'Peers: `bash scripts/install-peers.sh` (as root) installs nats-server, rabbitmq-server and etcd.  ',
    `Command: \`${report.command}\`${report.runsRequested > 1 ? ` (medians of ${report.runsRequested} runs)` : ' (one run)'}  `,
    `Commit: ${report.commit}, ${report.startedAt}  `,
    `Machine: ${machineLine(report.machine)}  `,
    `Results: \`${resultsFile}\``,
    '',
    ...report.systems.map((system) => `- ${system.label}: ${system.description}`),
    '',
    comparisonTable(report.systems, report.workloads),
  ];
  for (const system of report.systems) {
    if (system.error !== undefined) lines.push('', `${system.label} did not run to the end: ${system.error.split('\n')[0]}`);
  }
  return lines.join('\n') + '\n';
}

/** Replaces the section under `heading` (up to the next level-2 heading), adding it if absent. */
export function writeDocsSection(path: string, section: string, heading = DOCS_SECTION_HEADING): void {
  const current = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n';
  const lines = current.split('\n');
  const start = lines.findIndex((line) => line.trim() === heading);
  let next: string;
  if (start === -1) {
    next = `${current.replace(/\n*$/, '')}\n\n${section}`;
  } else {
    const afterStart = lines.slice(start + 1).findIndex((line) => /^## /.test(line));
    const end = afterStart === -1 ? lines.length : start + 1 + afterStart;
    const before = lines.slice(0, start).join('\n');
    const after = lines.slice(end).join('\n');
    next = `${before}${before === '' ? '' : '\n'}${section}${after === '' ? '' : `\n${after}`}`;
  }
  writeFileSync(path, next);
}
