/**
 * `npm run bench -- --tracing`: what the client's OpenTelemetry spans cost (docs/OPERATIONS.md,
 * "Tracing"), as W1 (publish throughput) and W2 (consume throughput, one ack per message) from
 * bench/workloads.ts, against a fresh broker per mode:
 *
 *   off      connect({ tracing: false }): the API is never loaded, as when it is not installed
 *   api      @opentelemetry/api loaded, no SDK registered: one check per message, no span
 *   sdk      an SDK registered (BatchSpanProcessor, an exporter that drops the spans, the W3C
 *            propagator): a producer span per publish, a consumer span per delivery
 *
 *   npm run bench -- --tracing [--runs 3] [--quick] [--write-docs] [--no-build]
 *
 * Modes are interleaved run by run; the medians are reported. Prints markdown, writes
 * bench/results/<date>-tracing-<commit>.json, and with --write-docs rewrites the "## Tracing"
 * section of docs/BENCHMARKS.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { context, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { currentCommit, LAUNCHER, launcherNodeFlags, REPO_ROOT } from './checkout.js';
import { ensureBuilt, FerryConnectionAdapter, loadClient, type FerryConnectOptions } from './peers/ferry.js';
import { LOOPBACK_HOST, ProcessRegistry } from './processes.js';
import { machineLine, writeDocsSection, type Machine } from './report.js';
import { median } from './stats.js';
import { FULL_SCALE, QUICK_SCALE, runWorkload, type ThroughputResult } from './workloads.js';

const MODES = ['off', 'api', 'sdk'] as const;
type Mode = (typeof MODES)[number];
const DOCS_HEADING = '## Tracing';
/** More repetitions than this is a mistake on a shared two-core machine, not a wish. */
const RUNS_MAX = 10;

/** Drops every span: the cost measured is making them and handing them to a processor, not exporting. */
const dropSpans: SpanExporter = {
  export: (_spans, done) => done({ code: 0 }),
  shutdown: () => Promise.resolve(),
};

interface TracingReport {
  command: string;
  startedAt: string;
  commit: string;
  machine: Machine;
  loadAverage: { start: number; end: number };
  quick: boolean;
  runs: Array<{ run: number; mode: Mode; w1: ThroughputResult; w2: ThroughputResult }>;
}

function setMode(mode: Mode): void {
  trace.disable();
  propagation.disable();
  context.disable();
  if (mode !== 'sdk') return;
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropSpans)] }));
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
}

const thousands = (value: number): string => Math.round(value).toLocaleString('en-US');

export function tracingSection(report: TracingReport, resultsFile: string): string {
  const medianOf = (mode: Mode, pick: (run: TracingReport['runs'][number]) => number): number => median(report.runs.filter((run) => run.mode === mode).map(pick));
  const base = { w1: medianOf('off', (r) => r.w1.msgsPerSec), w2: medianOf('off', (r) => r.w2.msgsPerSec) };
  const rows = MODES.map((mode) => {
    const w1 = medianOf(mode, (r) => r.w1.msgsPerSec);
    const w2 = medianOf(mode, (r) => r.w2.msgsPerSec);
    return `| ${mode} | ${thousands(w1)} | ${(w1 / base.w1).toFixed(2)} | ${thousands(w2)} | ${(w2 / base.w2).toFixed(2)} |`;
  });
  const { start, end } = report.loadAverage;
  const busy = Math.max(start, end) > report.machine.cpus / 2;
  const runs = report.runs.length / MODES.length;
  return [
    DOCS_HEADING,
    '',
    `Measured ${report.startedAt} at ${report.commit} with \`${report.command}\` on ${machineLine(report.machine)}; results: \`${resultsFile}\`.`,
    `Load average (1 min) at the start and the end: ${start.toFixed(1)} and ${end.toFixed(1)}.` +
      (busy ? ' **Measured on a busy machine**: other work held the cores, so differences of a few percent are noise; re-measure on a quiet machine.' : ''),
    `W1 and W2 (bench/workloads.ts${report.quick ? ', --quick scale' : ''}), median of ${runs} run${runs === 1 ? '' : 's'} per mode, a fresh broker each:`,
    '`off` never loads the API (as when it is not installed), `api` has it loaded and no SDK registered, `sdk` registers one (batch processor, spans dropped by the exporter).',
    '',
    '| mode | W1 publish (msgs/s) | × off | W2 consume (msgs/s) | × off |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
    'Re-measure (on a quiet machine, a few minutes): `npm run bench -- --tracing --runs 3 --write-docs`.',
    '',
  ].join('\n');
}

export async function runTracingBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { runs: { type: 'string', default: '1' }, quick: { type: 'boolean', default: false }, 'write-docs': { type: 'boolean', default: false }, 'no-build': { type: 'boolean', default: false } },
    strict: true,
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > RUNS_MAX) throw new Error(`--runs must be an integer from 1 to ${RUNS_MAX}`);
  ensureBuilt(!values['no-build']);
  const client = await loadClient();
  const scale = values.quick ? QUICK_SCALE : FULL_SCALE;
  const processes = new ProcessRegistry();
  const report: TracingReport = {
    command: `npm run bench -- --tracing${argv.length > 0 ? ` ${argv.join(' ')}` : ''}`,
    startedAt: new Date().toISOString(),
    commit: currentCommit(),
    machine: { cpus: availableParallelism(), cpuModel: cpus()[0]?.model.trim() ?? 'unknown', memoryBytes: totalmem(), kernel: release(), node: process.version },
    loadAverage: { start: loadavg()[0]!, end: 0 },
    quick: values.quick,
    runs: [],
  };
  try {
    for (let run = 1; run <= runs; run++) {
      for (const mode of MODES) {
        setMode(mode);
        const server = await processes.start({
          name: 'ferry-tracing',
          command: process.execPath,
          args: (port, dataDir) => [...launcherNodeFlags(), LAUNCHER, 'serve', '--dir', dataDir, '--port', String(port), '--host', LOOPBACK_HOST, '--http-port', '0'],
          cwd: REPO_ROOT,
        });
        try {
          const options = { host: LOOPBACK_HOST, port: server.port, reconnect: false, tracing: mode !== 'off' } as FerryConnectOptions;
          const broker = { connect: async () => new FerryConnectionAdapter(await client.connect(options)) };
          const state = { w1TopicFilled: false };
          const w1 = (await runWorkload('W1', broker, scale, state)) as ThroughputResult;
          const w2 = (await runWorkload('W2', broker, scale, state)) as ThroughputResult;
          report.runs.push({ run, mode, w1, w2 });
          process.stderr.write(`bench tracing: run ${run} ${mode}: W1 ${thousands(w1.msgsPerSec)} msgs/s, W2 ${thousands(w2.msgsPerSec)} msgs/s\n`);
        } finally {
          await processes.stop(server);
        }
      }
    }
  } finally {
    setMode('off');
    await processes.stopAll();
    processes.dispose();
  }
  report.loadAverage.end = loadavg()[0]!;
  const stamp = report.startedAt.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
  const resultsDir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const resultsFile = join(resultsDir, `${stamp}-tracing-${report.commit}.json`);
  writeFileSync(resultsFile, `${JSON.stringify(report, null, 2)}\n`);
  const section = tracingSection(report, relative(REPO_ROOT, resultsFile));
  process.stdout.write(section);
  if (values['write-docs']) writeDocsSection(join(REPO_ROOT, 'docs', 'BENCHMARKS.md'), section, DOCS_HEADING);
  return 0;
}
