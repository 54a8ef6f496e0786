import { describe, expect, it } from 'vitest';
import { BudgetController, JobBudget, type PreparedGains } from '../../../src/lookahead/budget.js';
import { CostCurve } from '../../../src/lookahead/cost-curve.js';
import { rng } from './fixtures.js';

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

/** Expected gains of a draft whose i-th best node (i = 1, 2, ...) is accepted with probability p(i): gains[k] = Σ_{i<k}. */
function gainsOf(max: number, p: (i: number) => number): Float64Array {
  const gains = new Float64Array(max + 1);
  for (let k = 2; k <= max; k++) gains[k] = gains[k - 1] + p(k - 1);
  return gains;
}

/** A proposer stand-in whose prepared candidates always have the same gains. */
function fixedGains(gains: Float64Array): PreparedGains {
  const prepared = {
    gains,
    available: gains.length - 2,
    prepare: () => (prepared.available = gains.length - 2),
    unprepare: () => {
      prepared.available = 0;
    },
  };
  return prepared;
}

/** Runs `steps` steps of one job with fixed gains; a draft of `size` gets `accept(size)` accepted. Returns the sizes. */
function run(controller: BudgetController, curve: CostCurve, gains: Float64Array, steps: number, accept: (size: number) => number, others = 0): number[] {
  const sizer = new JobBudget(() => controller, fixedGains(gains));
  const sizes: number[] = [];
  for (let i = 0; i < steps; i++) {
    sizer.prepare([1], 1, 16, 8, false);
    const size = sizer.next(others);
    sizes.push(size);
    sizer.observe(size, size > 1 ? accept(size) : 0, curve.cost(others + size), others + size);
  }
  return sizes;
}

function mostCommon(sizes: number[]): { size: number; share: number } {
  const counts = new Map<number, number>();
  for (const s of sizes) counts.set(s, (counts.get(s) ?? 0) + 1);
  const [size, n] = [...counts].sort((a, b) => b[1] - a[1])[0];
  return { size, share: n / sizes.length };
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

  it('a single stall moves a point by alpha at most; a lasting change is still followed', () => {
    const curve = new CostCurve(POINTS, 0.05);
    curve.observe(8, 1700);
    expect(curve.cost(8)).toBeCloseTo(15 * 1.05, 5);
    curve.observe(8, 0.1);
    expect(curve.cost(8)).toBeGreaterThan(15 * 1.05 * 0.97);
    for (let i = 0; i < 300; i++) curve.observe(8, 90);
    expect(curve.cost(8)).toBeCloseTo(90, 0);
  });

  it('never costs less for more tokens: a busy-machine spike is capped by later points, observations keep it so', () => {
    const curve = new CostCurve([
      { k: 1, ms: 24 }, // measured while another process held the core
      { k: 2, ms: 14 },
      { k: 4, ms: 14 },
      { k: 8, ms: 17.7 },
      { k: 16, ms: 16.5 },
      { k: 32, ms: 30 },
    ]);
    expect(curve.cost(1)).toBe(14);
    expect(curve.cost(8)).toBe(16.5);
    for (let i = 0; i < 300; i++) curve.observe(4, 40);
    const points = curve.points();
    for (let j = 1; j < points.length; j++) expect(points[j].ms).toBeGreaterThanOrEqual(points[j - 1].ms);
    expect(curve.cost(4)).toBeCloseTo(40, 0);
    expect(curve.cost(32)).toBeGreaterThanOrEqual(curve.cost(4));
  });
});

