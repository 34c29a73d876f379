// Small helpers for drawing SVG as strings: escaping, number formats, scales and ticks. Every
// scale has a finite, non-empty domain whatever the data (none, one value, all equal), so a chart
// of a degenerate study still draws and never writes NaN.

/** Escapes text for HTML and SVG, in element content and in quoted attributes. */
export const esc = (value: unknown): string => String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A coordinate with one decimal. A non-finite one would be a bug upstream; 0 keeps the file
 *  valid (a browser drops a whole path over one NaN) while the tests look for such bugs. */
export const px = (v: number): string => String(Number.isFinite(v) ? Math.round(v * 10) / 10 : 0);

/** A number for people: 4 significant digits, exponent form when very large or small. */
export function fmt(v: number | null | undefined, digits = 4): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-3) return v.toExponential(Math.max(0, digits - 2)).replace(/\.?0+e/, 'e');
  return String(Number(v.toPrecision(digits)));
}

export interface Scale {
  (v: number): number;
  readonly log: boolean;
  readonly domain: readonly [number, number];
  ticks(count?: number): number[];
}

/**
 * Maps the extent of `values` (plus `include`) onto `range`. `log` is honoured only when every
 * value is positive. `pad` widens a linear domain by that share of its span on each side.
 */
export function scale(
  values: readonly number[],
  range: readonly [number, number],
  options: { log?: boolean; pad?: number; include?: readonly number[] } = {},
): Scale {
  const finite = [...values, ...(options.include ?? [])].filter(Number.isFinite);
  const log = Boolean(options.log) && finite.length > 0 && finite.every((v) => v > 0);
  let lo = finite.length ? Math.min(...finite) : 0;
  let hi = finite.length ? Math.max(...finite) : 1;
  if (log) {
    [lo, hi] = [Math.log10(lo), Math.log10(hi)];
    if (lo === hi) [lo, hi] = [lo - 0.5, hi + 0.5];
  } else if (lo === hi) {
    const d = Math.abs(lo) * 0.1 || 1;
    [lo, hi] = [lo - d, hi + d];
  }
  const pad = (hi - lo) * (options.pad ?? 0);
  [lo, hi] = [lo - pad, hi + pad];
  const [r0, r1] = range;
  const f = ((v: number) => r0 + (((log ? Math.log10(v) : v) - lo) / (hi - lo)) * (r1 - r0)) as Scale;
  const domain: [number, number] = log ? [10 ** lo, 10 ** hi] : [lo, hi];
  return Object.assign(f, {
    log,
    domain,
    ticks: (count = 5) => {
      if (log) {
        const powers: number[] = [];
        for (let e = Math.ceil(lo - 1e-9); e <= hi + 1e-9; e++) powers.push(10 ** e);
        if (powers.length >= 2) return powers.length > 8 ? powers.filter((_, i) => i % 2 === 0) : powers;
      }
      return niceTicks(domain[0], domain[1], count);
    },
  });
}

/** Round-numbered ticks (steps of 1, 2 or 5 times a power of ten) within [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  const raw = (hi - lo) / Math.max(1, count);
  if (!(raw > 0) || !Number.isFinite(raw)) return [lo];
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const ticks: number[] = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) {
    ticks.push(Number((k * step).toPrecision(12)));
  }
  return ticks;
}

/** Linear interpolation through colour stops (hex), t in [0, 1]. */
export function colorAt(stops: readonly string[], t: number): string {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const [a, b] = [stops[i] as string, stops[i + 1] as string].map((hex) =>
    [1, 3, 5].map((o) => Number.parseInt(hex.slice(o, o + 2), 16)),
  ) as [number[], number[]];
  const mix = a.map((c, j) => Math.round(c + ((b[j] as number) - c) * (x - i)));
  return `#${mix.map((c) => c.toString(16).padStart(2, '0')).join('')}`;
}
