// Benchmark (issue #4): what a checkpoint costs the trainer with keel's handoff, against MinIO on
// loopback. Part 1: time blocked per checkpoint, keel (hard link + ack) vs save-then-upload.
// Part 2: step-time overhead while keel uploads in the background, for a CPU-bound step and a
// GPU-shaped one (a little CPU, then a wait on the device that uses none). Not measured: resume latency
// after kill -9 (needs Temporal and a worker; see `notMeasured`). Prints JSON, then tables.
// Run: npm run bench -- checkpoint-handoff
//   --sizes-gib 1,8  --runs 3  (part 1)
//   --checkpoint-mib 512  --steps 300  --every 50  --step-ms 30  --overhead-runs 3
//   --step-kind cpu|wait|both  (part 2; default both)
//   --parts blocked,overhead  --dir <work folder, default the temp dir>  --out file.json
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { openStorage } from '@keel/storage';
import { startServices } from '@keel/test/harness';
import { measureBlocked } from './handoff-blocked.ts';
import { cpuTicks, emptyMinioTrash, machine, otherCores } from './handoff-machine.ts';
import { measureOverhead, type StepKind } from './handoff-overhead.ts';
import { positive, round, table } from './report.ts';

const { values: args } = parseArgs({
  options: {
    'sizes-gib': { type: 'string', default: '1,8' },
    runs: { type: 'string', default: '3' },
    'checkpoint-mib': { type: 'string', default: '512' },
    steps: { type: 'string', default: '300' },
    every: { type: 'string', default: '50' },
    'step-ms': { type: 'string', default: '30' },
    'overhead-runs': { type: 'string', default: '3' },
    'step-kind': { type: 'string', default: 'both' },
    parts: { type: 'string', default: 'blocked,overhead' },
    dir: { type: 'string', default: os.tmpdir() },
    out: { type: 'string' },
  },
});
const option = (name: keyof typeof args, integer = true) => positive(args[name] as string, `--${name}`, integer);
const parts = new Set(args.parts?.split(','));
const stepKindOption = args['step-kind'] as string;
if (!['cpu', 'wait', 'both'].includes(stepKindOption)) {
  throw new Error(`--step-kind must be cpu, wait or both, not ${stepKindOption}`);
}
const stepKinds: StepKind[] = stepKindOption === 'both' ? ['cpu', 'wait'] : [stepKindOption as StepKind];
const s5cmd = process.env.KEEL_S5CMD_BIN;
if (!s5cmd) throw new Error('KEEL_S5CMD_BIN is not set. Fix: run through `npm run bench`, which bootstraps the tools.');

const host = machine(path.resolve(args.dir as string));
console.error(`machine: ${JSON.stringify(host)}`);
const services = await startServices(['minio']);
const work = fs.mkdtempSync(path.join(host.workDir, 'keel-handoff-'));
// Interrupted (Ctrl-C), the finally blocks below do not run: still stop MinIO (its own process
// group) and free the disk, which holds up to two copies of the largest checkpoint.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    try {
      process.kill(-services.pids.minio, 'SIGKILL');
    } catch {
      // already gone
    }
    for (const dir of [work, services.root]) fs.rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  });
}
type OthersLoad = { otherProcessesCores: number | undefined };
let blocked: (Awaited<ReturnType<typeof measureBlocked>> & OthersLoad) | undefined;
let overhead: (Awaited<ReturnType<typeof measureOverhead>> & OthersLoad) | undefined;
try {
  const { endpoint, region, accessKeyId, secretAccessKey } = services.endpoints.minio;
  // For this process's uploads and, inherited through launchTrainer, the baseline trainer's.
  Object.assign(process.env, {
    AWS_ACCESS_KEY_ID: accessKeyId,
    AWS_SECRET_ACCESS_KEY: secretAccessKey,
    AWS_REGION: region,
    AWS_ENDPOINT_URL_S3: endpoint,
  });
  await promisify(execFile)(s5cmd, ['--endpoint-url', endpoint, 'mb', 's3://bench']);
  const storageUri = 's3://bench';
  const reclaim = () => emptyMinioTrash(path.join(services.root, 'minio', 'data')); // the harness's layout
  const storage = openStorage(storageUri);
  // Other processes' CPU during a part, so a figure disturbed by other work on the machine shows it.
  const withOthersLoad = async <T extends object>(part: () => Promise<T>) => {
    const [before, started] = [cpuTicks([services.pids.minio]), performance.now()];
    const value = await part();
    const seconds = (performance.now() - started) / 1000;
    return { ...value, otherProcessesCores: otherCores(before, cpuTicks([services.pids.minio]), seconds) };
  };
  try {
    if (parts.has('blocked')) {
      const sizesGiB = (args['sizes-gib'] as string).split(',').map(Number);
      if (sizesGiB.some((s) => !(s > 0))) throw new Error(`--sizes-gib must list positive numbers`);
      blocked = await withOthersLoad(() =>
        measureBlocked({ sizesGiB, runs: option('runs'), work, storage, storageUri, reclaim }),
      );
    }
    if (parts.has('overhead')) {
      overhead = await withOthersLoad(() =>
        measureOverhead({
          checkpointMiB: option('checkpoint-mib'),
          steps: option('steps'),
          every: option('every'),
          stepMs: option('step-ms', false),
          stepKinds,
          waitStepCpuFraction: 0.1,
          runs: option('overhead-runs'),
          warmupSteps: 5,
          work,
          storage,
          reclaim,
          serverPid: services.pids.minio,
        }),
      );
    }
  } finally {
    await storage.close();
  }
} finally {
  await services.stop();
  fs.rmSync(work, { recursive: true, force: true });
}

