// A multi-layer perceptron with tanh hidden layers and a softmax cross-entropy output, written out
// by hand in Float64Array loops. All parameters live in ONE flat Float64Array (per layer: the
// weights, row-major outputs × inputs, then the biases), so the optimizer, the checkpoint file
// and the final sha256 all work on a single buffer. The arithmetic runs in a fixed order, so the
// same inputs give the same bits on every run.
import type { Split } from './dataset.ts';
import type { Prng } from './prng.ts';

export interface Layer {
  inputs: number;
  outputs: number;
  /** Offset of the weights (outputs × inputs) in the parameter buffer. */
  weights: number;
  /** Offset of the biases (outputs). */
  biases: number;
}

export class Mlp {
  readonly sizes: readonly number[];
  readonly layers: readonly Layer[];
  readonly parameterCount: number;

  /** sizes: [inputs, hidden..., classes]. */
  constructor(sizes: readonly number[]) {
    if (sizes.length < 2 || !sizes.every((n) => Number.isInteger(n) && n > 0)) {
      throw new Error(`layer sizes must be positive integers, got ${JSON.stringify(sizes)}`);
    }
    this.sizes = sizes;
    const layers: Layer[] = [];
    let offset = 0;
    for (let l = 0; l + 1 < sizes.length; l++) {
      const inputs = sizes[l] as number;
      const outputs = sizes[l + 1] as number;
      layers.push({ inputs, outputs, weights: offset, biases: offset + inputs * outputs });
      offset += inputs * outputs + outputs;
    }
    this.layers = layers;
    this.parameterCount = offset;
  }

  /** LeCun-normal weights (std 1/sqrt(inputs)) keep tanh units out of saturation; biases 0. */
  initialize(rng: Prng): Float64Array {
    const params = new Float64Array(this.parameterCount);
    for (const layer of this.layers) {
      const std = 1 / Math.sqrt(layer.inputs);
      for (let k = 0; k < layer.inputs * layer.outputs; k++) params[layer.weights + k] = rng.nextGaussian() * std;
    }
    return params;
  }
}

/** Buffers for one forward/backward pass of up to `capacity` rows, allocated once per run. */
export class Workspace {
  readonly capacity: number;
  /** activations[l]: rows × sizes[l]; the last holds the softmax probabilities. */
  readonly activations: Float64Array[];
  /** deltas[l]: d(loss)/d(pre-activation) of layer l's outputs, rows × sizes[l + 1]. */
  readonly deltas: Float64Array[];

  constructor(model: Mlp, capacity: number) {
    this.capacity = capacity;
    this.activations = model.sizes.map((n) => new Float64Array(capacity * n));
    this.deltas = model.layers.map((layer) => new Float64Array(capacity * layer.outputs));
  }
}

/** Runs rows `indices[0..count)` of `split` forward, leaving the softmax probabilities in the
 * workspace's last activations; returns the summed cross-entropy loss. */
function forward(
  model: Mlp,
  params: Float64Array,
  split: Split,
  indices: ArrayLike<number>,
  count: number,
  ws: Workspace,
): number {
  const features = model.sizes[0] as number;
  const input = ws.activations[0] as Float64Array;
  for (let b = 0; b < count; b++) {
    const row = indices[b] as number;
    for (let f = 0; f < features; f++) input[b * features + f] = split.x[row * features + f] as number;
  }
  const last = model.layers.length - 1;
  for (let l = 0; l <= last; l++) {
    const { inputs, outputs, weights, biases } = model.layers[l] as Layer;
    const a = ws.activations[l] as Float64Array;
    const z = ws.activations[l + 1] as Float64Array;
    for (let b = 0; b < count; b++) {
      for (let o = 0; o < outputs; o++) {
        let sum = params[biases + o] as number;
        const w = weights + o * inputs;
        const x = b * inputs;
        for (let i = 0; i < inputs; i++) sum += (params[w + i] as number) * (a[x + i] as number);
        z[b * outputs + o] = l === last ? sum : Math.tanh(sum);
      }
    }
  }
  // Softmax in place, shifted by the row's max so exp never overflows; sum the cross-entropy.
  const classes = model.sizes[model.sizes.length - 1] as number;
  const probs = ws.activations[last + 1] as Float64Array;
  let loss = 0;
  for (let b = 0; b < count; b++) {
    const row = b * classes;
    let max = -Infinity;
    for (let k = 0; k < classes; k++) max = Math.max(max, probs[row + k] as number);
    let total = 0;
    for (let k = 0; k < classes; k++) {
      const e = Math.exp((probs[row + k] as number) - max);
      probs[row + k] = e;
      total += e;
    }
    for (let k = 0; k < classes; k++) probs[row + k] = (probs[row + k] as number) / total;
    // max(p, tiny): a confidently wrong prediction gives a large but finite loss.
    loss -= Math.log(Math.max(probs[row + (split.labels[indices[b] as number] as number)] as number, 1e-300));
  }
  return loss;
}

