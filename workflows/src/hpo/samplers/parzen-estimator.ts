// TPE's Parzen estimator: a weighted mixture with one kernel per observed trial plus one prior
// kernel. A kernel is a product over parameters of a truncated normal (numeric; in log space for
// log-scale parameters; integrated over [x - step/2, x + step/2] for int and stepped floats) or a
// smoothed one-hot distribution (categorical). Follows the paper (Bergstra et al. 2011) with the
// bandwidth rules of Optuna's TPESampler (re-implemented here, not copied):
//  - a kernel's sigma is the larger gap to its sorted neighbours, the range's ends counting as
//    neighbours; without considerEndpoints (Optuna's default) the outermost kernels look inward
//    only, so a lone observation near an edge does not get a tiny bandwidth;
//  - the "magic clip": sigma within [range / min(100, kernels + 1), range];
//  - the prior kernel: centred on the range, sigma = the range, weight priorWeight; for
//    categoricals every kernel's one-hot row gets priorWeight / kernels added before normalising.
import type { Rng } from '../rng.ts';
import { type Distribution, snapToStep } from '../search-space.ts';
import { LOG_SQRT_2PI, logFarTailMass, logGaussMass, logPhi, truncatedNormalQuantile } from './gaussian.ts';

type NumericDistribution = Extract<Distribution, { type: 'float' | 'int' }>;

interface NumericKernels {
  kind: 'numeric';
  dist: NumericDistribution;
  log: boolean;
  /** 0 for a continuous float, else the grid's step (1 for ints by default). */
  step: number;
  /** The support in the space kernels live in (log for log-scale), widened by step/2 if stepped. */
  lo: number;
  hi: number;
  mus: Float64Array;
  sigmas: Float64Array;
  /** Per kernel: the log of its normal's mass inside [lo, hi] (the truncation's normaliser). */
  logMass: Float64Array;
  /** Continuous only, per kernel: the log density's constant part, -log(sqrt(2 pi) sigma) - logMass. */
  logConst: Float64Array;
  /** Stepped only: kernels sharing (mu, sigma) share this index (ints repeat a lot). */
  uniqueOf: Int32Array;
  uniqueMus: Float64Array;
  uniqueSigmas: Float64Array;
  uniqueLogMass: Float64Array;
}

interface CategoricalKernels {
  kind: 'categorical';
  nChoices: number;
  /** Per observed kernel, its trial's choice index (the prior kernel, last, is uniform). */
  observed: Int32Array;
  /** An observed kernel's probability of its own choice, and of each other one; their logs. */
  hit: number;
  miss: number;
  logHit: number;
  logMiss: number;
  logUniform: number;
}

type Kernels = NumericKernels | CategoricalKernels;

export interface ParzenEstimator {
  weights: Float64Array;
  logWeights: Float64Array;
  cumulativeWeights: Float64Array;
  dims: Kernels[];
}

export interface ParzenOptions {
  priorWeight: number;
  considerEndpoints: boolean;
}

/**
 * Fits an estimator over `dists` (none single-valued) to `points` (one row per trial; numbers for
 * numeric parameters, a choice's index for categoricals) with per-point `weights`.
 */
export function buildParzenEstimator(
  dists: readonly Distribution[],
  points: readonly (readonly number[])[],
  weights: readonly number[],
  options: ParzenOptions,
): ParzenEstimator {
  const n = points.length;
  // Kernel weights: the trials' and the prior's (alone when nothing was observed), normalised.
  const nKernels = n + 1;
  let total = n === 0 ? 1 : options.priorWeight;
  for (let i = 0; i < n; i++) total += weights[i] as number;
  const normalised = new Float64Array(nKernels);
  const logWeights = new Float64Array(nKernels);
  const cumulativeWeights = new Float64Array(nKernels);
  let running = 0;
  for (let k = 0; k < nKernels; k++) {
    const w = (k < n ? (weights[k] as number) : n === 0 ? 1 : options.priorWeight) / total;
    normalised[k] = w;
    logWeights[k] = Math.log(w);
    running += w;
    cumulativeWeights[k] = running;
  }
  cumulativeWeights[n] = 1; // no rounding gap at the top
  const dims = dists.map((dist, d): Kernels => {
    const column = points.map((p) => p[d] as number);
    return dist.type === 'categorical'
      ? categoricalKernels(dist.choices.length, column, options.priorWeight)
      : numericKernels(dist, column, options);
  });
  return { weights: normalised, logWeights, cumulativeWeights, dims };
}