const result = {
  benchmark: 'checkpoint-handoff',
  target: 'MinIO on loopback (s3://), on the same machine as the trainer',
  goals: { keelBlockedMedianMs: '<= 5 (hard-link staging)', stepOverheadPercent: '<= 2' },
  machine: { ...host, loadAverage1mAtEnd: round(os.loadavg()[0] ?? 0, 2) },
  blocked,
  overhead,
  notMeasured: {
    resumeAfterKill9: 'skipped: needs a Temporal server, a worker and the trainingJob workflow',
    workflowSignal:
      "the real worker's onStaged awaits a Temporal signal before the ack; here onStaged only queues the upload",
  },
};
console.log(JSON.stringify(result, null, 2));
if (args.out) fs.writeFileSync(args.out, `${JSON.stringify(result, null, 2)}\n`);

const cores = `${host.cpus} cores shared by the trainer, the uploads and MinIO`;
const others = (used: number | undefined) => `other processes used ${used ?? '?'} cores meanwhile`;
if (blocked && blocked.sizes.length > 0) {
  const b = blocked;
  const title = `Time the trainer is blocked per checkpoint, median of ${b.runs} (alternating order; ${cores}; ${others(b.otherProcessesCores)})`;
  const headline = table(
    ['size GiB', 'keel ms', 'keel runs ms', 'save+upload ms', 'save+upload runs ms', 'save+upload / keel'],
    b.sizes.map((s) => [
      s.sizeGiB,
      s.keel.medianMs,
      s.keel.runsMs.join(' '),
      s.saveThenUpload.medianMs,
      s.saveThenUpload.runsMs.join(' '),
      `${s.saveThenUploadOverKeel}x`,
    ]),
  );
  // Where keel's blocked time goes, and what the background upload then takes.
  const detail = table(
    [
      'size GiB',
      'staging',
      "process's first ckpt ms",
      'sent to staged ms',
      'stageCheckpoint alone ms',
      'keel: in storage after s',
      'save+upload MiB/s',
    ],
    b.sizes.map((s) => [
      s.sizeGiB,
      s.keel.staging,
      s.keel.firstCheckpointMedianMs,
      s.keel.sentToStagedMedianMs,
      s.keel.stageCheckpointAloneMedianMs,
      s.keel.inStorageMedianSeconds,
      s.saveThenUpload.mibPerSecond,
    ]),
  );
  console.log(`\n${title}:\n\n${headline}\n\n${detail}`);
}
for (const s of blocked?.skipped ?? []) console.log(`\nskipped ${s.sizeGiB} GiB: ${s.reason}`);
if (overhead && 'skipped' in overhead) console.log(`\nskipped the step-overhead part: ${overhead.skipped}`);
else if (overhead) {
  const o = overhead;
  const rows = o.stepKinds.flatMap((k) => {
    const w = k.withUploads;
    return [
      [
        k.label,
        'no checkpoints',
        k.noCheckpoints.meanStepMs,
        k.noCheckpoints.meanCpuPartMs ?? '',
        k.noCheckpoints.runsMeanStepMs.join(' '),
        '',
        '',
        '',
      ],
      [
        '',
        'uploading',
        w.meanStepMs,
        w.meanCpuPartMs ?? '',
        w.runsMeanStepMs.join(' '),
        k.overheadPercent,
        w.stepsDuringUploadPercent,
        w.blockedMedianMs,
      ],
      [
        '',
        '  steps during an upload',
        w.meanStepMsDuringUpload ?? '',
        w.meanCpuPartMsDuringUpload ?? '',
        '',
        k.overheadDuringUploadPercent ?? '',
        '',
        '',
      ],
    ];
  });
  const uploads = table(
    [
      'step',
      'upload s',
      'MiB/s',
      'keel CPU s/GiB',
      'MinIO CPU s/GiB',
      'sent to staged ms',
      'host loop late ms p50/p99/max',
    ],
    o.stepKinds.map((k) => {
      const w = k.withUploads;
      const d = w.hostEventLoopDelayMs;
      return [
        k.label,
        w.uploadMedianSeconds,
        w.uploadMiBPerSecond,
        w.uploadCoreSecondsPerGiB.keel,
        w.uploadCoreSecondsPerGiB.minio,
        w.sentToStagedMedianMs,
        `${d.p50}/${d.p99}/${d.max}`,
      ];
    }),
  );
  const shapes = o.stepKinds
    .map((k) =>
      k.kind === 'cpu'
        ? `${k.label}: ${k.hashIterationsPerStep} hashes`
        : `${k.label}: ${k.hashIterationsPerStep} hashes (the Python and the launches), then ${k.deviceWaitMsPerStep} ms waiting without CPU`,
    )
    .join('; ');
  console.log(
    `\nStep time with ${o.checkpointMiB} MiB checkpoints every ${o.checkpointEverySteps} of ${o.steps} steps uploading in the background (${o.runs} runs each; ${cores}; ${others(o.otherProcessesCores)}). ${shapes}:\n\n${table(
      [
        'step',
        'mode',
        'mean step ms',
        'of it CPU ms',
        'runs mean ms',
        'overhead %',
        'steps during upload %',
        'blocked median ms',
      ],
      rows,
    )}\n\nThe uploads while each kind of step ran (median upload; CPU seconds per GiB uploaded in keel's process, hashing and S3 client,\nand in MinIO; of keel.checkpoint's blocked time, sent to staged; how late the host's event loop ran, median and worst run):\n\n${uploads}`,
  );
}
