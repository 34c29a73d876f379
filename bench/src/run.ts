// `npm run bench -- <name> [options]` runs one benchmark; without a name, lists them.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const benchmarks: Record<string, string> = {
  'storage-transfer': 'upload and download a 2 GiB file to MinIO: keel vs s5cmd, peak RSS',
  'checkpoint-handoff': 'trainer time blocked per checkpoint (keel vs save-then-upload), step overhead of uploads',
  'resume-latency': 'kill -9 of a worker mid-training: time to the first step after resume, steps lost',
  'tpe-latency': 'TPE suggest latency with 100 and 1,000 completed trials in 10 dimensions',
  'sampler-quality': "keel's TPE vs Optuna's TPESampler on Branin, Rosenbrock-4D, Ackley-5D (best after 100 trials)",
  'study-throughput':
    'HPO study parallel efficiency: 64 trials of a 2 s trainer at concurrency 1, 4, 8, 16; slot idle time',
};

const [name, ...rest] = process.argv.slice(2);
if (!name || !(name in benchmarks)) {
  if (name) console.error(`unknown benchmark '${name}'`);
  console.error(
    `usage: npm run bench -- <name> [options]\n${Object.entries(benchmarks)
      .map(([n, what]) => `  ${n.padEnd(18)} ${what}`)
      .join('\n')}`,
  );
  process.exit(name ? 2 : 0);
}
const file = path.join(import.meta.dirname, `${name}.ts`);
if (!fs.existsSync(file)) throw new Error(`${file} is missing`);
const { status } = spawnSync(process.execPath, [file, ...rest], { stdio: 'inherit' });
process.exit(status ?? 1);
