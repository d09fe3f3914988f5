/**
 * The floor of `npm run bench -- --mqtt`: an MQTT server that stores nothing and routes nothing. It
 * parses what a client sends with `mqtt-packet` and answers CONNECT with CONNACK, each QoS 1
 * PUBLISH with its PUBACK (the PUBACKs of one socket read in one write), PINGREQ with PINGRESP;
 * SUBSCRIBE is granted and never delivers. What a publisher reaches against it is the most any
 * broker can show with that publisher on this machine. Run on a loopback port given as the first
 * argument, in a process of its own (started and stopped by PID).
 */
import { createServer, type Socket } from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';

const PUBACK_BYTES = 4;
const PUBACK_FIRST_BYTE = 0x40;
const PUBACK_REMAINING_LENGTH = 0x02;

function serve(socket: Socket): void {
  const parser = mqttPacket.parser();
  let protocolVersion = 4;
  /** PUBACKs of the current read: [first byte, remaining length, id high, id low] each. */
  let acks = Buffer.allocUnsafe(PUBACK_BYTES * 64);
  let ackBytes = 0;
  const control: Buffer[] = [];
  parser.on('packet', (packet: Packet) => {
    switch (packet.cmd) {
      case 'connect':
        protocolVersion = packet.protocolVersion ?? 4;
        control.push(mqttPacket.generate({ cmd: 'connack', returnCode: 0, reasonCode: 0, sessionPresent: false }, { protocolVersion }));
        return;
      case 'publish':
        if (packet.qos === 0) return;
        if (ackBytes + PUBACK_BYTES > acks.length) {
          const grown = Buffer.allocUnsafe(acks.length * 2);
          acks.copy(grown, 0, 0, ackBytes);
          acks = grown;
        }
        acks[ackBytes] = packet.qos === 1 ? PUBACK_FIRST_BYTE : 0x50; // PUBREC for QoS 2
        acks[ackBytes + 1] = PUBACK_REMAINING_LENGTH;
        acks.writeUInt16BE(packet.messageId!, ackBytes + 2);
        ackBytes += PUBACK_BYTES;
        return;
      case 'pubrel':
        control.push(mqttPacket.generate({ cmd: 'pubcomp', messageId: packet.messageId! }, { protocolVersion }));
        return;
      case 'subscribe':
        control.push(mqttPacket.generate({ cmd: 'suback', messageId: packet.messageId, granted: packet.subscriptions.map((one) => one.qos) }, { protocolVersion }));
        return;
      case 'pingreq':
        control.push(mqttPacket.generate({ cmd: 'pingresp' }, { protocolVersion }));
        return;
      case 'disconnect':
        socket.end();
        return;
      default:
        return;
    }
  });
  parser.on('error', () => socket.destroy());
  // Nagle's algorithm stays on, as aedes and mosquitto leave it: with it off, each read's few
  // PUBACKs go out at once as tiny segments and a publisher that writes packet by packet
  // (mqtt.js) falls into a ping-pong of one packet per read, slower than against aedes.
  socket.on('data', (chunk: Buffer) => {
    parser.parse(chunk);
    for (const packet of control.splice(0)) socket.write(packet);
    if (ackBytes > 0) {
      socket.write(Buffer.from(acks.subarray(0, ackBytes)));
      ackBytes = 0;
    }
  });
  socket.on('error', () => socket.destroy());
}

const port = Number(process.argv[2]);
const sockets = new Set<Socket>();
const server = createServer((socket) => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  serve(socket);
});
server.listen(port, '127.0.0.1', () => process.stderr.write(`mqtt floor listening on ${port}\n`));
process.on('SIGTERM', () => {
  for (const socket of sockets) socket.destroy();
  server.close(() => process.exit(0));
});
