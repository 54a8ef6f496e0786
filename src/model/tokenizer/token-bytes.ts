/**
 * The raw bytes behind each token of a tokenizer.json vocabulary, for logprobs' `bytes`: decoding one token to a
 * string turns a lone byte of a multi-byte character into U+FFFD, so the bytes come from the vocabulary itself.
 */
type Json = Record<string, unknown>;

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;
const utf8 = new TextEncoder();

/** GPT-2's bytes_to_unicode, inverted: the printable character each byte was written as → the byte. */
function byteLevelDecoder(): Map<string, number> {
  const map = new Map<string, number>();
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    map.set(String.fromCharCode(printable ? b : 256 + shifted++), b);
  }
  return map;
}

function usesByteLevel(decoder: unknown): boolean {
  if (decoder === null || typeof decoder !== 'object') return false;
  const d = decoder as Json;
  if (d.type === 'ByteLevel') return true;
  return d.type === 'Sequence' && Array.isArray(d.decoders) && d.decoders.some(usesByteLevel);
}

/**
 * A function from a vocabulary piece to its bytes, following the tokenizer's decoder: byte-level BPE maps each
 * character back to a byte; SentencePiece-style vocabularies have `<0xXX>` byte-fallback pieces and ▁ for space.
 * Added (special) tokens are their text.
 */
export function tokenBytesReader(tokenizerJson: Json): (piece: string) => Uint8Array {
  const added = new Set<string>();
  if (Array.isArray(tokenizerJson.added_tokens)) {
    for (const t of tokenizerJson.added_tokens as Json[]) if (typeof t.content === 'string') added.add(t.content);
  }
  if (usesByteLevel(tokenizerJson.decoder)) {
    const bytes = byteLevelDecoder();
    return (piece) => {
      if (added.has(piece)) return utf8.encode(piece);
      const out = new Uint8Array(piece.length);
      let n = 0;
      for (const ch of piece) {
        const b = bytes.get(ch);
        if (b === undefined) return utf8.encode(piece); // not a byte-level piece after all
        out[n++] = b;
      }
      return out.subarray(0, n);
    };
  }
  return (piece) => {
    const byte = BYTE_PIECE.exec(piece);
    if (byte !== null && !added.has(piece)) return Uint8Array.of(parseInt(byte[1], 16));
    return utf8.encode(added.has(piece) ? piece : piece.replaceAll('\u2581', ' '));
  };
}
