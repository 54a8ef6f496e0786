const encoder = new TextEncoder();

/**
 * A server-sent-events body written by hand rather than through a helper: we need the exact `data:` framing
 * OpenAI clients parse, and a cancel hook that fires the moment the client goes away.
 */
export class SseStream {
  readonly response: Response;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  private open = true;

  constructor(onCancel: () => void, headers: Record<string, string> = {}) {
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.controller = controller;
      },
      cancel: () => {
        this.open = false;
        onCancel();
      },
    });
    this.response = new Response(body, {
      headers: { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', ...headers },
    });
  }

  get closed(): boolean {
    return !this.open;
  }

  send(data: unknown): void {
    this.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  /** A named event, as the Responses API streams them (`event: response.created`). */
  sendEvent(event: string, data: unknown): void {
    this.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** Ends a successful stream the way OpenAI does. */
  done(): void {
    this.write('data: [DONE]\n\n');
    this.close();
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.controller.close();
  }

  private write(text: string): void {
    if (this.open) this.controller.enqueue(encoder.encode(text));
  }
}
