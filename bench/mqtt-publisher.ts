/**
 * A lean MQTT 3.1.1 QoS 1 publisher for `npm run bench -- --mqtt --publisher lean`: one TCP
 * connection, CONNECT from `mqtt-packet`, then PUBLISH packets built from one template (only the
 * packet id differs) and PUBACKs read off the socket by their fixed header. It keeps at most
 * `inFlightMax` publishes unacknowledged and, after each read, sends as many new ones as were
 * acknowledged, in one write. Real MQTT over TCP, without mqtt.js's per-message store, callbacks
 * and packet objects: what one publisher process can offer when the client library is not the limit.
 */
import { connect, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';

const PACKET_ID_MAX = 0xffff;
const CONNACK = 0x20;
const PUBACK = 0x40;

/** PUBLISH QoS 1 of `payload` to `topic`, with the packet id at `idAt` (to be written per message). */
function publishTemplate(topic: string, payload: Buffer): { bytes: Buffer; idAt: number } {
  const packet = mqttPacket.generate({ cmd: 'publish', topic, payload, qos: 1, messageId: 1, dup: false, retain: false });
  // Fixed header (1 byte + remaining length), topic (2 + n), then the packet id.
  let lengthBytes = 1;
  while ((packet[lengthBytes]! & 0x80) !== 0) lengthBytes++;
  return { bytes: packet, idAt: 1 + lengthBytes + 2 + Buffer.byteLength(topic) };
}

export interface LeanRun {
  acked: number;
  elapsedS: number;
}

/** Publishes for `seconds` with at most `inFlightMax` unacknowledged; resolves with how many were acknowledged. */
export function leanPublish(host: string, port: number, clientId: string, topic: string, payload: Buffer, inFlightMax: number, seconds: number): Promise<LeanRun> {
  const template = publishTemplate(topic, payload);
  const size = template.bytes.length;
  const outstanding = new Uint8Array(PACKET_ID_MAX + 1);
  let nextId = 1;
  let inFlight = 0;
  let acked = 0;
  let connected = false;
  let started = 0;
  let deadline = 0;
  let pending: Buffer | null = null;
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host, port, noDelay: true }, () => {
      socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId, clean: true, keepalive: 60 }));
    });
    const send = (count: number): void => {
      if (count <= 0) return;
      const out = Buffer.allocUnsafe(count * size);
      for (let n = 0; n < count; n++) {
        const at = n * size;
        template.bytes.copy(out, at);
        while (outstanding[nextId] === 1) nextId = nextId === PACKET_ID_MAX ? 1 : nextId + 1;
        outstanding[nextId] = 1;
        out.writeUInt16BE(nextId, at + template.idAt);
        nextId = nextId === PACKET_ID_MAX ? 1 : nextId + 1;
      }
      inFlight += count;
      socket.write(out);
    };
    const finish = (): void => {
      const elapsedS = (performance.now() - started) / 1000;
      socket.end(mqttPacket.generate({ cmd: 'disconnect' }));
      resolve({ acked, elapsedS });
    };
    socket.on('data', (chunk: Buffer) => {
      const data = pending === null ? chunk : Buffer.concat([pending, chunk]);
      pending = null;
      let at = 0;
      let freed = 0;
      while (at < data.length) {
        // Fixed header: type byte, then the remaining length (1–4 bytes, 7 bits each).
        let length = 0;
        let shift = 0;
        let cursor = at + 1;
        let complete = false;
        while (cursor < data.length) {
          const byte = data[cursor++]!;
          length += (byte & 0x7f) << shift;
          shift += 7;
          if ((byte & 0x80) === 0) {
            complete = true;
            break;
          }
        }
        if (!complete || cursor + length > data.length) break;
        const type = data[at]! & 0xf0;
        if (type === PUBACK) {
          const id = data.readUInt16BE(cursor);
          if (outstanding[id] === 1) {
            outstanding[id] = 0;
            freed++;
          }
        } else if (type === CONNACK && !connected) {
          if (data[cursor + 1] !== 0) return reject(new Error(`CONNACK refused: return code ${data[cursor + 1]}`));
          connected = true;
          started = performance.now();
          deadline = started + seconds * 1000;
          send(inFlightMax);
        }
        at = cursor + length;
      }
      if (at < data.length) pending = Buffer.from(data.subarray(at));
      if (freed === 0) return;
      inFlight -= freed;
      acked += freed;
      if (performance.now() < deadline) send(inFlightMax - inFlight);
      else if (inFlight === 0) finish();
    });
    socket.on('error', reject);
    socket.on('close', () => {
      if (inFlight > 0 || !connected) reject(new Error(`the connection closed with ${inFlight} publishes unacknowledged`));
    });
  });
}
