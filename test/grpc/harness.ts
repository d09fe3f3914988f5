/**
 * A real broker in a temp directory behind the gRPC/Connect handler on the multiplexed HTTP
 * listener (127.0.0.1, port 0), and a grpc-js client for it. Requests for other paths get a small
 * plain-text answer, standing in for the admin API.
 */
import { Broker, type BrokerOptions } from '../../src/broker/broker.js';
import { SystemClock } from '../../src/platform/clock.js';
import { silentLogger, type Logger } from '../../src/platform/logger.js';
import { createGrpcHandler, type GrpcHandler } from '../../src/transport/grpc/handler.js';
import { listenMultiplexed, type HttpListener, type MultiplexedListenOptions } from '../../src/transport/http/listener.js';
import { tempDir, type TempDir } from '../helpers.js';
import { GrpcTestClient } from './client.js';

export interface GrpcFixture {
  dir: TempDir;
  broker: Broker;
  grpc: GrpcHandler;
  listener: HttpListener;
  port: number;
  address: string;
  client: GrpcTestClient;
  /** Failures the server logged (a test can assert there were none). */
  errors: Array<{ event: string; fields: unknown }>;
  close(): Promise<void>;
}

export const FALLBACK_BODY = 'not the API\n';

export async function startGrpc(options: { broker?: Partial<BrokerOptions>; tls?: MultiplexedListenOptions['tls'] } = {}): Promise<GrpcFixture> {
  const dir = await tempDir('ferry-grpc-');
  const errors: GrpcFixture['errors'] = [];
  const logger: Logger = { ...silentLogger, error: (event, fields) => errors.push({ event, fields }) };
  const broker = await Broker.open({ dir: dir.path, logger, ...options.broker });
  const grpc = createGrpcHandler({
    broker: () => broker,
    clock: new SystemClock(),
    logger,
    fallback: (req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-http-version': req.httpVersion });
      res.end(FALLBACK_BODY);
    },
  });
  const listener = await listenMultiplexed(grpc.handle, { port: 0, host: '127.0.0.1', logger, ...(options.tls === undefined ? {} : { tls: options.tls }) });
  const address = `127.0.0.1:${listener.port}`;
  const client = new GrpcTestClient(address);
  return {
    dir,
    broker,
    grpc,
    listener,
    port: listener.port,
    address,
    client,
    errors,
    close: async () => {
      client.close();
      await grpc.close();
      await listener.close();
      await broker.close();
      await dir.remove();
    },
  };
}
