/**
 * MQTT over WebSocket at the HTTP port's `/mqtt` (what mqtt.js in a browser dials): the upgrade is
 * taken by `ws`, the subprotocol `mqtt` (or 3.1's `mqttv3.1`) chosen, and the socket's binary
 * frames handed to the MQTT port as one stream, so everything else (login, limits, sessions) is
 * the MQTT port's. A packet may span frames or share one, as MQTT-6.0.0 allows.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { createWebSocketStream, WebSocketServer } from 'ws';
import type { MqttServer } from './server.js';

/** The WebSocket subprotocols MQTT clients ask for (MQTT-6.0.0-3), in preference order. */
const MQTT_SUBPROTOCOLS = ['mqtt', 'mqttv3.1'] as const;
/** A frame's payload may carry the largest packet and its fixed header (at most 5 bytes). */
const FIXED_HEADER_BYTES_MAX = 5;

export class MqttWebSocketAcceptor {
  private readonly sockets: WebSocketServer;

  constructor(
    private readonly server: MqttServer,
    packetBytesMax: number,
  ) {
    this.sockets = new WebSocketServer({
      noServer: true,
      maxPayload: packetBytesMax + FIXED_HEADER_BYTES_MAX,
      perMessageDeflate: false,
      handleProtocols: (offered) => MQTT_SUBPROTOCOLS.find((name) => offered.has(name)) ?? false,
    });
  }

  /** Takes an Upgrade request for /mqtt; a request that is not a WebSocket handshake is answered 400 by `ws`. */
  readonly upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => undefined);
    this.sockets.handleUpgrade(req, socket, head, (webSocket) => {
      const stream = createWebSocketStream(webSocket);
      stream.on('error', () => undefined);
      this.server.attach(stream, req.socket.remoteAddress ?? '');
    });
  };

  close(): void {
    this.sockets.close();
  }
}