// Kernel k < n puts (1 + c) / (1 + m c) on its observed choice and c / (1 + m c) on each other one,
// with c = priorWeight / kernels and m choices; the prior kernel is uniform. Stored as the observed
// indices and those three numbers, not as a kernels x choices table.
function categoricalKernels(nChoices: number, observed: number[], priorWeight: number): CategoricalKernels {
  const c = priorWeight / (observed.length + 1);
  const total = 1 + nChoices * c;
  return {
    kind: 'categorical',
    nChoices,
    observed: Int32Array.from(observed),
    hit: (1 + c) / total,
    miss: c / total,
    logHit: Math.log((1 + c) / total),
    logMiss: Math.log(c / total),
    logUniform: -Math.log(nChoices),
  };
}

function numericKernels(dist: NumericDistribution, observed: number[], options: ParzenOptions): NumericKernels {
  const step = dist.step ?? 0;
  const log = dist.log;
  const lo = log ? Math.log(dist.low - step / 2) : dist.low - step / 2;
  const hi = log ? Math.log(dist.high + step / 2) : dist.high + step / 2;
  const range = hi - lo;
  const n = observed.length;
  const mus = new Float64Array(n + 1);
  const sigmas = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) mus[i] = log ? Math.log(observed[i] as number) : (observed[i] as number);

  if (n > 0) {
    // Kernels in ascending order, ties in trial order: sorted[j + 1] is the j-th kernel's mu, with
    // the range's ends at sorted[0] and sorted[n + 1]; rank[i] is kernel i's j. (A native numeric
    // sort plus binary searches: 3x faster than sorting indices with a comparator.)
    const sorted = new Float64Array(n + 2);
    sorted.set(mus.subarray(0, n), 1);
    sorted.subarray(1, n + 1).sort();
    sorted[0] = lo;
    sorted[n + 1] = hi;
    const rank = new Int32Array(n);
    const takenInRun = new Int32Array(n + 2);
    for (let i = 0; i < n; i++) {
      const mu = mus[i] as number;
      let left = 1;
      let right = n + 1; // first index in [1, n] whose value is >= mu
      while (left < right) {
        const mid = (left + right) >> 1;
        if ((sorted[mid] as number) < mu) left = mid + 1;
        else right = mid;
      }
      rank[i] = left - 1 + (takenInRun[left] as number);
      takenInRun[left] = (takenInRun[left] as number) + 1;
    }
    const minSigma = range / Math.min(100, n + 2); // n + 1 kernels (the prior too), plus one
    const sigmaAtRank = new Float64Array(n);
    for (let j = 1; j <= n; j++) {
      let sigma = Math.max(
        (sorted[j] as number) - (sorted[j - 1] as number),
        (sorted[j + 1] as number) - (sorted[j] as number),
      );
      if (!options.considerEndpoints && n >= 2) {
        if (j === 1) sigma = (sorted[2] as number) - (sorted[1] as number);
        else if (j === n) sigma = (sorted[n] as number) - (sorted[n - 1] as number);
      }
      sigmaAtRank[j - 1] = Math.min(range, Math.max(minSigma, sigma));
    }
    for (let i = 0; i < n; i++) sigmas[i] = sigmaAtRank[rank[i] as number] as number;
  }
  mus[n] = 0.5 * (lo + hi);
  sigmas[n] = range;

  const logMass = new Float64Array(n + 1);
  const logConst = new Float64Array(n + 1);
  for (let k = 0; k <= n; k++) {
    const mu = mus[k] as number;
    const sigma = sigmas[k] as number;
    logMass[k] = logGaussMass((lo - mu) / sigma, (hi - mu) / sigma);
    logConst[k] = -LOG_SQRT_2PI - Math.log(sigma) - (logMass[k] as number);
  }

  const uniqueOf = new Int32Array(step > 0 ? n + 1 : 0);
  const uniqueMus: number[] = [];
  const uniqueSigmas: number[] = [];
  const uniqueLogMass: number[] = [];
  if (step > 0) {
    const seen = new Map<number, Map<number, number>>(); // mu -> sigma -> unique index
    for (let k = 0; k <= n; k++) {
      const mu = mus[k] as number;
      const sigma = sigmas[k] as number;
      let bySigma = seen.get(mu);
      if (!bySigma) {
        bySigma = new Map();
        seen.set(mu, bySigma);
      }
      let u = bySigma.get(sigma);
      if (u === undefined) {
        u = uniqueMus.length;
        bySigma.set(sigma, u);
        uniqueMus.push(mu);
        uniqueSigmas.push(sigma);
        uniqueLogMass.push(logMass[k] as number);
      }
      uniqueOf[k] = u;
    }
  }
  return {
    kind: 'numeric',
    dist,
    log,
    step,
    lo,
    hi,
    mus,
    sigmas,
    logMass,
    logConst,
    uniqueOf,
    uniqueMus: Float64Array.from(uniqueMus),
    uniqueSigmas: Float64Array.from(uniqueSigmas),
    uniqueLogMass: Float64Array.from(uniqueLogMass),
  };
}

