// Benchmark: keel's TPE against Optuna's TPESampler on standard test functions (Branin 2-D,
// Rosenbrock 4-D, Ackley 5-D): the best value found after N trials, median over seeds, side by
// side, with random search as the baseline. Goal: keel no worse than Optuna on any function.
// Optuna (pinned in scripts/tools.sh) is installed from PyPI into the tool cache on first use, for
// this benchmark only; its side runs in bench/src/optuna_tpe.py, which mirrors the functions below.
// Run: npm run bench -- sampler-quality
//   --trials N (default 100)  --seeds N (default 10)  --keel-only  --out file.json
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  createSampler,
  type Params,
  type SamplerConfig,
  type SearchSpace,
  samplerSchema,
  type TrialView,
} from '../../workflows/src/hpo/index.ts';
import { median, round, table } from './report.ts';

const { values: args } = parseArgs({
  options: {
    trials: { type: 'string', default: '100' },
    seeds: { type: 'string', default: '10' },
    'keel-only': { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const nTrials = Number(args.trials);
const seeds = Array.from({ length: Number(args.seeds) }, (_, i) => i);
const repo = path.resolve(import.meta.dirname, '../..');

// The test functions; bench/src/optuna_tpe.py defines the same ones.
const branin = (x: number[]) => {
  const [x1, x2] = x as [number, number];
  const b = 5.1 / (4 * Math.PI ** 2);
  const c = 5 / Math.PI;
  const t = 1 / (8 * Math.PI);
  return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - t) * Math.cos(x1) + 10;
};
const rosenbrock = (x: number[]) => {
  let sum = 0;
  for (let i = 0; i < x.length - 1; i++) {
    sum += 100 * ((x[i + 1] as number) - (x[i] as number) ** 2) ** 2 + (1 - (x[i] as number)) ** 2;
  }
  return sum;
};
const ackley = (x: number[]) => {
  const n = x.length;
  const s1 = x.reduce((a, v) => a + v * v, 0) / n;
  const s2 = x.reduce((a, v) => a + Math.cos(2 * Math.PI * v), 0) / n;
  return -20 * Math.exp(-0.2 * Math.sqrt(s1)) - Math.exp(s2) + 20 + Math.E;
};
const functions: { name: string; f: (x: number[]) => number; bounds: [number, number][]; minimum: number }[] = [
  {
    name: 'branin',
    f: branin,
    bounds: [
      [-5, 10],
      [0, 15],
    ],
    minimum: 0.397887,
  },
  { name: 'rosenbrock-4d', f: rosenbrock, bounds: new Array(4).fill([-5, 10]), minimum: 0 },
  { name: 'ackley-5d', f: ackley, bounds: new Array(5).fill([-32.768, 32.768]), minimum: 0 },
];

const keelVariants: { name: string; config: SamplerConfig }[] = [
  { name: 'keel tpe', config: samplerSchema.parse({ type: 'tpe' }) },
  { name: 'keel tpe univariate', config: samplerSchema.parse({ type: 'tpe', multivariate: false }) },
  { name: 'keel random', config: samplerSchema.parse({ type: 'random' }) },
];
const optunaVariants = [
  { name: 'optuna tpe', sampler: 'tpe' },
  { name: 'optuna tpe univariate', sampler: 'tpe-univariate' },
  { name: 'optuna random', sampler: 'random' },
];

function keelStudy(config: SamplerConfig, fn: (typeof functions)[number], seed: number) {
  const space: SearchSpace = Object.fromEntries(
    fn.bounds.map(([low, high], i) => [`x${i}`, { type: 'float', low, high, log: false }]),
  );
  const sampler = createSampler(config);
  const trials: TrialView[] = [];
  const started = performance.now();
  for (let number = 0; number < nTrials; number++) {
    const params = sampler.suggest({ space, direction: 'minimize', seed, trialNumber: number, trials }) as Params;
    const value = fn.f(fn.bounds.map((_, i) => params[`x${i}`] as number));
    trials.push({ number, params, state: 'completed', value, intermediate: [] });
  }
  return { best: Math.min(...trials.map((t) => t.value as number)), seconds: (performance.now() - started) / 1000 };
}

/** Optuna at the version pinned in scripts/tools.sh, in its own folder of the tool cache. */
function installOptuna(): { dir: string; version: string } {
  const tools = fs.readFileSync(path.join(repo, 'scripts/tools.sh'), 'utf8');
  const version = /^OPTUNA_VERSION=(\S+)/m.exec(tools)?.[1];
  if (!version) throw new Error('OPTUNA_VERSION is missing from scripts/tools.sh');
  const cache = process.env.KEEL_CACHE_DIR ?? path.join(os.homedir(), '.cache/keel');
  const dir = path.join(cache, 'tools', `optuna@${version}`);
  if (!fs.existsSync(path.join(dir, 'optuna', '__init__.py'))) {
    console.error(`sampler-quality: installing optuna==${version} from PyPI into ${dir} (first run only)`);
    fs.rmSync(`${dir}.tmp`, { recursive: true, force: true });
    const pip = spawnSync(
      'python3',
      ['-m', 'pip', 'install', '-q', '--disable-pip-version-check', '--target', `${dir}.tmp`, `optuna==${version}`],
      { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, PIP_ROOT_USER_ACTION: 'ignore' } },
    );
    if (pip.status !== 0) {
      throw new Error(
        `pip install optuna==${version} failed (exit ${pip.status ?? pip.error?.message}). Fix: install python3 with pip and check access to PyPI, or pass --keel-only`,
      );
    }
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(`${dir}.tmp`, dir);
  }
  return { dir, version };
}

function optunaStudies(dir: string, sampler: string, fn: (typeof functions)[number]) {
  const run = spawnSync(
    'python3',
    [
      path.join(import.meta.dirname, 'optuna_tpe.py'),
      '--function',
      fn.name,
      '--trials',
      String(nTrials),
      '--seeds',
      seeds.join(','),
      '--sampler',
      sampler,
    ],
    { encoding: 'utf8', env: { ...process.env, PYTHONPATH: dir } },
  );
  if (run.status !== 0) throw new Error(`optuna_tpe.py ${fn.name} ${sampler} failed:\n${run.stderr}`);
  return JSON.parse(run.stdout) as { optuna: string; best: number[]; seconds: number[] };
}

const optuna = args['keel-only'] ? null : installOptuna();
const results = functions.map((fn) => {
  const samplers: Record<string, { medianBest: number; best: number[]; medianStudySeconds: number }> = {};
  for (const { name, config } of keelVariants) {
    const runs = seeds.map((seed) => keelStudy(config, fn, seed));
    samplers[name] = {
      medianBest: median(runs.map((r) => r.best)),
      best: runs.map((r) => round(r.best, 4)),
      medianStudySeconds: round(median(runs.map((r) => r.seconds)), 3),
    };
    console.error(`${fn.name}: ${name} done`);
  }
  if (optuna) {
    for (const { name, sampler } of optunaVariants) {
      const out = optunaStudies(optuna.dir, sampler, fn);
      samplers[name] = {
        medianBest: median(out.best),
        best: out.best.map((v) => round(v, 4)),
        medianStudySeconds: round(median(out.seconds), 3),
      };
      console.error(`${fn.name}: ${name} done`);
    }
  }
  const ratio = (a: string, b: string) =>
    samplers[a] && samplers[b]
      ? round((samplers[a].medianBest - fn.minimum) / (samplers[b].medianBest - fn.minimum), 3)
      : null;
  return {
    function: fn.name,
    dimensions: fn.bounds.length,
    minimum: fn.minimum,
    samplers,
    // Regret (best - minimum) of keel's TPE over Optuna's; <= 1 means keel is no worse.
    regretRatioKeelToOptuna: ratio('keel tpe', 'optuna tpe'),
    regretRatioKeelToOptunaUnivariate: ratio('keel tpe univariate', 'optuna tpe univariate'),
  };
});

const result = {
  benchmark: 'sampler-quality',
  trials: nTrials,
  seeds: seeds.length,
  statistic: `median over ${seeds.length} seeds of the best value after ${nTrials} trials (minimize)`,
  goals: { regretRatioKeelToOptuna: '<= 1 on every function' },
  optuna: optuna?.version ?? null,
  machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGiB: round(os.totalmem() / 2 ** 30, 0) },
  node: process.version,
  results,
};
console.log(JSON.stringify(result, null, 2));
if (args.out) fs.writeFileSync(args.out, `${JSON.stringify(result, null, 2)}\n`);

const names = [...keelVariants.map((v) => v.name), ...(optuna ? optunaVariants.map((v) => v.name) : [])];
const columns = [
  'keel tpe',
  'optuna tpe',
  'keel tpe univariate',
  'optuna tpe univariate',
  'keel random',
  'optuna random',
].filter((name) => names.includes(name));
const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4));
console.log(
  `\nBest value after ${nTrials} trials, median of ${seeds.length} seeds (lower is better)${optuna ? `; Optuna ${optuna.version}` : ''}:\n\n${table(
    ['function', 'minimum', ...columns, ...(optuna ? ['keel/optuna regret'] : [])],
    results.map((r) => [
      r.function,
      r.minimum,
      ...columns.map((c) => fmt(r.samplers[c]?.medianBest ?? Number.NaN)),
      ...(optuna ? [r.regretRatioKeelToOptuna ?? ''] : []),
    ]),
  )}\n\nMedian seconds per ${nTrials}-trial study (sampler plus objective):\n\n${table(
    ['function', ...columns],
    results.map((r) => [r.function, ...columns.map((c) => r.samplers[c]?.medianStudySeconds ?? '')]),
  )}`,
);
