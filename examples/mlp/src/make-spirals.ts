// Writes data/spirals.json (or the file given as the first argument): 3 interleaved 2-D spirals,
// 500 points each, shuffled and split into 1200 training and 300 validation points. Run once
// (`node examples/mlp/src/make-spirals.ts`); the output is committed, so trainers read a fixed file and never depend on this script's numerics.
// Coordinates are rounded to 4 decimals: the file stays small and reads back to the same doubles.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type DatasetFile, datasetFile, type Row } from './dataset.ts';
import { Prng } from './prng.ts';

const output = process.argv[2] ? path.resolve(process.argv[2]) : fileURLToPath(datasetFile);
const seed = 20_250_101;
const classes = 3;
const perClass = 500;
const validationCount = 300;
const angleNoise = 0.2; // radians: enough overlap near the centre that 100% is out of reach

const rng = Prng.fromSeed(seed);
const round = (v: number) => Math.round(v * 1e4) / 1e4 + 0; // + 0 turns -0 into 0
const rows: Row[] = [];
for (let c = 0; c < classes; c++) {
  for (let i = 0; i < perClass; i++) {
    const radius = i / (perClass - 1);
    const angle = (c + radius) * 4 + rng.nextGaussian() * angleNoise;
    rows.push([round(radius * Math.sin(angle)), round(radius * Math.cos(angle)), c]);
  }
}
for (let i = rows.length - 1; i > 0; i--) {
  const j = rng.nextInt(i + 1);
  [rows[i], rows[j]] = [rows[j] as Row, rows[i] as Row];
}

const data: DatasetFile = {
  name: 'spirals',
  description: `${classes} interleaved 2-D spirals, ${perClass} points each, angle noise ${angleNoise} rad; rows are [x, y, label]`,
  generator: 'examples/mlp/src/make-spirals.ts',
  seed,
  classes,
  features: 2,
  train: rows.slice(0, rows.length - validationCount),
  validation: rows.slice(rows.length - validationCount),
};
// One row per line, laid out as Biome formats JSON (so `biome check` leaves the file alone):
// readable diffs, about 40 KB.
const rowsJson = (split: Row[]) => `[\n${split.map((row) => `    [${row.join(', ')}]`).join(',\n')}\n  ]`;
const { train, validation, ...header } = data;
const headerJson = JSON.stringify(header, null, 2).slice(0, -2);
fs.writeFileSync(
  output,
  `${headerJson},\n  "train": ${rowsJson(train)},\n  "validation": ${rowsJson(validation)}\n}\n`,
);
console.log(`wrote ${output}: ${train.length} train, ${validation.length} validation rows`);
