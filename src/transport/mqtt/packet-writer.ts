/**
 * The packets a connection sends in one tick, encoded by mqtt-packet's `writeToStream` straight
 * into one list of pieces and joined into one buffer when the tick's write goes out. `generate()`
 * makes an emitter, two arrays and a buffer per packet, then the tick joins those buffers again;
 * a QoS 1 publisher costs one PUBACK per message, so that was per-message garbage.
 */
import mqttPacket, { type Packet } from 'mqtt-packet';

export type EncodeOutcome = { kind: 'queued'; bytes: number } | { kind: 'refused'; error: Error } | { kind: 'tooLarge'; bytes: number };

export class PacketWriter {
  private parts: Array<Buffer | string> = [];
  private bytes = 0;
  private error: Error | null = null;
  /** What mqtt-packet writes to: it calls only `write` (pieces) and `destroy` (a packet it refuses). */
  private readonly sink = {
    write: (chunk: Buffer | string): boolean => {
      this.parts.push(chunk);
      this.bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
      return true;
    },
    destroy: (error?: Error): void => {
      this.error = error ?? new Error('the encoder refused the packet');
    },
  };

  /** Bytes queued and not yet taken. */
  get queuedBytes(): number {
    return this.bytes;
  }

  /** Encodes `packet` after those queued; one the encoder refuses, or one over `bytesMax`, is taken back whole. */
  add(packet: Packet, protocolVersion: number, bytesMax: number): EncodeOutcome {
    const mark = this.parts.length;
    const before = this.bytes;
    this.error = null;
    try {
      mqttPacket.writeToStream(packet, this.sink as unknown as NodeJS.WritableStream, { protocolVersion });
    } catch (error) {
      this.error = error as Error;
    }
    const error = this.error;
    const bytes = this.bytes - before;
    if (error === null && bytes <= bytesMax) return { kind: 'queued', bytes };
    this.parts.length = mark;
    this.bytes = before;
    this.error = null;
    return error !== null ? { kind: 'refused', error } : { kind: 'tooLarge', bytes };
  }

  /** Everything queued, as one buffer (null when nothing is); the writer is empty after. */
  take(): Buffer | null {
    if (this.parts.length === 0) return null;
    const joined = Buffer.allocUnsafe(this.bytes);
    let position = 0;
    for (const part of this.parts) position += typeof part === 'string' ? joined.write(part, position) : part.copy(joined, position);
    this.parts = [];
    this.bytes = 0;
    return joined;
  }
}
