import { describe, expect, it } from 'vitest';
import { BudgetController } from '../../../src/lookahead/budget.js';
import { CostCurve } from '../../../src/lookahead/cost-curve.js';

/** Shape measured on this CPU (DESIGN.md §3): k=4 ×1.25, k=8 ×1.5, k=16 ×2.0, k=64 ×4.7. */
const POINTS = [
  { k: 1, ms: 10 },
  { k: 2, ms: 11 },
  { k: 4, ms: 12.5 },
  { k: 8, ms: 15 },
  { k: 16, ms: 20 },
  { k: 32, ms: 30 },
  { k: 64, ms: 47 },
];

/** Runs `steps` steps where a draft of `size` gets `accept(size)` tokens accepted; returns the sizes chosen. */
function run(controller: BudgetController, curve: CostCurve, steps: number, accept: (size: number) => number): number[] {
  const sizes: number[] = [];
  for (let i = 0; i < steps; i++) {
    const size = controller.next();
    sizes.push(size);
    controller.observe(size, size > 1 ? accept(size) : 0, curve.cost(size));
  }
  return sizes;
}

describe('CostCurve', () => {
  it('interpolates between measured points and extrapolates past the last', () => {
    const curve = new CostCurve(POINTS);
    expect(curve.cost(1)).toBe(10);
    expect(curve.cost(12)).toBeCloseTo(17.5);
    expect(curve.cost(48)).toBeCloseTo(38.5);
    expect(curve.cost(96)).toBeCloseTo(64);
    expect(curve.cost(0.5)).toBe(10);
  });

  it('moves toward observed times', () => {
    const curve = new CostCurve(POINTS);
    for (let i = 0; i < 200; i++) curve.observe(8, 30);
    expect(curve.cost(8)).toBeCloseTo(30, 0);
    expect(curve.cost(1)).toBe(10);
    expect(() => new CostCurve([])).toThrow(RangeError);
  });
});

describe('BudgetController', () => {
  it('falls to k = 1 when drafts are never accepted, at near-zero overhead', () => {
    const curve = new CostCurve(POINTS);
    const controller = new BudgetController(curve, { decodingLength: 64, branchLength: 12 });
    const sizes = run(controller, curve, 3000, () => 0);
    const tail = sizes.slice(1000);
    expect(tail.filter((k) => k === 1).length / tail.length).toBeGreaterThan(0.97);
    const overhead = tail.reduce((ms, k) => ms + curve.cost(k), 0) / (tail.length * curve.cost(1));
    expect(overhead).toBeLessThan(1.02);
    expect(controller.choices()[1]).toBeGreaterThan(2850);
  });

  it('grows to wide drafts when drafts are accepted in full', () => {
    const curve = new CostCurve(POINTS);
    const controller = new BudgetController(curve, { decodingLength: 64, branchLength: 12 });
    const sizes = run(controller, curve, 300, (k) => Math.min(k - 1, 12));
    // A full branch needs 13 nodes (root + 12), the size offered for chains: (12 + 1) / cost(13) is the best rate.
    expect(sizes.slice(-100).every((k) => k === 13)).toBe(true);
  });

  it('recovers: after a stretch of failures, copy-heavy text makes it draft wide again', () => {
    const curve = new CostCurve(POINTS);
    const controller = new BudgetController(curve, { decodingLength: 64, branchLength: 12 });
    run(controller, curve, 1000, () => 0);
    const sizes = run(controller, curve, 500, (k) => Math.min(k - 1, 12));
    expect(sizes.slice(-50).every((k) => k >= 8)).toBe(true);
  });

  it('never exceeds the request decodingLength', () => {
    const curve = new CostCurve(POINTS);
    const controller = new BudgetController(curve, { decodingLength: 12, branchLength: 30 });
    const sizes = run(controller, curve, 300, (k) => k - 1);
    expect(Math.max(...sizes)).toBe(12);
    expect([...controller.sizes]).toEqual([1, 2, 4, 8, 12]);
    const one = new BudgetController(curve, { decodingLength: 1, branchLength: 12 });
    expect(run(one, curve, 10, () => 0).every((k) => k === 1)).toBe(true);
  });

  it('does not count empty drafts (nothing to copy) against the size asked for', () => {
    const curve = new CostCurve(POINTS);
    const controller = new BudgetController(curve, { decodingLength: 64, branchLength: 12 });
    const asked = controller.next();
    expect(asked).toBeGreaterThan(1);
    for (let i = 0; i < 500; i++) {
      expect(controller.next()).toBe(asked);
      controller.observe(1, 0, curve.cost(1));
    }
  });

  it('prefers the size whose partial acceptance pays best', () => {
    const curve = new CostCurve(POINTS);
    const controller = new BudgetController(curve, { decodingLength: 64, branchLength: 12 });
    // Small drafts land one token; only wide trees find the long continuation.
    const sizes = run(controller, curve, 600, (k) => (k >= 32 ? 10 : 1));
    const counts = new Map<number, number>();
    for (const k of sizes.slice(-200)) counts.set(k, (counts.get(k) ?? 0) + 1);
    expect(counts.get(32) ?? 0).toBeGreaterThan(180);
  });
});
