/**
 * The part of this checkout's built client (dist/src/client) that the microscopes (bench:driver,
 * bench:w3trace) use, loaded at run time so that they measure what `npm run build` produced.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from './checkout.js';

export interface BenchMessage {
  value: Buffer;
  ack(): Promise<void>;
}

export interface BenchClient {
  createTopic(name: string, options: { durability: 'always' }): Promise<unknown>;
  publish(topic: string, value: Buffer): Promise<unknown>;
  subscribe(topic: string, options: { group: string; from: 'earliest'; prefetch: number }): Promise<AsyncIterable<BenchMessage>>;
  close(): Promise<void>;
}

export type Connect = (options: { host: string; port: number; reconnect: boolean }) => Promise<BenchClient>;

export async function loadBuiltConnect(): Promise<Connect> {
  const module = (await import(pathToFileURL(join(REPO_ROOT, 'dist', 'src', 'client', 'index.js')).href)) as { connect: Connect };
  return module.connect;
}
