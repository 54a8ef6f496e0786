import { describe, expect, it } from 'vitest';
import { DraftCounters } from '../../../src/lookahead/stats.js';

describe('DraftCounters', () => {
  it('counts steps, drafted and accepted tokens, and acceptance by depth', () => {
    const c = new DraftCounters();
    expect(c.tokensPerStep).toBe(0);
    c.record(7, 3);
    c.record(0, 0);
    c.record(4, 1);
    expect(c.steps).toBe(3);
    expect(c.draftTokens).toBe(11);
    expect(c.acceptedTokens).toBe(4);
    expect(c.acceptedByPosition).toEqual([2, 1, 1]);
    expect(c.tokensPerStep).toBeCloseTo(7 / 3);
    expect(c.acceptanceRate).toBeCloseTo(4 / 11);
  });
});
