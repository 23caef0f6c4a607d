// Server-Sent Events over fetch(): EventSource cannot send an Authorization header, so the
// console reads the stream itself, parses it as the HTML standard says, and reconnects with
// Last-Event-ID when the server ends the stream (every 5 minutes) or the connection drops.

export interface SseMessage {
  id: string;
  event: string;
  data: string;
}

/** Incremental parser: feed decoded text, get the events completed by it. */
export class SseParser {
  lastEventId = '';
  retry: number | null = null;
  private buffer = '';
  private data: string[] = [];
  private eventType = '';
  private idBuffer = '';

  constructor(lastEventId = '') {
    this.lastEventId = lastEventId;
    this.idBuffer = lastEventId;
  }

  feed(text: string): SseMessage[] {
    this.buffer += text;
    const out: SseMessage[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A lone CR at the end may be the first half of a CRLF split across chunks.
      if (match[0] === '\r' && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const message = this.line(line);
      if (message) out.push(message);
    }
    return out;
  }

  private line(line: string): SseMessage | null {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.eventType = value;
    else if (field === 'id' && !value.includes('\0')) this.idBuffer = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
    return null;
  }

  private dispatch(): SseMessage | null {
    // The id moves even without data: the server's heartbeats carry the cursor that way.
    this.lastEventId = this.idBuffer;
    const data = this.data;
    const eventType = this.eventType;
    this.data = [];
    this.eventType = '';
    if (data.length === 0) return null;
    return { id: this.lastEventId, event: eventType || 'message', data: data.join('\n') };
  }
}

export type StreamStatus = 'connecting' | 'live' | 'reconnecting' | 'stopped' | 'error';

export interface StreamOptions {
  url: string;
  token: string;
  signal: AbortSignal;
  lastEventId?: string;
  onMessage: (message: SseMessage) => void;
  onStatus: (status: StreamStatus, detail?: string) => void;
  /** Called when the server refuses the stream (4xx but 429 and 408): no retry. */
  onFatal: (status: number, message: string) => void;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/** The API's error message of a refused stream, else its status line. */
async function messageOf(response: Response): Promise<string> {
  try {
    const body = (await response.json()) as { message?: string };
    if (body?.message) return body.message;
  } catch {
    // not JSON
  }
  return `${response.status} ${response.statusText}`;
}

/** Reads the stream until `signal` aborts or the server refuses it (4xx other than 429 and
 * 408); reconnects otherwise. */
export async function followStream(options: StreamOptions): Promise<void> {
  const { url, token, signal } = options;
  let lastEventId = options.lastEventId ?? '';
  let retryMs = 1000;
  let failures = 0;
  options.onStatus('connecting');
  while (!signal.aborted) {
    try {
      const headers: Record<string, string> = {
        Authorization: `Bearer ${token}`,
        Accept: 'text/event-stream',
      };
      if (lastEventId) headers['Last-Event-ID'] = lastEventId;
      const response = await fetch(url, { headers, signal, cache: 'no-store', credentials: 'omit' });
      if (response.status === 429 || response.status === 408) {
        // Too many streams open for this token (or the server timed out): not a refusal.
        // Wait as asked (Retry-After, seconds), then try again from where the stream stopped.
        const asked = Number(response.headers.get('Retry-After'));
        const waitMs = Number.isFinite(asked) && asked > 0 ? Math.min(asked, 300) * 1000 : retryMs;
        options.onStatus('reconnecting', await messageOf(response));
        await sleep(waitMs, signal);
        continue;
      }
      if (response.status >= 400 && response.status < 500) {
        const message = await messageOf(response);
        options.onStatus('error', message);
        options.onFatal(response.status, message);
        return;
      }
      if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
      options.onStatus('live');
      failures = 0;
      const parser = new SseParser(lastEventId);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          for (const message of parser.feed(value)) options.onMessage(message);
          lastEventId = parser.lastEventId;
          if (parser.retry !== null) retryMs = parser.retry;
        }
      } finally {
        reader.releaseLock();
      }
      lastEventId = parser.lastEventId;
      // The server ends each stream after a while: reconnect from where it stopped.
      if (signal.aborted) break;
      options.onStatus('reconnecting');
      await sleep(retryMs, signal);
    } catch (error) {
      if (signal.aborted) break;
      failures += 1;
      options.onStatus('reconnecting', error instanceof Error ? error.message : String(error));
      await sleep(Math.min(retryMs * 2 ** Math.min(failures - 1, 5), 30000), signal);
    }
  }
  options.onStatus('stopped');
}
