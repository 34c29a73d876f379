// Benchmark: how long keel's TPE sampler takes to suggest one trial's params with 100 and 1,000
// completed trials in a 10-dimensional space (float, log float, stepped float, int, log int,
// stepped int, categorical), for the default (multivariate) and the univariate model. The study
// workflow calls suggest inside a workflow task, so it must stay well under Temporal's task
// timeout; goal <= 20 ms. Run: npm run bench -- tpe-latency
//   --trials 100,1000 (completed trials in the history)  --suggests N (default 50)  --out file.json
import fs from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import {
  createRng,
  createSampler,
  type Params,
  randomParams,
  type SamplerConfig,
  type SearchSpace,
  samplerSchema,
  type TrialView,
} from '../../workflows/src/hpo/index.ts';
import { median, percentile, round, table } from './report.ts';

const { values: args } = parseArgs({
  options: {
    trials: { type: 'string', default: '100,1000' },
    suggests: { type: 'string', default: '50' },
    out: { type: 'string' },
  },
});
const historySizes = args.trials.split(',').map(Number);
const suggests = Number(args.suggests);

const space: SearchSpace = {
  lr: { type: 'float', low: 1e-5, high: 1e-1, log: true },
  weightDecay: { type: 'float', low: 1e-6, high: 1e-2, log: true },
  dropout: { type: 'float', low: 0, high: 0.5, log: false },
  momentum: { type: 'float', low: 0.8, high: 0.99, log: false },
  warmup: { type: 'float', low: 0, high: 0.2, log: false, step: 0.01 },
  layers: { type: 'int', low: 1, high: 8, log: false, step: 1 },
  width: { type: 'int', low: 16, high: 1024, log: true, step: 1 },
  batchSize: { type: 'int', low: 16, high: 512, log: false, step: 16 },
  optimizer: { type: 'categorical', choices: ['adam', 'adamw', 'sgd', 'rmsprop'] },
  activation: { type: 'categorical', choices: ['relu', 'gelu', 'silu'] },
};

// A smooth synthetic loss with an optimum inside the space, so "below" is a real region.
function loss(p: Params): number {
  const n = (name: string) => p[name] as number;
  return (
    (Math.log10(n('lr')) + 3) ** 2 +
    0.3 * (Math.log10(n('weightDecay')) + 4) ** 2 +
    (n('dropout') - 0.1) ** 2 * 4 +
    (n('momentum') - 0.9) ** 2 * 10 +
    (n('layers') - 4) ** 2 * 0.05 +
    Math.abs(Math.log2(n('width')) - 8) * 0.2 +
    (p.optimizer === 'adamw' ? 0 : 0.3) +
    (p.activation === 'gelu' ? 0 : 0.1)
  );
}

function history(size: number): TrialView[] {
  return Array.from({ length: size }, (_, number) => {
    const params = randomParams(space, createRng(7, number));
    return { number, params, state: 'completed', value: loss(params), intermediate: [] };
  });
}

const variants: { name: string; config: SamplerConfig }[] = [
  { name: 'tpe (multivariate, default)', config: samplerSchema.parse({ type: 'tpe' }) },
  { name: 'tpe (univariate)', config: samplerSchema.parse({ type: 'tpe', multivariate: false }) },
];

const results = historySizes.flatMap((size) => {
  const trials = history(size);
  return variants.map(({ name, config }) => {
    const sampler = createSampler(config);
    // Warm the JIT up first: a worker suggests many times over its life.
    for (let i = 0; i < 5; i++)
      sampler.suggest({ space, direction: 'minimize', seed: 1, trialNumber: size + i, trials });
    const ms: number[] = [];
    for (let i = 0; i < suggests; i++) {
      const started = performance.now();
      sampler.suggest({ space, direction: 'minimize', seed: 2, trialNumber: size + i, trials });
      ms.push(performance.now() - started);
    }
    ms.sort((a, b) => a - b);
    return {
      sampler: name,
      completedTrials: size,
      dimensions: Object.keys(space).length,
      suggests,
      medianMs: round(median(ms), 2),
      p95Ms: round(percentile(ms, 0.95), 2),
      maxMs: round(ms[ms.length - 1] as number, 2),
    };
  });
});

const result = {
  benchmark: 'tpe-latency',
  goals: { p95Ms: '<= 20' },
  machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGiB: round(os.totalmem() / 2 ** 30, 0) },
  node: process.version,
  results,
};
console.log(JSON.stringify(result, null, 2));
if (args.out) fs.writeFileSync(args.out, `${JSON.stringify(result, null, 2)}\n`);
console.log(
  `\nTPE suggest latency, ${Object.keys(space).length} dimensions (float, log, step, int, log int, categorical), ${suggests} suggests each:\n\n${table(
    ['sampler', 'completed trials', 'median ms', 'p95 ms', 'max ms'],
    results.map((r) => [r.sampler, r.completedTrials, r.medianMs, r.p95Ms, r.maxMs]),
  )}`,
);
