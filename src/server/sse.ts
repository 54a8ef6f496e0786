const encoder = new TextEncoder();

/**
 * Bytes queued for a client before the producer waits (`ready`): a stream nobody reads holds this much here, and
 * its job at most its max_tokens of token batches, instead of every chunk as JSON.
 */
const HIGH_WATER_BYTES = 64 * 1024;

/**
 * A server-sent-events body written by hand rather than through a helper: we need the exact `data:` framing
 * OpenAI clients parse, and a cancel hook that fires the moment the client goes away.
 */
export class SseStream {
  readonly response: Response;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  private open = true;
  /** Writers waiting in `ready` (one per choice of a streamed n > 1): every one is woken, not just the last. */
  private readonly waiting = new Set<() => void>();

  constructor(onCancel: () => void, headers: Record<string, string> = {}) {
    const body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.controller = controller;
        },
        pull: () => this.wakeWriter(),
        cancel: () => {
          this.open = false;
          this.wakeWriter();
          onCancel();
        },
      },
      new ByteLengthQueuingStrategy({ highWaterMark: HIGH_WATER_BYTES }),
    );
    this.response = new Response(body, {
      headers: { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', ...headers },
    });
  }

  get closed(): boolean {
    return !this.open;
  }

  /** Resolves once the client has read enough that more may be queued (or the stream ended, or `signal` fired). */
  async ready(signal: AbortSignal): Promise<void> {
    while (this.open && !signal.aborted && (this.controller.desiredSize ?? 1) <= 0) {
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener('abort', done);
          this.waiting.delete(done);
          resolve();
        };
        this.waiting.add(done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  private wakeWriter(): void {
    for (const wake of [...this.waiting]) wake();
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
