// The shipped dataset (data/spirals.json, made once by make-spirals.ts) and its in-memory form:
// features in one row-major Float64Array and labels in a Uint8Array, so batches are index lists.
import fs from 'node:fs';

export const datasetFile = new URL('../data/spirals.json', import.meta.url);

/** One row per point: [x, y, label]. */
export type Row = [number, number, number];

export interface DatasetFile {
  name: string;
  description: string;
  generator: string;
  seed: number;
  classes: number;
  features: number;
  train: Row[];
  validation: Row[];
}

export interface Split {
  /** count × features, row-major. */
  x: Float64Array;
  labels: Uint8Array;
  count: number;
}

export interface Dataset {
  features: number;
  classes: number;
  train: Split;
  validation: Split;
}

export function loadDataset(file: URL | string = datasetFile): Dataset {
  const data = JSON.parse(fs.readFileSync(file, 'utf8')) as DatasetFile;
  const { features, classes } = data;
  return {
    features,
    classes,
    train: toSplit(data.train, features, classes),
    validation: toSplit(data.validation, features, classes),
  };
}

function toSplit(rows: Row[], features: number, classes: number): Split {
  const x = new Float64Array(rows.length * features);
  const labels = new Uint8Array(rows.length);
  rows.forEach((row, i) => {
    if (row.length !== features + 1)
      throw new Error(`dataset row ${i} has ${row.length} values, expected ${features + 1}`);
    for (let f = 0; f < features; f++) x[i * features + f] = row[f] as number;
    const label = row[features] as number;
    if (!Number.isInteger(label) || label < 0 || label >= classes)
      throw new Error(`dataset row ${i} has label ${label}`);
    labels[i] = label;
  });
  return { x, labels, count: rows.length };
}
