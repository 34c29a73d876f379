// Checkpoints: one new folder per checkpoint, `<checkpointDir>/step-<N>/`, holding everything a
// resumed run needs to continue bit for bit:
//   weights.f64   the parameters, little-endian float64 (per layer: weights row-major, biases)
//   momentum.f64  the optimizer's velocity, same layout
//   state.json    step, layer sizes, PRNG state, the partial training-loss window, the params it
//                 was trained with, the sha256 of both binary files, and the validation metrics
// The folder is written under a temporary name and renamed into place, so `step-<N>` is complete
// the moment it exists; it is never written again (keel may have hard-linked its files).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Params } from './params.ts';
import type { PrngState } from './prng.ts';

export const checkpointFormat = 'keel-example-mlp/1';

/** Everything that changes while training. */
export interface TrainState {
  /** SGD steps taken so far. */
  step: number;
  params: Float64Array;
  velocity: Float64Array;
  rng: PrngState;
  /** Training losses summed since the last report, so a resumed run reports the same means. */
  lossWindow: { sum: number; count: number };
}

export interface CheckpointState {
  format: string;
  step: number;
  layerSizes: number[];
  rng: PrngState;
  lossWindow: { sum: number; count: number };
  trainedWith: Params;
  sha256: { 'weights.f64': string; 'momentum.f64': string };
  metrics: Record<string, number>;
}

export function encodeFloat64(values: Float64Array): Buffer {
  const buffer = Buffer.alloc(values.length * 8);
  for (let k = 0; k < values.length; k++) buffer.writeDoubleLE(values[k] as number, k * 8);
  return buffer;
}

export function decodeFloat64(buffer: Buffer): Float64Array {
  if (buffer.length % 8 !== 0) throw new Error(`a float64 file of ${buffer.length} bytes is truncated`);
  const values = new Float64Array(buffer.length / 8);
  for (let k = 0; k < values.length; k++) values[k] = buffer.readDoubleLE(k * 8);
  return values;
}

export const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** Writes `step-<N>/` inside `checkpointDir`; returns its name (relative, as keel wants it). */
export function saveCheckpoint(
  checkpointDir: string,
  state: TrainState,
  layerSizes: readonly number[],
  trainedWith: Params,
  metrics: Record<string, number>,
): string {
  const name = `step-${state.step}`;
  const final = path.join(checkpointDir, name);
  const partial = path.join(checkpointDir, `.${name}.partial`);
  fs.rmSync(partial, { recursive: true, force: true });
  fs.mkdirSync(partial, { recursive: true });
  const weights = encodeFloat64(state.params);
  const momentum = encodeFloat64(state.velocity);
  const meta: CheckpointState = {
    format: checkpointFormat,
    step: state.step,
    layerSizes: [...layerSizes],
    rng: state.rng,
    lossWindow: state.lossWindow,
    trainedWith,
    sha256: { 'weights.f64': sha256(weights), 'momentum.f64': sha256(momentum) },
    metrics,
  };
  fs.writeFileSync(path.join(partial, 'weights.f64'), weights);
  fs.writeFileSync(path.join(partial, 'momentum.f64'), momentum);
  // JSON keeps doubles exactly: JSON.stringify writes the shortest text that parses back to the
  // same number, which the resumed run's loss window relies on.
  fs.writeFileSync(path.join(partial, 'state.json'), `${JSON.stringify(meta, null, 2)}\n`);
  // A folder of the same name can only be a leftover of an earlier run in the same folder (keel
  // gives every attempt an empty one): remove it rather than write into it.
  fs.rmSync(final, { recursive: true, force: true });
  fs.renameSync(partial, final);
  return name;
}

export interface LoadedCheckpoint {
  state: TrainState;
  trainedWith: Params;
}

/** Reads and verifies a `step-<N>/` folder written by saveCheckpoint. */
export function loadCheckpoint(folder: string, layerSizes: readonly number[]): LoadedCheckpoint {
  const where = `checkpoint ${folder}`;
  let meta: CheckpointState;
  try {
    meta = JSON.parse(fs.readFileSync(path.join(folder, 'state.json'), 'utf8')) as CheckpointState;
  } catch (error) {
    throw new Error(`${where}: cannot read state.json (${(error as Error).message})`);
  }
  if (meta.format !== checkpointFormat)
    throw new Error(`${where}: format ${meta.format}, expected ${checkpointFormat}`);
  if (JSON.stringify(meta.layerSizes) !== JSON.stringify(layerSizes)) {
    throw new Error(
      `${where}: layer sizes ${JSON.stringify(meta.layerSizes)} do not match this run's ${JSON.stringify(layerSizes)} (hiddenSize differs)`,
    );
  }
  const read = (file: 'weights.f64' | 'momentum.f64') => {
    const bytes = fs.readFileSync(path.join(folder, file));
    if (sha256(bytes) !== meta.sha256[file]) throw new Error(`${where}: ${file} does not match its sha256`);
    const values = decodeFloat64(bytes);
    const expected = parameterCount(layerSizes);
    if (values.length !== expected)
      throw new Error(`${where}: ${file} has ${values.length} values, expected ${expected}`);
    return values;
  };
  return {
    state: {
      step: meta.step,
      params: read('weights.f64'),
      velocity: read('momentum.f64'),
      rng: meta.rng,
      lossWindow: meta.lossWindow,
    },
    trainedWith: meta.trainedWith,
  };
}

function parameterCount(sizes: readonly number[]): number {
  let count = 0;
  for (let l = 0; l + 1 < sizes.length; l++) count += ((sizes[l] as number) + 1) * (sizes[l + 1] as number);
  return count;
}
