// Benchmark: upload and download one large file to MinIO on loopback, with keel (@keel/storage)
// and with s5cmd (a fast Go S3 client) in the same run, alternating which goes first; reports
// medians, the keel/s5cmd time ratio and keel's peak RSS. Run: npm run bench -- storage-transfer
//   --size-mib N (default 2048)  --runs N (default 3)  --out file.json (also write the JSON there)
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { startServices } from '@keel/test/harness';
import { median, round, table } from './report.ts';

const run = promisify(execFile);
const { values: args } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '2048' },
    runs: { type: 'string', default: '3' },
    out: { type: 'string' },
  },
});
const sizeMiB = Number(args['size-mib']);
const runs = Number(args.runs);
const s5cmd = process.env.KEEL_S5CMD_BIN;
if (!s5cmd) throw new Error('KEEL_S5CMD_BIN is not set. Fix: run through `npm run bench`, which bootstraps the tools.');
const keelTransfer = path.join(import.meta.dirname, 'keel-transfer.ts');

interface Sample {
  seconds: number;
  maxRssBytes?: number;
}
type Tool = 'keel' | 'keel, sha256 known' | 's5cmd';
const samples: Record<'upload' | 'download', Partial<Record<Tool, Sample[]>>> = { upload: {}, download: {} };
const record = (op: 'upload' | 'download', tool: Tool, sample: Sample) => {
  samples[op][tool] ??= [];
  samples[op][tool]?.push(sample);
};

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-bench-'));
const services = await startServices(['minio']);
try {
  const { endpoint, region, accessKeyId, secretAccessKey } = services.endpoints.minio;
  const env = {
    ...process.env,
    AWS_ACCESS_KEY_ID: accessKeyId,
    AWS_SECRET_ACCESS_KEY: secretAccessKey,
    AWS_REGION: region,
    AWS_ENDPOINT_URL_S3: endpoint,
  };
  const source = path.join(work, 'checkpoint.bin');
  const sha256 = writeRandomFile(source, sizeMiB);
  await run(s5cmd, ['--endpoint-url', endpoint, 'mb', 's3://bench'], { env });

  const keel = async (op: 'put' | 'get', key: string, file: string, known?: string): Promise<Sample> => {
    const { stdout } = await run(
      process.execPath,
      [keelTransfer, op, 's3://bench', key, file, ...(known ? [known] : [])],
      {
        env,
      },
    );
    const result = JSON.parse(stdout) as Sample & { sha256: string };
    if (result.sha256 !== sha256) throw new Error(`keel ${op} ${key}: sha256 ${result.sha256}, expected ${sha256}`);
    return result;
  };
  const viaS5cmd = async (from: string, to: string): Promise<Sample> => {
    const started = performance.now();
    await run(s5cmd, ['--endpoint-url', endpoint, 'cp', from, to], { env });
    return { seconds: (performance.now() - started) / 1000 };
  };

  for (let i = 1; i <= runs; i++) {
    const keelFirst = i % 2 === 1;
    const uploads: [Tool, () => Promise<Sample>][] = [
      ['keel', () => keel('put', `keel-${i}`, source)],
      ['s5cmd', () => viaS5cmd(source, `s3://bench/s5cmd-${i}`)],
    ];
    for (const [tool, upload] of keelFirst ? uploads : uploads.reverse()) record('upload', tool, await upload());
    record('upload', 'keel, sha256 known', await keel('put', `known-${i}`, source, sha256));

    const down = path.join(work, 'down');
    const downloads: [Tool, () => Promise<Sample>][] = [
      ['keel', () => keel('get', `keel-${i}`, `${down}-keel`)],
      ['s5cmd', () => viaS5cmd(`s3://bench/keel-${i}`, `${down}-s5cmd`)],
    ];
    for (const [tool, download] of keelFirst ? downloads : downloads.reverse()) {
      record('download', tool, await download());
    }
    for (const file of [`${down}-keel`, `${down}-s5cmd`]) {
      if (fs.statSync(file).size !== sizeMiB * 2 ** 20) throw new Error(`${file} has the wrong size`);
      fs.rmSync(file);
    }
    await run(s5cmd, ['--endpoint-url', endpoint, 'rm', 's3://bench/*'], { env });
    console.error(`run ${i}/${runs} done`);
  }
} finally {
  await services.stop();
  fs.rmSync(work, { recursive: true, force: true });
}

const summary = (['upload', 'download'] as const).map((op) => {
  const tools = samples[op];
  const s5 = median((tools.s5cmd ?? []).map((s) => s.seconds));
  return {
    operation: op,
    tools: Object.entries(tools).map(([tool, list]) => {
      const seconds = median(list.map((s) => s.seconds));
      const rss = list.map((s) => s.maxRssBytes ?? 0);
      return {
        tool,
        runs: list.map((s) => round(s.seconds, 3)),
        medianSeconds: round(seconds, 3),
        mibPerSecond: round(sizeMiB / seconds, 0),
        ratioToS5cmd: round(seconds / s5, 3),
        ...(tool.startsWith('keel') ? { peakRssMiB: round(Math.max(...rss) / 2 ** 20, 0) } : {}),
      };
    }),
  };
});
const result = {
  benchmark: 'storage-transfer',
  target: 'MinIO on loopback (s3://)',
  sizeMiB,
  runs,
  goals: { ratioToS5cmd: '<= 1.1', keelPeakRssMiB: '<= 300' },
  machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGiB: round(os.totalmem() / 2 ** 30, 0) },
  node: process.version,
  results: summary,
};
console.log(JSON.stringify(result, null, 2));
if (args.out) fs.writeFileSync(args.out, `${JSON.stringify(result, null, 2)}\n`);
console.log(
  `\n${sizeMiB} MiB to and from MinIO on loopback, median of ${runs} (alternating order):\n\n${table(
    ['operation', 'tool', 'median s', 'MiB/s', 'keel/s5cmd', 'peak RSS MiB', 'runs s'],
    summary.flatMap(({ operation, tools }) =>
      tools.map((t) => [
        operation,
        t.tool,
        t.medianSeconds,
        t.mibPerSecond,
        t.tool === 's5cmd' ? '' : t.ratioToS5cmd,
        t.peakRssMiB ?? '',
        t.runs.join(' '),
      ]),
    ),
  )}`,
);

/** Random bytes in 16 MiB chunks (incompressible, like weights); returns their sha256. */
function writeRandomFile(file: string, mib: number): string {
  const hash = crypto.createHash('sha256');
  const chunk = Buffer.alloc(16 * 2 ** 20);
  const fd = fs.openSync(file, 'w');
  try {
    for (let written = 0; written < mib * 2 ** 20; written += chunk.length) {
      const part = chunk.subarray(0, Math.min(chunk.length, mib * 2 ** 20 - written));
      crypto.randomFillSync(part);
      hash.update(part);
      fs.writeSync(fd, part);
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}
