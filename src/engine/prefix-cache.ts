import type { Sequence } from '../model/types.js';

/**
 * A new prompt must share at least this many tokens with a cached sequence to start from a copy of its rows: below
 * it, prefill is cheap and the scan and copy are not worth it.
 */
export const MIN_SHARED = 16;

interface Entry {
  tenant: string;
  /** The tokens of the sequence's rows, in order. */
  tokens: Int32Array;
  seq: Sequence;
  /** What the sequence holds: its whole K/V region, not just its rows (regions come in sizes of 256 rows and up). */
  bytes: number;
}

/** A prompt's start taken from the cache: a sequence holding the rows of its first `rows` tokens. */
export interface CachedPrefix {
  seq: Sequence;
  rows: number;
}

/**
 * The K/V of recently finished jobs, so a prompt that starts as an earlier one did (a system prompt, the earlier
 * turns of a chat, a shared document) prefills only what follows. The K/V of a token depends only on the tokens
 * before it, and the runtime computes it bit for bit alike however forwards are cut, so a prompt that starts from
 * cached rows decodes exactly as it would from a full prefill.
 *
 * A job takes a copy of the rows of its longest shared start (Sequence.fork); entries stay for others. Rows are
 * shared within a tenant only: a hit is visible in time to first token, which would tell one tenant what another
 * sent. Holds at most `maxBytes` of K/V in all, counted as the sequences hold it (a short chat's rows sit in a
 * region of 256 rows or more); the least recently used entries go first.
 */
export class PrefixCache {
  /** Least recently used first. */
  private readonly entries: Entry[] = [];
  private held = 0;

  constructor(private readonly maxBytes: number) {}

  /** K/V bytes held in all. */
  get bytes(): number {
    return this.held;
  }

  /**
   * A sequence holding the rows of the longest start `prompt` shares with a cached sequence of `tenant` (at least
   * MIN_SHARED tokens), or null. At least the prompt's last token is left to prefill: its forward gives the first
   * token. `room`: the rows the new sequence will hold (Sequence.fork).
   */
  take(tenant: string, prompt: ArrayLike<number>, room?: number): CachedPrefix | null {
    let best: Entry | null = null;
    let bestShared = 0;
    for (const e of this.entries) {
      if (e.tenant !== tenant) continue;
      const shared = sharedStart(e.tokens, prompt);
      if (shared > bestShared) {
        best = e;
        bestShared = shared;
      }
    }
    const rows = Math.min(bestShared, prompt.length - 1);
    if (!best || rows < MIN_SHARED) return null;
    this.entries.splice(this.entries.indexOf(best), 1);
    this.entries.push(best);
    return { seq: best.seq.fork!(rows, room), rows };
  }

  /**
   * Keeps `seq`, whose rows hold `tokens`, for later prompts (the cache owns it from now on, and settles it: its
   * logits buffers are not held). A sequence that cannot be forked, or holds more than the whole cache, is disposed
   * at once.
   */
  put(tenant: string, tokens: Int32Array, seq: Sequence): void {
    const bytes = seq.residency().hostBytes;
    if (!seq.fork || tokens.length !== seq.length || tokens.length < MIN_SHARED || bytes > this.maxBytes) {
      seq.dispose();
      return;
    }
    // An entry whose tokens all start this one (the earlier turn of the same chat) has nothing left to offer.
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i];
      if (e.tenant === tenant && sharedStart(e.tokens, tokens) === e.tokens.length) this.remove(i);
    }
    seq.settle?.();
    this.entries.push({ tenant, tokens, seq, bytes });
    this.held += bytes;
    while (this.held > this.maxBytes) this.remove(0);
  }

  /** Disposes every entry. */
  clear(): void {
    while (this.entries.length > 0) this.remove(0);
  }

  private remove(i: number): void {
    const [e] = this.entries.splice(i, 1);
    this.held -= e.bytes;
    e.seq.dispose();
  }
}

/** How many tokens `a` and `b` share from their start. */
function sharedStart(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
