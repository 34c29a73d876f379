// The trainer: `node examples/mlp/src/train.ts`. Trains an MLP on the shipped spirals dataset
// with mini-batch SGD, under keel (KEEL_CONTROL set) or alone. Exit codes: 0 done or stopped,
// 1 an error, 2 a bad param, 3 the injected failure (params.failAtStep).
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep, setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { connect, type Keel, type Metrics } from '@keel/sdk';
import { encodeFloat64, loadCheckpoint, saveCheckpoint, sha256, type TrainState } from './checkpoint.ts';
import { loadDataset } from './dataset.ts';
import { evaluate, lossAndGradient, Mlp, Workspace } from './model.ts';
import { ParamError, type Params, parseParams } from './params.ts';
import { Prng } from './prng.ts';
import { sgdStep } from './sgd.ts';

class InjectedFailure extends Error {}

// Validation is summed in chunks of this many rows; fixed (not the batch size) so that the
// reported validation loss does not depend on batchSize's effect on the summation order.
const evalChunk = 256;
// Under keel, say something (a heartbeat if nothing else) about this often while steps are slow
// (stepDelayMs), so a slow run is never taken for a hung one.
const heartbeatMs = 1000;

async function train(): Promise<void> {
  // KEEL_PARAMS is checked before connecting, so a malformed one is a param error (exit 2).
  let raw: unknown;
  try {
    raw = JSON.parse(process.env.KEEL_PARAMS || '{}');
  } catch (error) {
    throw new ParamError(`KEEL_PARAMS is not valid JSON (${(error as Error).message})`);
  }
  const params = parseParams(raw);
  const keel = await connect();
  const data = loadDataset();
  const model = new Mlp([data.features, params.hiddenSize, params.hiddenSize, data.classes]);
  const state = keel.resumeFrom ? resume(keel, model, params) : fresh(model, params);
  const rng = Prng.fromState(state.rng);

  const ws = new Workspace(model, params.batchSize);
  const evalWs = new Workspace(model, evalChunk);
  const grad = new Float64Array(model.parameterCount);
  const batch = new Uint32Array(params.batchSize);
  let lastSaved = keel.resumeFrom ? state.step : -1;
  let lastSaid = Date.now();

  const stayInTouch = () => {
    if (keel.attached && Date.now() - lastSaid > heartbeatMs) {
      keel.heartbeat(state.step);
      lastSaid = Date.now();
    }
  };
  const validate = (): Metrics => {
    const { loss, accuracy } = evaluate(model, state.params, data.validation, evalWs);
    return { val_loss: loss, val_acc: accuracy };
  };
  const checkpoint = async (metrics: Metrics) => {
    state.rng = rng.state();
    const name = saveCheckpoint(keel.checkpointDir, state, model.sizes, params, metrics);
    await keel.checkpoint(state.step, name, metrics);
    lastSaved = state.step;
    lastSaid = Date.now();
  };

  while (state.step < params.steps) {
    if (keel.shouldStop()) break;
    const step = state.step + 1;
    for (let b = 0; b < batch.length; b++) batch[b] = rng.nextInt(data.train.count);
    const loss = lossAndGradient(model, state.params, grad, data.train, batch, ws);
    if (!Number.isFinite(loss)) {
      throw new Error(`training diverged at step ${step} (loss ${loss}); try a smaller learningRate`);
    }
    sgdStep(state.params, grad, state.velocity, params.learningRate, params.momentum);
    state.step = step;
    state.lossWindow.sum += loss;
    state.lossWindow.count += 1;
    if (step === params.failAtStep && keel.attempt === 1) {
      throw new InjectedFailure(`injected failure at step ${step} (params.failAtStep, attempt 1)`);
    }

    const last = step === params.steps;
    const checkpointDue = last || (params.checkpointEvery > 0 && step % params.checkpointEvery === 0);
    const metrics: Metrics = {};
    if (step % params.reportEvery === 0 || last) {
      metrics.loss = state.lossWindow.sum / state.lossWindow.count;
      metrics.lr = params.learningRate;
      state.lossWindow = { sum: 0, count: 0 };
    }
    const val = step % params.evalEvery === 0 || checkpointDue ? validate() : undefined;
    if (val) Object.assign(metrics, val);
    if (Object.keys(metrics).length > 0) {
      keel.report(step, metrics);
      lastSaid = Date.now();
    }
    if (checkpointDue) await checkpoint(val as Metrics);

    // Let signals and keel's messages (stop) in: the loop is otherwise synchronous. A slow step
    // (stepDelayMs) sleeps in slices, so it can say it is alive and end early on a stop request.
    if (params.stepDelayMs === 0) await yieldToEventLoop();
    const wakeAt = Date.now() + params.stepDelayMs;
    for (let left = params.stepDelayMs; left > 0 && !keel.shouldStop(); left = wakeAt - Date.now()) {
      await sleep(Math.min(left, heartbeatMs / 2));
      stayInTouch();
    }
    stayInTouch();
  }

  const stopped = state.step < params.steps ? keel.stopReason : undefined;
  if (stopped !== undefined && state.step !== lastSaved) {
    const metrics = validate();
    keel.report(state.step, metrics);
    await checkpoint(metrics);
  }
  const trainEval = evaluate(model, state.params, data.train, evalWs);
  const final: Metrics = { step: state.step, train_loss: trainEval.loss, train_acc: trainEval.accuracy, ...validate() };
  const weightsSha256 = sha256(encodeFloat64(state.params));
  // The sha256 is not a number, so it cannot be a metric: it goes on stdout with the metrics.
  console.log(JSON.stringify({ final, weightsSha256, ...(stopped === undefined ? {} : { stopped }) }));
  await keel.done(final);
}

