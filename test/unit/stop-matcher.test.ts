import { describe, expect, it } from 'vitest';
import { StopMatcher } from '../../src/engine/stop-matcher.js';

/** Feeds deltas; returns everything emitted (flushed at the end unless stopped) and whether a stop was hit. */
function run(stops: string[], deltas: string[]): { text: string; stopped: boolean; emitted: string[] } {
  const m = new StopMatcher(stops);
  const emitted: string[] = [];
  for (const d of deltas) {
    const step = m.push(d);
    emitted.push(step.text);
    if (step.stopped) return { text: emitted.join(''), stopped: true, emitted };
  }
  emitted.push(m.flush());
  return { text: emitted.join(''), stopped: false, emitted };
}

describe('StopMatcher', () => {
  it('passes text straight through without stop strings', () => {
    const m = new StopMatcher([]);
    expect(m.push('abc')).toEqual({ text: 'abc', stopped: false });
    expect(m.flush()).toBe('');
  });

  it('cuts at a stop inside one delta and drops the rest', () => {
    expect(run(['END'], ['hello END world'])).toMatchObject({ text: 'hello ', stopped: true });
  });

  it('catches a stop spanning three deltas without leaking any of it', () => {
    const r = run(['<stop>'], ['abc<s', 't', 'op>tail']);
    expect(r).toMatchObject({ text: 'abc', stopped: true });
    expect(r.emitted).toEqual(['abc', '', '']);
  });

  it('holds back only the part that could still be a stop, and releases it when it is not', () => {
    const m = new StopMatcher(['###']);
    expect(m.push('a#')).toEqual({ text: 'a', stopped: false });
    expect(m.push('#')).toEqual({ text: '', stopped: false });
    expect(m.push('b')).toEqual({ text: '##b', stopped: false });
    expect(m.push('##')).toEqual({ text: '', stopped: false });
    expect(m.flush()).toBe('##');
  });

  it('handles overlapping prefixes: a stop starting inside a failed partial match', () => {
    // "aab" arrives as "a", "a", "b": the first "a" is a prefix of "aab", then "aa", then the match.
    expect(run(['aab'], ['a', 'a', 'b'])).toMatchObject({ text: '', stopped: true });
    // "aaab": the held "aa" fails as "aaa" but its suffix "aa" still matches.
    expect(run(['aab'], ['xa', 'a', 'a', 'b!'])).toMatchObject({ text: 'xa', stopped: true });
    // Two stops sharing letters: "abcd" is never completed, "bc" is.
    expect(run(['abcd', 'bc'], ['a', 'b', 'c', 'd'])).toMatchObject({ text: 'a', stopped: true });
  });

  it('the earliest completed stop wins when several are present', () => {
    expect(run(['world', 'lo w'], ['hello world'])).toMatchObject({ text: 'hel', stopped: true });
    expect(run(['\n\n', 'User:'], ['ok User:', ' x\n\n'])).toMatchObject({ text: 'ok ', stopped: true });
  });

  it('keeps several stop strings pending at once (up to 4)', () => {
    const stops = ['</s>', '<|im_end|>', 'Q:', '\n\n\n'];
    expect(run(stops, ['text <|im', '_e', 'nd|> more'])).toMatchObject({ text: 'text ', stopped: true });
    expect(run(stops, ['one\n\n', 'two Q', ' three'])).toMatchObject({ text: 'one\n\ntwo Q three', stopped: false });
  });

  it('is inert after a stop and ignores empty stop strings', () => {
    const m = new StopMatcher(['', 'x']);
    expect(m.push('abc')).toEqual({ text: 'abc', stopped: false });
    expect(m.push('1x2')).toEqual({ text: '1', stopped: true });
    expect(m.stopped).toBe(true);
    expect(m.push('more')).toEqual({ text: '', stopped: true });
  });

  it('never emits a prefix of a stop string that later completes, whatever the split', () => {
    const text = 'The answer is 42.\nObservation: done';
    const stop = '\nObservation:';
    for (let a = 1; a < text.length; a++) {
      for (const b of [a + 1, a + 3, a + 7]) {
        if (b >= text.length) continue;
        const r = run([stop], [text.slice(0, a), text.slice(a, b), text.slice(b)]);
        expect(r).toMatchObject({ text: 'The answer is 42.', stopped: true });
      }
    }
  });
});