function pickKernel(cumulative: Float64Array, u: number): number {
  let lo = 0;
  let hi = cumulative.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((cumulative[mid] as number) > u) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Draws `count` points: a kernel by weight, then each parameter from that kernel. */
export function sampleParzen(estimator: ParzenEstimator, rng: Rng, count: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < count; i++) {
    const k = pickKernel(estimator.cumulativeWeights, rng.next());
    out.push(
      estimator.dims.map((dim) => {
        if (dim.kind === 'categorical') return sampleChoice(dim, k, rng.next());
        const mu = dim.mus[k] as number;
        const sigma = dim.sigmas[k] as number;
        const z = truncatedNormalQuantile((dim.lo - mu) / sigma, (dim.hi - mu) / sigma, rng.next());
        const x = dim.log ? Math.exp(mu + sigma * z) : mu + sigma * z;
        return snapToStep(dim.dist, x);
      }),
    );
  }
  return out;
}

function sampleChoice(dim: CategoricalKernels, kernel: number, u: number): number {
  if (kernel >= dim.observed.length) return Math.min(dim.nChoices - 1, Math.floor(u * dim.nChoices));
  const own = dim.observed[kernel] as number;
  let cumulative = 0;
  for (let choice = 0; choice < dim.nChoices - 1; choice++) {
    cumulative += choice === own ? dim.hit : dim.miss;
    if (u < cumulative) return choice;
  }
  return dim.nChoices - 1;
}

// log of a normal's mass over a standardised interval [a, b]. Ints in a wide range make this the
// hot loop, so two cheaper forms where they are accurate: narrow intervals near the mean use the
// midpoint rule with its second-order correction (within ~1e-7), intervals 10+ sigma out the tail's
// asymptotic series (within 1e-6); the rest the exact difference of CDFs.
function logIntervalMass(a: number, b: number): number {
  const w = b - a;
  const m = 0.5 * (a + b);
  if (w <= 0.1 && Math.abs(m) * w <= 0.1) return logPhi(m) + Math.log(w) + Math.log1p(((m * m - 1) * w * w) / 24);
  if (a >= 10 || b <= -10) return logFarTailMass(a, b);
  return logGaussMass(a, b);
}

/** log of the mixture's density (mass, for stepped parameters) at each point. */
export function logPdfParzen(estimator: ParzenEstimator, points: readonly (readonly number[])[]): Float64Array {
  const only = estimator.dims.length === 1 ? estimator.dims[0] : undefined;
  if (only && (only.kind === 'categorical' || only.step > 0)) return logPdfOneDiscrete(estimator, only, points);
  return logPdfMixture(estimator, points);
}