function fresh(model: Mlp, params: Params): TrainState {
  const rng = Prng.fromSeed(params.seed);
  // Initialization draws first from the same stream that then samples batches.
  const weights = model.initialize(rng);
  return {
    step: 0,
    params: weights,
    velocity: new Float64Array(model.parameterCount),
    rng: rng.state(),
    lossWindow: { sum: 0, count: 0 },
  };
}

function resume(keel: Keel, model: Mlp, params: Params): TrainState {
  const from = keel.resumeFrom as NonNullable<Keel['resumeFrom']>;
  // keel passes an absolute path. A relative one (a run by hand) is taken from the working
  // directory, else from the checkpoint folder (where the trainer reported it as `step-<N>`).
  const inCwd = path.resolve(from.path);
  const folder = fs.existsSync(inCwd) ? inCwd : path.resolve(keel.checkpointDir, from.path);
  const { state, trainedWith } = loadCheckpoint(folder, model.sizes);
  if (state.step !== from.step) {
    throw new Error(`checkpoint ${folder} is at step ${state.step}, but KEEL_RESUME_STEP is ${from.step}`);
  }
  // Resuming with other hyperparameters works, but the run then differs from an uninterrupted
  // one: say so. (`steps` may change freely: it only moves the end.)
  const changed = (['learningRate', 'momentum', 'batchSize'] as const).filter((k) => trainedWith[k] !== params[k]);
  for (const name of changed) {
    console.error(`mlp: resuming with ${name} ${params[name]}; the checkpoint was trained with ${trainedWith[name]}`);
  }
  return state;
}

try {
  await train();
  // done() has flushed and closed the control socket; stdout and stderr are written synchronously
  // to pipes and files, so nothing is lost by exiting here rather than waiting for the event loop.
  process.exit(0);
} catch (error) {
  const code = error instanceof ParamError ? 2 : error instanceof InjectedFailure ? 3 : 1;
  console.error(`mlp: ${error instanceof ParamError ? 'bad params: ' : ''}${(error as Error).message}`);
  if (code === 1) console.error((error as Error).stack);
  // Exit now: an open control socket would keep the process alive.
  process.exit(code);
}
