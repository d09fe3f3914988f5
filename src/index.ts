/**
 * The embedded API: `import { Broker } from 'ferry'`. The package entry point is the one place that
 * puts a transport on the broker: `listen` serves TCP clients from the same object.
 */
import { Broker as CoreBroker, type BrokerOptions } from './broker/broker.js';
import { DEFAULT_HOST, DEFAULT_PORT } from './protocol/limits.js';
import type { TcpServerOptions } from './transport/tcp/options.js';
import { TcpServer } from './transport/tcp/server.js';

export { DEFAULT_TOPIC_CONFIG } from './broker/config.js';
export type { BrokerOptions, ConsumeOptions, PublishOptions } from './broker/broker.js';
export type { ConsumedMessage, MessageStream } from './broker/message-stream.js';
export type * from './broker/types.js';
export { FerryError, ERROR_CODES, isFerryError } from './errors.js';
export type { ErrorCode } from './errors.js';

/** Where to listen, plus any TCP server setting (heartbeats, limits, slow consumers). */
export interface ListenOptions extends TcpServerOptions {
  port?: number;
  host?: string;
}

export interface Listener {
  port: number;
  host: string;
  close(): Promise<void>;
}

export class Broker extends CoreBroker {
  static override open(options: BrokerOptions): Promise<Broker> {
    return CoreBroker.build(options, (parts) => new Broker(parts));
  }

  /** Puts the TCP server on this broker; it closes with the broker. */
  async listen(options: ListenOptions = {}): Promise<Listener> {
    this.checkOpen();
    const { port, host, ...serverOptions } = options;
    const server = new TcpServer(this, { logger: this.logger, clock: this.clock, ...serverOptions });
    const address = await server.listen(port ?? DEFAULT_PORT, host ?? DEFAULT_HOST);
    const detach = this.attachTransport(server);
    return {
      port: address.port,
      host: address.host,
      close: async () => {
        detach();
        await server.close();
      },
    };
  }
}
