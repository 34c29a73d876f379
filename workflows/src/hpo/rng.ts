// A small seeded PRNG for workflow code (Math.random is off limits there): xoshiro128** on
// 32-bit integer math, its state filled by a murmur3-style hash of (seed, ...streams). A sampler
// derives a fresh stream per (seed, trial number) and so carries no state between calls: its
// draws are recomputable after a continue-as-new from the seed and the history alone.

export interface Rng {
  /** Uniform in [0, 1), 53 bits. */
  next(): number;
  /** Uniform integer in [lo, hi], both included. */
  int(lo: number, hi: number): number;
  /** Standard normal (mean 0, standard deviation 1). */
  normal(): number;
}

// murmur3's 32-bit finaliser: every input bit affects every output bit.
function fmix32(h: number): number {
  let x = h >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

// A number is absorbed as its low and high 32 bits, so seeds up to 2^53 and negative ones differ.
function absorb(h: number, value: number): number {
  const lo = value >>> 0;
  const hi = Math.floor(value / 4294967296) >>> 0;
  let x = fmix32(Math.imul(h ^ lo, 0x9e3779b1) + 0x7f4a7c15);
  x = fmix32(Math.imul(x ^ hi, 0x9e3779b1) + 0x7f4a7c15);
  return x;
}

const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;

/** A generator for `seed` and any number of sub-streams (e.g. trial number, purpose). */
export function createRng(seed: number, ...streams: number[]): Rng {
  let h = absorb(0x6a09e667, seed);
  h = absorb(h, streams.length);
  for (const stream of streams) h = absorb(h, stream);
  // Four state words from a counter run through the finaliser; never all zero.
  let s0 = fmix32(h + 0x9e3779b9);
  let s1 = fmix32(h + 0x3c6ef372);
  let s2 = fmix32(h + 0xdaa66d2b);
  let s3 = fmix32(h + 0x78dde6e4);
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1;

  const nextUint32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    s2 = (s2 ^ s0) >>> 0;
    s3 = (s3 ^ s1) >>> 0;
    s1 = (s1 ^ s2) >>> 0;
    s0 = (s0 ^ s3) >>> 0;
    s2 = (s2 ^ t) >>> 0;
    s3 = rotl(s3, 11);
    return result;
  };
  const next = () => ((nextUint32() >>> 5) * 67108864 + (nextUint32() >>> 6)) / 9007199254740992;
  return {
    next,
    int(lo, hi) {
      if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi < lo) throw new Error(`int(${lo}, ${hi}): bad range`);
      return lo + Math.floor(next() * (hi - lo + 1));
    },
    normal() {
      // Box-Muller; 1 - next() is in (0, 1], so the log is finite.
      const r = Math.sqrt(-2 * Math.log(1 - next()));
      return r * Math.cos(2 * Math.PI * next());
    },
  };
}
