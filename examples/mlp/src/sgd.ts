// Mini-batch SGD with (heavy-ball) momentum, as PyTorch's torch.optim.SGD does it:
//   v ← momentum·v + g;  θ ← θ − lr·v
// The velocity buffer is the optimizer's whole state and goes into every checkpoint: without it a
// resumed run would take different steps than the uninterrupted one.
export function sgdStep(
  params: Float64Array,
  grad: Float64Array,
  velocity: Float64Array,
  learningRate: number,
  momentum: number,
): void {
  for (let k = 0; k < params.length; k++) {
    const v = momentum * (velocity[k] as number) + (grad[k] as number);
    velocity[k] = v;
    params[k] = (params[k] as number) - learningRate * v;
  }
}
