import { describe, expect, it } from 'vitest';
import { PrefillOrder, type WaitingPrompt } from '../../src/engine/prefill-order.js';

const prompt = (id: string, arrived: number, promptLeft: number) => ({ id, arrived, gen: { promptLeft } });
/** A cost curve of `ms` per token at its longest point. */
const curve = (ms: number) => [{ k: 64, ms: 64 * ms }];
const ids = (prompts: WaitingPrompt[]) => prompts.map((p) => (p as ReturnType<typeof prompt>).id);

describe('PrefillOrder', () => {
  it('serves a short prompt before a long one that arrived a little earlier', () => {
    const order = new PrefillOrder(curve(2));
    const prompts = [prompt('long', 0, 1000), prompt('short', 100, 50)];
    order.sort(prompts);
    expect(ids(prompts)).toEqual(['short', 'long']);
  });

  it('serves a long prompt first once it has waited longer than the extra prefill it needs', () => {
    const order = new PrefillOrder(curve(2));
    // The long one would be done alone at 0 + 1000 × 2 = 2000 ms; the short one, arriving at 1990, at 2090.
    const prompts = [prompt('short', 1990, 50), prompt('long', 0, 1000)];
    order.sort(prompts);
    expect(ids(prompts)).toEqual(['long', 'short']);
  });

  it('is oldest first among prompts of the same length, and learns the cost per token from prefill forwards', () => {
    const order = new PrefillOrder([]);
    const prompts = [prompt('b', 20, 10), prompt('a', 10, 500), prompt('c', 30, 10)];
    order.sort(prompts);
    // At no cost per token only arrival counts.
    expect(ids(prompts)).toEqual(['a', 'b', 'c']);
    for (let i = 0; i < 30; i++) order.observe(256, 256);
    order.sort(prompts);
    expect(ids(prompts)).toEqual(['b', 'c', 'a']);
  });

  it('ignores a forward that carried no prompt tokens or took no time', () => {
    const order = new PrefillOrder(curve(1));
    order.observe(0, 100);
    order.observe(50, 0);
    const prompts = [prompt('short', 50, 10), prompt('long', 0, 100)];
    order.sort(prompts);
    // Still 1 ms per token: the long one is done alone at 100, the short one at 60.
    expect(ids(prompts)).toEqual(['short', 'long']);
  });

  it('stops filling a prefill forward where the cost curve stops falling per token', () => {
    // The longest points of the 150M-cost model's curve: 2.66 ms per token at 16, 2.23 at 32, 2.13 at 64.
    const wide = [{ k: 16, ms: 42.5 }, { k: 32, ms: 71.5 }, { k: 64, ms: 136 }];
    expect(new PrefillOrder(wide).enough).toBe(32);
    // A tiny model's forward is mostly fixed cost: only the longest point is efficient.
    expect(new PrefillOrder([{ k: 1, ms: 1 }, { k: 32, ms: 1.5 }, { k: 64, ms: 2 }]).enough).toBe(64);
    expect(new PrefillOrder([]).enough).toBe(Number.POSITIVE_INFINITY);
  });
});