/** logPdfParzen's general form: per point, a log-sum-exp over every kernel. */
export function logPdfMixture(estimator: ParzenEstimator, points: readonly (readonly number[])[]): Float64Array {
  const nKernels = estimator.logWeights.length;
  const out = new Float64Array(points.length);
  const acc = new Float64Array(nKernels);
  // Stepped parameters: candidates repeat values, kernels repeat (mu, sigma): compute each pair once.
  const steppedCache = estimator.dims.map(() => new Map<number, Float64Array>());
  for (let p = 0; p < points.length; p++) {
    const point = points[p] as readonly number[];
    acc.set(estimator.logWeights);
    for (let d = 0; d < estimator.dims.length; d++) {
      const dim = estimator.dims[d] as Kernels;
      const x = point[d] as number;
      if (dim.kind === 'categorical') {
        const { observed, logHit, logMiss } = dim;
        for (let k = 0; k < observed.length; k++) acc[k] = (acc[k] as number) + (observed[k] === x ? logHit : logMiss);
        if (observed.length < nKernels) acc[nKernels - 1] = (acc[nKernels - 1] as number) + dim.logUniform;
      } else if (dim.step === 0) {
        const t = dim.log ? Math.log(x) : x;
        const { mus, sigmas, logConst } = dim;
        for (let k = 0; k < nKernels; k++) {
          const z = (t - (mus[k] as number)) / (sigmas[k] as number);
          acc[k] = (acc[k] as number) - 0.5 * z * z + (logConst[k] as number);
        }
      } else {
        const cache = steppedCache[d] as Map<number, Float64Array>;
        let perUnique = cache.get(x);
        if (!perUnique) {
          perUnique = steppedLogMass(dim, x);
          cache.set(x, perUnique);
        }
        const uniqueOf = dim.uniqueOf;
        for (let k = 0; k < nKernels; k++) acc[k] = (acc[k] as number) + (perUnique[uniqueOf[k] as number] as number);
      }
    }
    out[p] = logSumExp(acc);
  }
  return out;
}

// One discrete parameter (univariate TPE): kernels that agree on it merge, weights summed, so an
// int or a categorical costs per distinct value instead of per trial.
function logPdfOneDiscrete(
  estimator: ParzenEstimator,
  dim: Kernels,
  points: readonly (readonly number[])[],
): Float64Array {
  const n = estimator.weights.length;
  if (dim.kind === 'categorical') {
    // p(c) = sum over kernels of weight * probability of c; the prior kernel (if any) is uniform.
    const observedWeight = new Float64Array(dim.nChoices);
    let observedTotal = 0;
    for (let k = 0; k < dim.observed.length; k++) {
      const w = estimator.weights[k] as number;
      observedWeight[dim.observed[k] as number] = (observedWeight[dim.observed[k] as number] as number) + w;
      observedTotal += w;
    }
    const priorShare = (1 - observedTotal) / dim.nChoices;
    return Float64Array.from(points, ([c]) => {
      const hits = observedWeight[c as number] as number;
      return Math.log(hits * dim.hit + (observedTotal - hits) * dim.miss + priorShare);
    });
  }
  const merged = new Float64Array(dim.uniqueMus.length);
  for (let k = 0; k < n; k++) {
    const u = dim.uniqueOf[k] as number;
    merged[u] = (merged[u] as number) + (estimator.weights[k] as number);
  }
  const logMerged = merged.map(Math.log);
  const byValue = new Map<number, number>();
  return Float64Array.from(points, ([x]) => {
    let value = byValue.get(x as number);
    if (value === undefined) {
      const perUnique = steppedLogMass(dim, x as number);
      for (let u = 0; u < perUnique.length; u++) perUnique[u] = (perUnique[u] as number) + (logMerged[u] as number);
      value = logSumExp(perUnique);
      byValue.set(x as number, value);
    }
    return value;
  });
}

// Per unique kernel: the log of its (truncated) mass on x's cell [x - step/2, x + step/2].
function steppedLogMass(dim: NumericKernels, x: number): Float64Array {
  const left = dim.log ? Math.log(x - dim.step / 2) : x - dim.step / 2;
  const right = dim.log ? Math.log(x + dim.step / 2) : x + dim.step / 2;
  const out = new Float64Array(dim.uniqueMus.length);
  for (let u = 0; u < out.length; u++) {
    const mu = dim.uniqueMus[u] as number;
    const sigma = dim.uniqueSigmas[u] as number;
    out[u] = logIntervalMass((left - mu) / sigma, (right - mu) / sigma) - (dim.uniqueLogMass[u] as number);
  }
  return out;
}

function logSumExp(values: Float64Array): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let k = 0; k < values.length; k++) if ((values[k] as number) > max) max = values[k] as number;
  if (max === Number.NEGATIVE_INFINITY) return max;
  let sum = 0;
  for (let k = 0; k < values.length; k++) sum += Math.exp((values[k] as number) - max);
  return max + Math.log(sum);
}
