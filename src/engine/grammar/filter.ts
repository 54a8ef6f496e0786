import type { TokenFilter } from '../../lookahead/index.js';
import type { Utf8Guard } from './utf8.js';
import type { MatcherHandle, XGrammar } from './xgrammar.js';

/**
 * One job's grammar state as lookahead's TokenFilter: xgrammar's matcher behind a reused bitmask buffer. The mask is
 * applied by writing -Infinity over forbidden logits, so every sampler (greedy or not) and the logprobs see the
 * constrained distribution.
 */
export class GrammarFilter implements TokenFilter {
  /** Time spent computing and applying masks, and how many: the per-token cost of the constraint. */
  maskSeconds = 0;
  masks = 0;
  private readonly bits: Int32Array;
  private utf8State = 0;
  /** A token allows() already fed to the matcher, which the next accept() therefore must not feed again. */
  private pending = -1;

  constructor(
    private readonly xgrammar: XGrammar,
    private readonly matcher: MatcherHandle,
    private readonly vocab: number,
    private readonly utf8: Utf8Guard,
  ) {
    this.bits = new Int32Array(Math.ceil(vocab / 32));
  }

  mask(row: Float32Array): void {
    const t0 = performance.now();
    const handle = this.matcher.handle;
    // Asking a terminated matcher for a mask aborts the WASM module (and every other job's grammar with it).
    if (handle.IsTerminated()) throw new Error('structured output: the grammar already ended; no further token is allowed');
    const vector = handle.GetNextTokenBitmask(this.vocab);
    try {
      this.bits.set(this.xgrammar.vecIntView(vector).subarray(0, this.bits.length));
    } finally {
      vector.delete();
    }
    const bits = this.bits;
    const vocab = this.vocab;
    for (let w = 0; w < bits.length; w++) {
      const word = bits[w];
      if (word === -1) continue;
      const base = w << 5;
      const end = Math.min(32, vocab - base);
      for (let b = 0; b < end; b++) if (((word >>> b) & 1) === 0) row[base + b] = Number.NEGATIVE_INFINITY;
    }
    this.utf8.mask(row, this.utf8State);
    this.maskSeconds += (performance.now() - t0) / 1000;
    this.masks++;
  }

  /**
   * Present only for greedy picks without logprobs or repetition penalty (see lookahead's TokenFilter): a picked token
   * the matcher accepts outright needs no mask at all — the common case once the model has learnt the format.
   */
  declare allows?: (token: number) => boolean;

  enableFastPath(): void {
    this.allows = (token) => {
      const t0 = performance.now();
      const ok = this.utf8.permits(token, this.utf8State) && this.matcher.handle.AcceptToken(token, false);
      if (ok) this.pending = token;
      this.maskSeconds += (performance.now() - t0) / 1000;
      return ok;
    };
  }

  accept(token: number): boolean {
    const handle = this.matcher.handle;
    const fed = this.pending === token;
    this.pending = -1;
    if (!fed && !handle.AcceptToken(token, false)) throw new Error(`structured output: token ${token} was picked but the grammar does not allow it`);
    this.utf8State = this.utf8.stateAfter(token);
    return !handle.IsTerminated();
  }

  dispose(): void {
    this.matcher.dispose();
  }
}
