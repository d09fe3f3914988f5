/**
 * A process of chaos clients: some producers and some consumers, each with its own connection,
 * all recording into one history file. The harness starts it with a JSON config as the only
 * argument; it prints `{"ready":true}` once every client is connected and running.
 *
 * SIGTERM: producers stop publishing and wait (up to the grace) for their messages to be
 * confirmed, consumers settle what they hold and close with a barrier; then the history is
 * flushed and the process exits 0. SIGKILL (a consumer-kill scenario): the history keeps every
 * line flushed so far — acks are flushed before they are sent.
 */
import type { FerryClient } from '../../src/client/index.js';
import { HistoryWriter } from './history.js';
import { Producer } from './producer.js';
import { Consumer } from './consumer.js';
import { chaosConnect, type ClientProcessConfig } from './workload.js';
import { seededRandom } from '../sim/random.js';

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2]!) as ClientProcessConfig;
  const history = new HistoryWriter(config.historyPath);
  const random = seededRandom(config.seed);
  const clients: FerryClient[] = [];
  const producers: Producer[] = [];
  const consumers: Consumer[] = [];
  for (const [index, id] of config.producers.entries()) {
    const client = await chaosConnect(config.servers ?? config.port, id, config.consumer.requestTimeoutMs);
    clients.push(client);
    const partition = index % config.partitions;
    producers.push(new Producer(id, client, config.topic, config.producer, history, seededRandom(Math.floor(random() * 2 ** 32)), partition));
  }
  for (const id of config.consumers) {
    const client = await chaosConnect(config.servers ?? config.port, id, config.consumer.requestTimeoutMs);
    clients.push(client);
    consumers.push(new Consumer(id, client, config.topic, config.consumer, history, seededRandom(Math.floor(random() * 2 ** 32))));
  }
  // A periodic flush bounds what a producer's history lags behind (acks flush on their own).
  const flushTimer = setInterval(() => history.flush(), 100);
  for (const consumer of consumers) consumer.start();
  for (const producer of producers) producer.start();
  // The handler goes in before `ready` is printed: the harness may stop a client as soon as it
  // reads that line (a consumer restarted by the last fault of a run), and a SIGTERM that came
  // before the handler would end the process without its history (consumer-kill, seed 36).
  process.once('SIGTERM', () => {
    void (async () => {
      await Promise.all(producers.map((producer) => producer.stop(config.stopGraceMs)));
      await Promise.all(consumers.map((consumer) => consumer.stop()));
      await Promise.all(clients.map((client) => client.close()));
      clearInterval(flushTimer);
      history.close();
      process.exit(0);
    })();
  });
  process.stdout.write(JSON.stringify({ ready: true }) + '\n');
}

await main();
