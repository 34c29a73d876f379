// How every benchmark reports: one JSON document (for scripts and the README's figures) and the
// same figures as a table for people.

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) throw new Error('median of no values');
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Nearest-rank percentile (p in 0..1); NaN for no values. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] as number;
}

export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((row) => row.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]) => row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

export const round = (value: number, digits = 2) => Number(value.toFixed(digits));

/** A command-line option that must be a positive number (an integer unless `integer` is false). */
export function positive(text: string | undefined, what: string, integer = true): number {
  const value = Number(text);
  if (!(value > 0) || (integer && !Number.isInteger(value))) {
    throw new Error(`${what} must be a positive ${integer ? 'integer' : 'number'}, not ${text}`);
  }
  return value;
}