describe('BudgetController', () => {
  it('drafts nothing when the expected gains cannot pay for the bigger forward', () => {
    const curve = new CostCurve(POINTS);
    const controller = new BudgetController(curve, { decodingLength: 16 });
    const sizes = run(controller, curve, gainsOf(16, () => 0.05), 500, () => 0);
    expect(sizes.every((s) => s === 1)).toBe(true);
  });

  it('drafts wide when nodes are nearly certain, and within decodingLength and the candidates available', () => {
    const curve = new CostCurve(POINTS);
    const controller = new BudgetController(curve, { decodingLength: 12 });
    const sizes = run(controller, curve, gainsOf(16, () => 0.97), 300, (s) => s - 1);
    expect(mostCommon(sizes.slice(50)).size).toBe(12);
    expect(Math.max(...sizes)).toBe(12);
    expect(controller.next(gainsOf(16, () => 0.97), 3)).toBe(4);
    expect(controller.next(gainsOf(16, () => 0.97), 0)).toBe(1);
  });

  it('shrinks drafts as other jobs fill a compute-bound forward, and keeps them when memory-bound', () => {
    // Compute-bound past 8 tokens: every extra token costs its full share.
    const compute = [
      { k: 1, ms: 10 },
      { k: 8, ms: 12 },
      { k: 16, ms: 20 },
      { k: 32, ms: 36 },
      { k: 128, ms: 132 },
    ];
    const gains = gainsOf(16, (i) => 0.85 ** i);
    const sizeAt = (points: { k: number; ms: number }[], others: number): number => {
      const curve = new CostCurve(points);
      const controller = new BudgetController(curve, { decodingLength: 16 });
      return mostCommon(run(controller, curve, gains, 200, (s) => Math.round(gains[s]), others).slice(100)).size;
    };
    const alone = sizeAt(compute, 0);
    const four = sizeAt(compute, 24);
    const eight = sizeAt(compute, 56);
    expect(alone).toBeGreaterThanOrEqual(8);
    expect(four).toBeLessThanOrEqual(alone);
    expect(eight).toBeLessThanOrEqual(four);
    expect(eight).toBeLessThan(alone);
    // A flat (memory-bound, GPU-like) curve: the batch costs nothing extra, drafts stay wide.
    const flat = [
      { k: 1, ms: 10 },
      { k: 64, ms: 10.5 },
      { k: 128, ms: 11 },
    ];
    expect(sizeAt(flat, 56)).toBeGreaterThanOrEqual(alone);
  });

  it('keeps a stable size when forward times are noisy (the switching cost)', () => {
    const gains = gainsOf(16, (i) => 0.8 ** i);
    const dominant = (seed: number): { size: number; share: number } => {
      const random = rng(seed);
      const curve = new CostCurve(POINTS);
      const controller = new BudgetController(curve, { decodingLength: 16 });
      const sizes: number[] = [];
      let last = 1;
      for (let i = 0; i < 1000; i++) {
        last = controller.next(gains, 15, 0, last);
        sizes.push(last);
        const accepted = random() < 0.5 ? Math.floor(gains[last]) : Math.ceil(gains[last]);
        controller.observe(last, accepted, curve.cost(last) * (0.8 + 0.4 * random()), last);
      }
      return mostCommon(sizes.slice(100));
    };
    const a = dominant(1);
    const b = dominant(2);
    expect(a.share).toBeGreaterThan(0.9);
    expect(b.share).toBeGreaterThan(0.9);
    expect(Math.abs(a.size - b.size)).toBeLessThanOrEqual(1);
  });

  it('the floor switches drafting off when drafts do not pay, whatever the estimates say, and probes back', () => {
    const curve = new CostCurve(POINTS);
    const controller = new BudgetController(curve, { decodingLength: 16 });
    const optimistic = gainsOf(16, () => 0.9);
    const sizes = run(controller, curve, optimistic, 3000, () => 0);
    expect(controller.paused).toBe(true);
    const drafted = sizes.filter((s) => s > 1).length;
    // A few steps to notice, then one probe per back-off (up to 256 steps).
    expect(drafted).toBeLessThan(60);
    // While off, the job does not even prepare candidates (a tiny model's forward can cost less than that).
    const gains = fixedGains(optimistic);
    let prepared = 0;
    const counting = { ...gains, gains: optimistic, prepare: () => (prepared++, gains.prepare([1], 1, 16, 8, false)), unprepare: gains.unprepare };
    const sizer = new JobBudget(() => controller, counting);
    for (let i = 0; i < 1000; i++) {
      sizer.prepare([1], 1, 16, 8, false);
      sizer.observe(sizer.next(0), 0, 10, 1);
    }
    expect(prepared).toBeLessThan(10);
    const plainMs = sizes.length * curve.cost(1);
    const ms = sizes.reduce((t, s) => t + curve.cost(s), 0);
    expect(plainMs / ms).toBeGreaterThan(0.97);
    // Drafts that pay again: the next probe turns drafting back on.
    const after = run(controller, curve, optimistic, 600, (s) => s - 1);
    expect(controller.paused).toBe(false);
    expect(after.slice(-100).every((s) => s > 1)).toBe(true);
  });

  it('a job learns apart per batch size: a floor switched off in crowded forwards leaves it drafting alone', () => {
    const alone = new BudgetController(new CostCurve(POINTS), { decodingLength: 16 });
    const crowdCurve = new CostCurve(POINTS);
    const crowd = new BudgetController(crowdCurve, { decodingLength: 16 });
    const optimistic = gainsOf(16, () => 0.9);
    run(crowd, crowdCurve, optimistic, 500, () => 0, 7);
    expect(crowd.paused).toBe(true);
    const sizer = new JobBudget((items) => (items > 1 ? crowd : alone), fixedGains(optimistic));
    sizer.seat(8);
    sizer.prepare([1], 1, 16, 8, false);
    expect(sizer.next(7)).toBe(1);
    sizer.seat(1);
    sizer.prepare([1], 1, 16, 8, false);
    expect(sizer.next(0)).toBeGreaterThan(1);
    expect(alone.paused).toBe(false);
  });

  it('prices a crowded forward\'s draft tokens by what a token costs alone, not by the sequences that forward carried', () => {
    // Forwards of 5 to 32 tokens, whose cost was the 10 ms of each sequence they carried: a curve rising 10 ms a token.
    const crowded = () => {
      const curve = new CostCurve(POINTS);
      for (let i = 0; i < 400; i++) for (let n = 5; n <= 32; n++) curve.observe(n, 10 * n);
      return curve;
    };
    const gains = gainsOf(16, () => 0.5);
    const steep = new BudgetController(crowded(), { decodingLength: 16 });
    expect(steep.next(gains, 15, 7)).toBe(1);
    const priced = new BudgetController(crowded(), { decodingLength: 16 }, new CostCurve(POINTS));
    expect(priced.next(gains, 15, 7)).toBeGreaterThan(1);
    expect(priced.tokenCosts.cost(8) - priced.tokenCosts.cost(7)).toBeLessThan(1);
  });

  it('learns the forward cost of the batch as run, from the total tokens of each forward', () => {
    const curve = new CostCurve(POINTS);
    const controller = new BudgetController(curve, { decodingLength: 16 });
    for (let i = 0; i < 300; i++) controller.observe(4, 2, 40, 32);
    expect(curve.cost(32)).toBeGreaterThan(35);
    expect(curve.cost(4)).toBeLessThan(13);
  });
});
