/**
 * Seeded PRNG for sampling: xoshiro128** (32-bit arithmetic only, so no BigInt on the hot path), its 128-bit state
 * expanded from a 64-bit seed with splitmix32. The same seed gives the same draws on every platform.
 */
import { randomBytes } from 'node:crypto';

const TWO_POW_32 = 0x1_0000_0000;

export class Rng {
  /** The seed actually used (drawn at random when none was given), so a run can be replayed. */
  readonly seed: number;
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** `seed`: any safe integer (OpenAI's `seed`); null draws one at random. */
  constructor(seed: number | null) {
    this.seed = seed ?? randomBytes(6).readUIntBE(0, 6);
    const lo = this.seed >>> 0;
    const hi = Math.floor(this.seed / TWO_POW_32) >>> 0;
    const mixer = new SplitMix32(lo ^ Math.imul(hi, 0x9e3779b9));
    this.s0 = mixer.next() ^ hi;
    this.s1 = mixer.next();
    this.s2 = mixer.next();
    this.s3 = mixer.next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the all-zero state is a fixed point
  }

  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9);
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result >>> 0;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  nextFloat(): number {
    const high = this.nextUint32() >>> 5; // 27 bits
    const low = this.nextUint32() >>> 6; // 26 bits
    return (high * 67108864 + low) / 9007199254740992;
  }
}

class SplitMix32 {
  constructor(private state: number) {}

  next(): number {
    this.state = (this.state + 0x9e3779b9) | 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
