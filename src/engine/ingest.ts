import type { RequestTrie } from '../lookahead/index.js';
import type { DraftingState } from './drafting.js';

type Item =
  | { kind: 'piece'; tenant: string; ids: Int32Array; end: boolean }
  | { kind: 'marker'; requestId: number }
  /** A running request's trie too large to build at its start (see DraftingState.start). */
  | { kind: 'request'; trie: RequestTrie };

/** Positions inserted between clock checks: small enough that a slice overruns its budget by microseconds. */
const SPAN = 64;

/**
 * Bulk trie work (posted documents, large request tries) waiting on the worker, done in time-boxed slices between
 * decode steps so a tenant's 4 MB post never stalls another tenant's stream: each slice stops at its budget, and the
 * decode loop runs a round of steps between slices. Markers answer a post once everything queued before them is in.
 */
export class IngestQueue {
  private readonly items: Item[] = [];
  private head = 0;
  /** Next position of the piece at `head`. */
  private at = 0;

  constructor(
    private readonly drafting: DraftingState,
    private readonly onMarker: (requestId: number) => void,
    private readonly onPieceDone: () => void,
    private readonly onPieceFailed: (err: Error) => void,
  ) {}

  get pending(): boolean {
    return this.head < this.items.length;
  }

  push(item: Item): void {
    this.items.push(item);
  }

  /** A request trie goes before the documents waiting: its job drafts from it now. */
  pushFirst(item: Item): void {
    this.items.splice(this.at > 0 ? this.head + 1 : this.head, 0, item);
  }

  /** Works until `budgetMs` has passed (at least one span), answering markers as they are reached. */
  runSlice(budgetMs: number): void {
    const until = performance.now() + budgetMs;
    do {
      const item = this.items[this.head];
      if (item.kind === 'marker') {
        this.advance();
        this.onMarker(item.requestId);
        continue;
      }
      if (item.kind === 'request') {
        if (item.trie.fill(SPAN)) this.advance();
        continue;
      }
      const to = Math.min(this.at + SPAN, item.ids.length);
      try {
        this.drafting.addDocumentSpan(item.tenant, item.ids, this.at, to, item.end);
      } catch (err) {
        // One bad piece is skipped, not retried forever nor allowed to take the worker down.
        this.advance();
        this.onPieceFailed(err as Error);
        continue;
      }
      this.at = to;
      if (to >= item.ids.length) {
        this.advance();
        this.onPieceDone();
      }
    } while (this.pending && performance.now() < until);
  }

  /** Drops the work not yet done (shutdown); returns the markers that will now never be reached. */
  clear(): number[] {
    const markers = this.items.slice(this.head).flatMap((i) => (i.kind === 'marker' ? [i.requestId] : []));
    this.items.length = 0;
    this.head = 0;
    this.at = 0;
    return markers;
  }

  private advance(): void {
    this.head++;
    this.at = 0;
    // Compact now and then, so a long-lived queue does not keep every piece it ever held.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
  }
}
