// Parameter importance: how much of the objective's variance over completed trials each
// parameter's marginal explains on its own. A one-way ANOVA per parameter, groups being its
// categories (categorical) or quantile bins (numeric); the effect size is epsilon squared,
// (SS_between - (k - 1) MS_within) / SS_total (Kelley, 1935), which is eta squared corrected for
// the share that k groups explain by chance, so a noise parameter scores near 0 even with few
// trials. Shares are normalised to sum to 1. Quantile bins depend only on the order of values, so
// a log-scale parameter gets the same bins as on a linear scale. Marginal effects only: an
// interaction between two parameters is credited to neither.

export interface ImportanceTrial {
  params: Record<string, unknown>;
  value: number;
}

export interface ParamImportance {
  param: string;
  /** Share of the summed effect sizes, in [0, 1]; the shares sum to 1 unless every one is 0. */
  importance: number;
  /** Epsilon squared: the share of the objective's variance this parameter explains alone. */
  explained: number;
  /** Groups compared: categories seen, or quantile bins. */
  groups: number;
}

/** Below this many completed trials importance is not computed (the report says so). */
export const minTrialsForImportance = 4;

/**
 * Importance of every parameter seen in `trials` (completed trials with a finite objective),
 * most important first. Empty with fewer than minTrialsForImportance trials or a constant objective.
 * `bins`: quantile bins per numeric parameter, by default about sqrt(n) (at least 2).
 */
export function parameterImportance(
  trials: readonly ImportanceTrial[],
  options: { bins?: number } = {},
): ParamImportance[] {
  const usable = trials.filter((t) => Number.isFinite(t.value));
  const n = usable.length;
  if (n < minTrialsForImportance) return [];
  const values = usable.map((t) => t.value);
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const ssTotal = values.reduce((a, v) => a + (v - mean) ** 2, 0);
  // Variance at the level of rounding error is no signal to share out.
  const scale = Math.max(...values.map(Math.abs));
  if (!(ssTotal > n * (1e-12 * scale) ** 2)) return [];

  const names = [...new Set(usable.flatMap((t) => Object.keys(t.params)))];
  const bins = options.bins ?? Math.max(2, Math.round(Math.sqrt(n)));
  const scored = names.map((param) => {
    const groups = groupTrials(
      usable.map((t) => t.params[param]),
      bins,
    );
    return { param, ...epsilonSquared(values, groups, mean, ssTotal) };
  });
  const total = scored.reduce((a, s) => a + s.explained, 0);
  return scored
    .map((s) => ({ ...s, importance: total > 0 ? s.explained / total : 0 }))
    .sort((a, b) => b.importance - a.importance || a.param.localeCompare(b.param));
}

/** A group key per trial: a quantile bin when every present value is a finite number, else the
 *  value itself; a missing value is its own group. */
function groupTrials(values: readonly unknown[], bins: number): string[] {
  const present = values.flatMap((v, i) => (v === undefined ? [] : [{ v, i }]));
  const keys = values.map(() => 'missing');
  const numeric = present.length > 0 && present.every(({ v }) => typeof v === 'number' && Number.isFinite(v));
  if (!numeric) {
    for (const { v, i } of present) keys[i] = `=${JSON.stringify(v)}`;
    return keys;
  }
  const sorted = [...present].sort((a, b) => (a.v as number) - (b.v as number));
  const k = Math.min(bins, new Set(sorted.map(({ v }) => v)).size);
  let bin = 0;
  sorted.forEach(({ v, i }, rank) => {
    // Equal values stay in one bin, whatever their rank.
    const previous = sorted[rank - 1];
    if (!previous || previous.v !== v) bin = Math.floor((rank * k) / sorted.length);
    keys[i] = `#${bin}`;
  });
  return keys;
}

function epsilonSquared(
  values: readonly number[],
  keys: readonly string[],
  mean: number,
  ssTotal: number,
): { explained: number; groups: number } {
  const groups = new Map<string, number[]>();
  keys.forEach((key, i) => {
    const group = groups.get(key) ?? [];
    group.push(values[i] as number);
    groups.set(key, group);
  });
  const k = groups.size;
  const n = values.length;
  // One group explains nothing; as many groups as trials leaves no within-group variance to
  // compare against, so the effect cannot be told from chance.
  if (k < 2 || n - k < 1) return { explained: 0, groups: k };
  let ssBetween = 0;
  for (const group of groups.values()) {
    const m = group.reduce((a, b) => a + b, 0) / group.length;
    ssBetween += group.length * (m - mean) ** 2;
  }
  const msWithin = Math.max(0, ssTotal - ssBetween) / (n - k);
  const explained = (ssBetween - (k - 1) * msWithin) / ssTotal;
  return { explained: Math.min(1, Math.max(0, explained)), groups: k };
}