/** The mean loss over the batch `indices`, and its gradient written into `grad` (overwritten). */
export function lossAndGradient(
  model: Mlp,
  params: Float64Array,
  grad: Float64Array,
  split: Split,
  indices: ArrayLike<number>,
  ws: Workspace,
): number {
  const count = indices.length;
  const loss = forward(model, params, split, indices, count, ws) / count;
  grad.fill(0);
  const last = model.layers.length - 1;
  const classes = model.sizes[last + 1] as number;
  const probs = ws.activations[last + 1] as Float64Array;
  const top = ws.deltas[last] as Float64Array;
  // d(mean cross-entropy)/d(logits) = (softmax - onehot) / count.
  for (let b = 0; b < count; b++) {
    const label = split.labels[indices[b] as number] as number;
    for (let k = 0; k < classes; k++) {
      top[b * classes + k] = ((probs[b * classes + k] as number) - (k === label ? 1 : 0)) / count;
    }
  }
  for (let l = last; l >= 0; l--) {
    const { inputs, outputs, weights, biases } = model.layers[l] as Layer;
    const a = ws.activations[l] as Float64Array;
    const delta = ws.deltas[l] as Float64Array;
    const below = l > 0 ? (ws.deltas[l - 1] as Float64Array) : undefined;
    below?.fill(0, 0, count * inputs);
    for (let b = 0; b < count; b++) {
      for (let o = 0; o < outputs; o++) {
        const d = delta[b * outputs + o] as number;
        grad[biases + o] = (grad[biases + o] as number) + d;
        const w = weights + o * inputs;
        const x = b * inputs;
        for (let i = 0; i < inputs; i++) {
          grad[w + i] = (grad[w + i] as number) + d * (a[x + i] as number);
          if (below) below[x + i] = (below[x + i] as number) + (params[w + i] as number) * d;
        }
      }
    }
    if (below) {
      // Through tanh: d tanh(z)/dz = 1 - tanh(z)^2, and a holds tanh(z).
      for (let k = 0; k < count * inputs; k++) {
        const y = a[k] as number;
        below[k] = (below[k] as number) * (1 - y * y);
      }
    }
  }
  return loss;
}

export interface Evaluation {
  loss: number;
  accuracy: number;
}

/** Mean loss and accuracy over a whole split, in chunks of the workspace's capacity. The loss is
 * summed per chunk, so pass a workspace of a fixed capacity (not the batch size) for results that
 * do not depend on other params. */
export function evaluate(model: Mlp, params: Float64Array, split: Split, ws: Workspace): Evaluation {
  const classes = model.sizes[model.sizes.length - 1] as number;
  const probs = ws.activations[model.layers.length] as Float64Array;
  const indices = new Uint32Array(ws.capacity);
  let loss = 0;
  let hits = 0;
  for (let start = 0; start < split.count; start += ws.capacity) {
    const count = Math.min(ws.capacity, split.count - start);
    for (let b = 0; b < count; b++) indices[b] = start + b;
    loss += forward(model, params, split, indices, count, ws);
    for (let b = 0; b < count; b++) {
      let best = 0;
      for (let k = 1; k < classes; k++)
        if ((probs[b * classes + k] as number) > (probs[b * classes + best] as number)) best = k;
      if (best === split.labels[start + b]) hits++;
    }
  }
  return { loss: loss / split.count, accuracy: hits / split.count };
}
