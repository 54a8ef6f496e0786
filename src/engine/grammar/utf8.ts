/** Lead bytes whose first continuation byte has a narrower range than 80–BF, and that range. */
const RESTRICTED_LEADS: readonly { lead: number; lo: number; hi: number }[] = [
  { lead: 0xe0, lo: 0xa0, hi: 0xbf }, // no overlong 3-byte forms
  { lead: 0xed, lo: 0x80, hi: 0x9f }, // no surrogates
  { lead: 0xf0, lo: 0x90, hi: 0xbf }, // no overlong 4-byte forms
  { lead: 0xf4, lo: 0x80, hi: 0x8f }, // nothing above U+10FFFF
];

/**
 * What xgrammar's byte-level matching lets through and JSON text must not contain: invalid UTF-8. Its character
 * classes accept any lead byte C0–F7 and any continuation 80–BF, so overlong forms, surrogates and bytes that are
 * never UTF-8 pass, and decode to U+FFFD (which also breaks maxLength). This guard masks, on top of the grammar,
 * the tokens that can never be valid and — right after a token ending in E0, ED, F0 or F4 — those whose first byte is
 * outside that lead's range. Built once per vocabulary; per mask it touches only a few short id lists.
 */
export class Utf8Guard {
  /** Tokens whose bytes can be part of no valid UTF-8 text. */
  private readonly never: Int32Array;
  /** For each token, 1 + the index in RESTRICTED_LEADS of the lead byte it ends with, or 0. */
  private readonly endsInLead: Uint8Array;
  /** Per restricted lead: the tokens whose first byte is a continuation byte outside its range. */
  private readonly afterLead: Int32Array[];
  /** The same lists per token, for the one-token check of a greedy pick: bit 0 never, bit 1 + r after lead r. */
  private readonly refusals: Uint8Array;

  constructor(tokens: readonly (Uint8Array | string)[]) {
    const never: number[] = [];
    const afterLead: number[][] = RESTRICTED_LEADS.map(() => []);
    this.endsInLead = new Uint8Array(tokens.length);
    this.refusals = new Uint8Array(tokens.length);
    tokens.forEach((token, id) => {
      if (typeof token === 'string') return;
      if (!isUtf8Fragment(token)) {
        never.push(id);
        this.refusals[id] |= 1;
      }
      const first = token[0];
      RESTRICTED_LEADS.forEach(({ lo, hi }, r) => {
        if (first >= 0x80 && first <= 0xbf && (first < lo || first > hi)) {
          afterLead[r].push(id);
          this.refusals[id] |= 1 << (r + 1);
        }
      });
      const last = RESTRICTED_LEADS.findIndex(({ lead }) => lead === token[token.length - 1]);
      this.endsInLead[id] = last + 1;
    });
    this.never = Int32Array.from(never);
    this.afterLead = afterLead.map((ids) => Int32Array.from(ids));
  }

  /** The state after `token` (0 = unrestricted), to pass to the next mask. */
  stateAfter(token: number): number {
    return this.endsInLead[token] ?? 0;
  }

  /** Whether `token` may follow in `state` as far as UTF-8 goes (the grammar decides the rest). */
  permits(token: number, state: number): boolean {
    // Bit 0 refuses in every state; bit `state` only after that lead (state 0 has no lead bit).
    return (this.refusals[token] & (1 | (state === 0 ? 0 : 1 << state))) === 0;
  }

  mask(row: Float32Array, state: number): void {
    for (let i = 0; i < this.never.length; i++) row[this.never[i]] = Number.NEGATIVE_INFINITY;
    if (state === 0) return;
    const ids = this.afterLead[state - 1];
    for (let i = 0; i < ids.length; i++) row[ids[i]] = Number.NEGATIVE_INFINITY;
  }
}

/**
 * True when `bytes` can occur inside valid UTF-8: up to three leading continuation bytes (the tail of a character a
 * previous token began), then whole characters, then possibly the valid beginning of one.
 */
export function isUtf8Fragment(bytes: Uint8Array): boolean {
  let i = 0;
  while (i < bytes.length && i < 3 && isContinuation(bytes[i])) i++;
  while (i < bytes.length) {
    const b = bytes[i++];
    if (b < 0x80) continue;
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) need = 2;
    else if (b >= 0xf0 && b <= 0xf4) need = 3;
    else return false;
    const restricted = RESTRICTED_LEADS.find((r) => r.lead === b);
    if (restricted) ({ lo, hi } = restricted);
    for (let k = 0; k < need; k++, i++) {
      if (i >= bytes.length) return true;
      const c = bytes[i];
      if (k === 0 ? c < lo || c > hi : !isContinuation(c)) return false;
    }
  }
  return true;
}

function isContinuation(b: number): boolean {
  return b >= 0x80 && b <= 0xbf;
}
