/**
 * A small HTTP load generator for bench/http.ts when wrk is not installed: `connections`
 * keep-alive connections, each sending its next request as soon as the previous one is answered,
 * for `seconds`. It reports what wrk reports: requests, requests/s, latency percentiles, non-2xx
 * answers, and timeouts (requests not answered within 2 s, wrk's default, left out of the
 * percentiles as wrk does). Run as its own process, so its event loop is not the measured one's.
 *
 *   node --import tsx bench/http-load.ts '<json: {url, method, connections, seconds, body?, headers?}>'
 * prints one JSON line: LoadResult.
 */
import { Agent, request } from 'node:http';

/** wrk's default timeout: a request slower than this counts as a timeout, not a latency. */
const TIMEOUT_MS = 2_000;

export interface LoadSpec {
  url: string;
  method: 'GET' | 'POST';
  connections: number;
  seconds: number;
  /** base64 */
  body?: string;
  headers?: Record<string, string>;
}

export interface LoadResult {
  tool: 'node' | 'wrk';
  requests: number;
  requestsPerSec: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  non2xx: number;
  timeouts: number;
  errors: number;
}

async function run(spec: LoadSpec): Promise<LoadResult> {
  const url = new URL(spec.url);
  const agent = new Agent({ keepAlive: true, maxSockets: spec.connections });
  const body = spec.body === undefined ? undefined : Buffer.from(spec.body, 'base64');
  const headers: Record<string, string | number> = { ...spec.headers, ...(body === undefined ? {} : { 'content-length': body.length }) };
  const latencies: number[] = [];
  let non2xx = 0;
  let timeouts = 0;
  let errors = 0;
  let requests = 0;
  const startedMs = performance.now();
  const endMs = startedMs + spec.seconds * 1000;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const sentMs = performance.now();
      const req = request({ host: url.hostname, port: url.port, path: url.pathname + url.search, method: spec.method, headers, agent }, (res) => {
        res.on('data', () => undefined);
        res.on('end', () => {
          const tookMs = performance.now() - sentMs;
          requests++;
          if (tookMs > TIMEOUT_MS) timeouts++;
          else latencies.push(tookMs);
          if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) >= 400) non2xx++;
          resolve();
        });
      });
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end(body);
    });
  const worker = async (): Promise<void> => {
    while (performance.now() < endMs) await one();
  };
  await Promise.all(Array.from({ length: spec.connections }, worker));
  const elapsedS = (performance.now() - startedMs) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => (latencies.length === 0 ? 0 : latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!);
  return { tool: 'node', requests, requestsPerSec: requests / elapsedS, latencyP50Ms: at(0.5), latencyP99Ms: at(0.99), non2xx, timeouts, errors };
}

if (process.argv[2] !== undefined) {
  run(JSON.parse(process.argv[2]) as LoadSpec).then(
    (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
    (error: unknown) => {
      process.stderr.write(`${String(error)}\n`);
      process.exit(1);
    },
  );
}
