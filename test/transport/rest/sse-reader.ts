/**
 * Reads a `text/event-stream` response the way EventSource does (the HTML standard's parsing
 * rules: lines end in LF, CR or CRLF; `data:` lines are joined by LF; `id:` sets the last event
 * id even without data; a comment line starts with `:`), so the tests see what a browser would.
 */

export interface SseEvent {
  type: string;
  data: string;
  lastEventId: string;
}

export class SseReader {
  private buffer = '';
  private readonly events: SseEvent[] = [];
  private data: string[] = [];
  private type = '';
  /** The last event id, as EventSource keeps it for its reconnect's `Last-Event-ID`. */
  lastEventId = '';
  retryMs: number | null = null;
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private ended = false;
  private reading: Promise<ReadableStreamReadResult<Uint8Array>> | null = null;

  constructor(response: Response) {
    if (response.body === null) throw new Error('no body');
    this.reader = response.body.getReader();
  }

  /** The next `count` events; fails after `timeoutMs` or when the stream ends first. */
  async take(count: number, timeoutMs = 10_000): Promise<SseEvent[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.events.length < count) {
      if (this.ended) throw new Error(`the stream ended after ${this.events.length} of ${count} events`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`timed out with ${this.events.length} of ${count} events`);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), remaining)));
      // A read that outlives a timeout is kept for the next call: its bytes must not be lost.
      this.reading ??= this.reader.read();
      const read = await Promise.race([this.reading, timeout]);
      clearTimeout(timer);
      if (read === 'timeout') continue;
      this.reading = null;
      if (read.done) {
        this.ended = true;
        continue;
      }
      this.feed(this.decoder.decode(read.value, { stream: true }));
    }
    return this.events.splice(0, count);
  }

  /** Whether an event arrives within `ms` (it is kept for take()). */
  async quietFor(ms: number): Promise<boolean> {
    try {
      await this.take(1, ms).then((events) => this.events.unshift(...events));
      return false;
    } catch {
      return true;
    }
  }

  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => undefined);
  }

  private feed(text: string): void {
    this.buffer += text;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (match === null) return;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length > 0) this.events.push({ type: this.type === '' ? 'message' : this.type, data: this.data.join('\n'), lastEventId: this.lastEventId });
      this.data = [];
      this.type = '';
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.type = value;
    else if (field === 'id') this.lastEventId = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value);
  }
}

/** Opens an event stream with fetch, as EventSource would (Accept, and Last-Event-ID on a reconnect). */
export async function openEvents(url: string, headers: Record<string, string> = {}): Promise<{ response: Response; reader: SseReader }> {
  const response = await fetch(url, { headers: { accept: 'text/event-stream', ...headers } });
  return { response, reader: new SseReader(response) };
}
