/**
 * The open-files check at start: every connection is a socket and every segment an open file, so
 * a low `ulimit -n` fails later as EMFILE in the middle of traffic. Better to say so at start,
 * with the number to set.
 */
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import type { Logger } from '../platform/logger.js';

/** Descriptors beyond connections and segments: journals, checkpoints, the admin port, stdio, libraries. */
const OPEN_FILES_HEADROOM = 256;
/** Files a partition keeps open besides its segments (delay store, checkpoint while written). */
const FILES_PER_PARTITION = 2;
/** Files a group keeps open: its journal's active segment and a snapshot being written. */
const FILES_PER_GROUP = 2;
/** `ulimit -n` answers quickly; a shell that hangs must not hold up the start. */
const ULIMIT_TIMEOUT_MS = 2000;

/** The soft open-files limit of this process; Infinity when unlimited, null when unknown. */
export function readOpenFilesLimit(procLimits = '/proc/self/limits'): number | null {
  try {
    const line = readFileSync(procLimits, 'utf8').split('\n').find((entry) => entry.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    if (soft === 'unlimited') return Infinity;
    if (soft !== undefined && /^\d+$/.test(soft)) return Number(soft);
  } catch {
    // Not Linux: ask the shell below.
  }
  const result = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8', timeout: ULIMIT_TIMEOUT_MS });
  const text = result.stdout?.trim();
  if (text === 'unlimited') return Infinity;
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : null;
}

export interface OpenFilesDemand {
  maxConnections: number;
  segments: number;
  partitions: number;
  groups: number;
}

export function openFilesNeeded(demand: OpenFilesDemand): number {
  return demand.maxConnections + demand.segments + demand.partitions * FILES_PER_PARTITION + demand.groups * FILES_PER_GROUP + OPEN_FILES_HEADROOM;
}

/** Logs `broker.open_files.low` (with the `ulimit -n` to set) when the limit is below the need. */
export function checkOpenFiles(logger: Logger, demand: OpenFilesDemand, limit: number | null = readOpenFilesLimit()): boolean {
  const needed = openFilesNeeded(demand);
  if (limit === null) {
    logger.info('broker.open_files.unknown', { needed });
    return true;
  }
  if (limit >= needed) return true;
  logger.warn('broker.open_files.low', {
    limit,
    needed,
    ...demand,
    fix: `ulimit -n ${needed}`,
    note: 'raise the limit (ulimit -n, systemd LimitNOFILE) or lower server.maxConnections; past the limit new connections and segments fail with EMFILE',
  });
  return false;
}
