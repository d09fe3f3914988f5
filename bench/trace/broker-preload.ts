/**
 * Loaded into a traced broker (`node --import tsx --import bench/trace/broker-preload.ts …`): records
 * the process's writes, syncs, collections and loop gaps, and writes them as JSON to the path in
 * FERRY_TRACE_OUT when the process exits.
 */
import { writeFileSync } from 'node:fs';
import { observeProcess } from './process-observer.js';

const out = process.env['FERRY_TRACE_OUT'];
if (out === undefined || out === '') throw new Error('broker-preload: FERRY_TRACE_OUT names no file');
const trace = await observeProcess({ files: true });
process.on('exit', () => writeFileSync(out, JSON.stringify(trace)));
