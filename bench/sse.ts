/**
 * Incremental Server-Sent Events parser: bytes arrive split anywhere (inside a UTF-8 character, a line or a
 * CRLF), events come out whole. Only `data:` fields matter for the OpenAI stream; other fields are skipped.
 */
export class SseParser {
  private readonly decoder = new TextDecoder('utf-8');
  private buffer = '';
  private data: string[] = [];

  /** Feeds a chunk and returns the data payloads of the events it completed. */
  push(chunk: Uint8Array): string[] {
    this.buffer += this.decoder.decode(chunk, { stream: true });
    return this.drain();
  }

  /** Flushes a last event the server did not terminate with a blank line. */
  end(): string[] {
    this.buffer += this.decoder.decode();
    const out = this.drain();
    if (this.buffer.length > 0) this.line(this.buffer, out);
    this.buffer = '';
    if (this.data.length > 0) out.push(this.data.join('\n'));
    this.data = [];
    return out;
  }

  private drain(): string[] {
    const out: string[] = [];
    let start = 0;
    for (;;) {
      const nl = this.buffer.indexOf('\n', start);
      if (nl < 0) break;
      const end = nl > start && this.buffer.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      this.line(this.buffer.slice(start, end), out);
      start = nl + 1;
    }
    this.buffer = this.buffer.slice(start);
    return out;
  }

  private line(line: string, out: string[]): void {
    if (line === '') {
      if (this.data.length > 0) out.push(this.data.join('\n'));
      this.data = [];
      return;
    }
    if (!line.startsWith('data:')) return;
    this.data.push(line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5));
  }
}
