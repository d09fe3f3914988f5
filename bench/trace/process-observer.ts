/**
 * What a process did and when, for tracing where a message's latency went: every FileHandle write
 * and datasync (start, duration, descriptor, bytes), every V8 collection, and every stretch in
 * which the event loop did not run for more than LOOP_GAP_MS. Times are epoch milliseconds with
 * sub-millisecond precision (performance.timeOrigin + performance.now()), so the records of two
 * processes on one machine line up.
 *
 * Diagnostic only (bench/w3-trace.ts): it wraps FileHandle's prototype, so it is loaded into a
 * broker with `--import`, never by the broker itself.
 */
import { open } from 'node:fs/promises';
import { PerformanceObserver, performance } from 'node:perf_hooks';

/**
 * An event loop that was away this long is recorded as a gap. libuv's timers have millisecond
 * resolution, so a 1 ms probe can come 2 ms apart without anything blocking; an idle process on
 * this machine shows about one gap a second over 2 ms (the virtual machine's own jitter).
 */
export const LOOP_GAP_MS = 3;
/** How often the gap detector's timer asks to run. */
const LOOP_PROBE_INTERVAL_MS = 1;

/** [start (epoch ms), duration ms, file descriptor, bytes] */
export type FileSpan = [number, number, number, number];
/** [start (epoch ms), duration ms] */
export type Span = [number, number];

export interface ProcessTrace {
  writes: FileSpan[];
  syncs: FileSpan[];
  collections: Span[];
  loopGaps: Span[];
}

export function epochNowMs(): number {
  return performance.timeOrigin + performance.now();
}

interface TracedHandle {
  fd: number;
  write(...args: unknown[]): Promise<{ bytesWritten: number }>;
  writev(...args: unknown[]): Promise<{ bytesWritten: number }>;
  datasync(): Promise<void>;
}

/** Starts recording; the returned trace fills in as the process runs. */
export async function observeProcess(options: { files: boolean }): Promise<ProcessTrace> {
  const trace: ProcessTrace = { writes: [], syncs: [], collections: [], loopGaps: [] };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) trace.collections.push([performance.timeOrigin + entry.startTime, entry.duration]);
  }).observe({ entryTypes: ['gc'] });
  let lastRunMs = performance.now();
  setInterval(() => {
    const nowMs = performance.now();
    if (nowMs - lastRunMs > LOOP_GAP_MS) trace.loopGaps.push([performance.timeOrigin + lastRunMs, nowMs - lastRunMs]);
    lastRunMs = nowMs;
  }, LOOP_PROBE_INTERVAL_MS).unref();
  if (options.files) await wrapFileHandle(trace);
  return trace;
}

async function wrapFileHandle(trace: ProcessTrace): Promise<void> {
  const handle = await open('/dev/null', 'r');
  const prototype = Object.getPrototypeOf(handle) as TracedHandle;
  await handle.close();
  const { write, writev, datasync } = prototype;
  prototype.write = async function (this: TracedHandle, ...args: unknown[]) {
    const startMs = epochNowMs();
    const result = await write.apply(this, args);
    trace.writes.push([startMs, epochNowMs() - startMs, this.fd, result.bytesWritten]);
    return result;
  };
  prototype.writev = async function (this: TracedHandle, ...args: unknown[]) {
    const startMs = epochNowMs();
    const result = await writev.apply(this, args);
    trace.writes.push([startMs, epochNowMs() - startMs, this.fd, result.bytesWritten]);
    return result;
  };
  prototype.datasync = async function (this: TracedHandle) {
    const startMs = epochNowMs();
    await datasync.call(this);
    trace.syncs.push([startMs, epochNowMs() - startMs, this.fd, 0]);
  };
}
