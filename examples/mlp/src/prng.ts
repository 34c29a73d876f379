// A seeded PRNG (xoshiro128**) whose whole state is four uint32s, so a checkpoint can store it and
// a resumed run draws exactly the numbers the uninterrupted run would have drawn. Math.random is
// never used: it cannot be seeded or saved.

export type PrngState = [number, number, number, number];

export class Prng {
  readonly #s = new Uint32Array(4);

  private constructor(state: PrngState) {
    this.#s.set(state);
  }

  /** Expands a 32-bit seed with splitmix32, so that nearby seeds give unrelated streams. */
  static fromSeed(seed: number): Prng {
    let x = seed >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    const state: PrngState = [next(), next(), next(), next()];
    // xoshiro must not start from all zeros; splitmix32 practically never gives that, but be sure.
    if (state.every((word) => word === 0)) state[0] = 1;
    return new Prng(state);
  }

  static fromState(state: readonly number[]): Prng {
    if (state.length !== 4 || !state.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff)) {
      throw new Error(`a PRNG state is four uint32s, got ${JSON.stringify(state)}`);
    }
    if (state.every((w) => w === 0)) throw new Error('a PRNG state of all zeros is invalid');
    return new Prng(state as PrngState);
  }

  state(): PrngState {
    const s = this.#s;
    return [s[0] as number, s[1] as number, s[2] as number, s[3] as number];
  }

  nextUint32(): number {
    const s = this.#s;
    const s0 = s[0] as number;
    const s1 = s[1] as number;
    const s2 = s[2] as number;
    const s3 = s[3] as number;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    const n2 = s2 ^ s0;
    const n3 = s3 ^ s1;
    s[1] = s1 ^ n2;
    s[0] = s0 ^ n3;
    s[2] = n2 ^ t;
    s[3] = rotl(n3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  nextFloat(): number {
    const high = this.nextUint32() >>> 5; // 27 bits
    const low = this.nextUint32() >>> 6; // 26 bits
    return (high * 67108864 + low) / 9007199254740992;
  }

  /** Uniform integer in [0, n), without modulo bias (n ≤ 2^32). */
  nextInt(n: number): number {
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** Standard normal (Box-Muller). Uses one pair of uniforms per value and keeps no spare, so the
   * state stays the four words above. */
  nextGaussian(): number {
    const u1 = 1 - this.nextFloat(); // (0, 1]: log(0) would be -Infinity
    const u2 = this.nextFloat();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
