/**
 * Cuts text into pieces of at most about `size` characters, at whitespace where there is some near the limit (a
 * token rarely spans a space), never inside a surrogate pair. Pieces are tokenized apart, so a cut elsewhere would
 * only cost a token or two at the seam.
 */
export function splitText(text: string, size: number): string[] {
  const pieces: string[] = [];
  let at = 0;
  while (text.length - at > size) {
    let cut = at + size;
    const space = text.lastIndexOf(' ', cut);
    const newline = text.lastIndexOf('\n', cut);
    const soft = Math.max(space, newline);
    if (soft > at + size / 2) cut = soft;
    else if (isHighSurrogate(text.charCodeAt(cut - 1))) cut--;
    pieces.push(text.slice(at, cut));
    at = cut;
  }
  pieces.push(text.slice(at));
  return pieces;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
