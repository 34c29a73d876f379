// Part 2 of checkpoint-handoff: does training slow down while keel uploads? The same fixed steps
// run (a) with no checkpoints and (b) with a checkpoint every `every` steps that the benchmark
// process uploads to MinIO meanwhile (as the host worker would), alternating a and b. Two kinds of
// step: CPU-bound (all of it hashing, competing with the upload for the cores) and GPU-shaped (a
// little hashing for the Python and the kernel launches, then a fixed wait that uses no CPU, as
// a trainer waits on its GPU), so a slower GPU-shaped step means the hand-off or the upload got in
// its way (event loop, socket, disk, page cache, a busy core at wake-up). For each kind, reports
// mean step time of both, the overhead, and the overhead of the steps that actually ran while an
// upload was in flight (so a run whose uploads missed its steps cannot pass unnoticed).
import fs from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Storage } from '@keel/storage';
import { BackgroundUploader, runTrainer, type Upload } from './handoff-host.ts';
import { cpuSecondsOf, freeBytes, GiB, MiB, writeRandomFile } from './handoff-machine.ts';
import { median, round } from './report.ts';
import { calibrate } from './step-work.ts';

export type StepKind = 'cpu' | 'wait';
export const stepKindLabels: Record<StepKind, string> = {
  cpu: 'CPU-bound step',
  wait: 'GPU-shaped step (waits on the device)',
};

export interface OverheadSetup {
  checkpointMiB: number;
  steps: number;
  every: number;
  stepMs: number;
  /** Measured in this order in odd runs, the reverse in even ones. */
  stepKinds: StepKind[];
  /** Of a GPU-shaped step, the part that is CPU work (the rest waits on the device). */
  waitStepCpuFraction: number;
  runs: number;
  /** The first steps of each run are left out of the means (process start, caches). */
  warmupSteps: number;
  work: string;
  storage: Storage;
  /** Frees the disk space of deleted objects (see emptyMinioTrash). */
  reclaim: () => void;
  /** MinIO's, for the CPU its side of the uploads used. */
  serverPid: number;
}

type Step = [startedAt: number, ms: number, cpuPartMs: number];

interface TrainerResult {
  steps: Step[];
  checkpoints: { step: number; sentAt: number; blockedMs: number }[];
}

interface Loaded {
  steps: Step[];
  blockedMs: number[];
  sentToStagedMs: number[];
  uploads: Upload[];
}

/** What one kind of step collects over the runs. */
interface KindRuns {
  kind: StepKind;
  iterations: number;
  waitMs: number;
  plain: Step[][];
  loaded: Loaded[];
  /** CPU seconds the uploading runs cost this process (hashing, the S3 client) and MinIO. */
  uploadCpu: { keel: number; minio: number };
  /** The host's event-loop delay while uploading, one entry per run. */
  loopDelays: { p50: number; p99: number; max: number }[];
}

const trainer = path.join(import.meta.dirname, 'step-trainer.ts');
const mean = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / values.length;

export async function measureOverhead(setup: OverheadSetup) {
  const bytes = setup.checkpointMiB * MiB;
  const checkpoints = Math.floor(setup.steps / setup.every);
  const needed = bytes * (checkpoints + 1) + GiB; // the file, each run's objects in MinIO, slack
  if (freeBytes(setup.work) < needed) {
    const reason = `needs ${round(needed / GiB, 1)} GiB free in ${setup.work}, has ${round(freeBytes(setup.work) / GiB, 1)}`;
    console.error(`skipping the step-overhead part: ${reason}`);
    return { skipped: reason };
  }
  const source = path.join(setup.work, `checkpoint-${setup.checkpointMiB}mib.bin`);
  const sha256 = writeRandomFile(source, bytes);
  // Calibrated before MinIO has anything to do.
  const kinds: KindRuns[] = setup.stepKinds.map((kind) => {
    const cpuMs = kind === 'cpu' ? setup.stepMs : setup.stepMs * setup.waitStepCpuFraction;
    const [iterations, waitMs] = [calibrate(cpuMs), setup.stepMs - cpuMs];
    return { kind, iterations, waitMs, plain: [], loaded: [], uploadCpu: { keel: 0, minio: 0 }, loopDelays: [] };
  });
  try {
    for (let run = 1; run <= setup.runs; run++) {
      for (const k of run % 2 === 1 ? kinds : [...kinds].reverse()) {
        for (const withUploads of run % 2 === 1 ? [false, true] : [true, false]) {
          await runOnce(setup, k, run, withUploads, source, sha256);
        }
      }
      console.error(`step overhead: run ${run}/${setup.runs} done`);
    }
  } finally {
    fs.rmSync(source, { force: true });
  }
  return {
    checkpointMiB: setup.checkpointMiB,
    steps: setup.steps,
    checkpointEverySteps: setup.every,
    warmupStepsLeftOut: setup.warmupSteps,
    runs: setup.runs,
    stepTargetMs: setup.stepMs,
    stepKinds: kinds.map((k) => summarize(k, setup)),
  };
}

async function runOnce(
  setup: OverheadSetup,
  k: KindRuns,
  run: number,
  withUploads: boolean,
  source: string,
  sha256: string,
): Promise<void> {
  const dir = path.join(setup.work, `steps-${k.kind}-${withUploads ? 'uploads' : 'plain'}-${run}`);
  const uploader = new BackgroundUploader(setup.storage, `overhead/${k.kind}-run-${run}`, sha256);
  const every = withUploads ? setup.every : 0;
  const [keelCpu, minioCpu] = [process.cpuUsage(), cpuSecondsOf(setup.serverPid) ?? 0];
  // How late this process (the host: control socket and uploads) serves its event loop while
  // uploading: a message from the trainer waits at least that long. One histogram per run (one
  // re-enabled after a pause would count the pause as a delay).
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  if (withUploads) loopDelay.enable();
  const result = await runTrainer<TrainerResult>({
    script: trainer,
    attemptDir: dir,
    params: { iterations: k.iterations, waitMs: k.waitMs, steps: setup.steps, every, source },
    onStaged: uploader.enqueue,
  });
  const steps = result.steps.slice(setup.warmupSteps);
  // Uploads still running after the trainer finished are waited for, so none leaks into the next run.
  const uploads = await uploader.drain();
  if (withUploads) {
    loopDelay.disable();
    const [p50, p99, max] = [loopDelay.percentile(50), loopDelay.percentile(99), loopDelay.max].map((ns) => ns / 1e6);
    k.loopDelays.push({ p50: p50 ?? 0, p99: p99 ?? 0, max: max ?? 0 });
    const { user, system } = process.cpuUsage(keelCpu);
    k.uploadCpu.keel += (user + system) / 1e6;
    k.uploadCpu.minio += (cpuSecondsOf(setup.serverPid) ?? 0) - minioCpu;
  }
  await uploader.clear();
  setup.reclaim();
  fs.rmSync(dir, { recursive: true, force: true });
  if (withUploads) {
    const stagedAt = new Map(uploads.map((u) => [u.step, u.stagedAt]));
    k.loaded.push({
      steps,
      blockedMs: result.checkpoints.map((c) => c.blockedMs),
      sentToStagedMs: result.checkpoints.map((c) => (stagedAt.get(c.step) ?? Number.NaN) - c.sentAt),
      uploads,
    });
  } else k.plain.push(steps);
}

function summarize(k: KindRuns, setup: OverheadSetup) {
  const plainMs = mean(k.plain.flat().map(([, ms]) => ms));
  const loadedMs = mean(k.loaded.flatMap((r) => r.steps.map(([, ms]) => ms)));
  const duringSteps = k.loaded.flatMap((r) => r.steps.filter((s) => overlaps(s, r.uploads)));
  const during = duringSteps.map(([, ms]) => ms);
  // Where a GPU-shaped step's extra time goes: its CPU part (the cores are busy) or its wait.
  const cpuPartMs = (steps: Step[]) => (steps.length ? round(mean(steps.map(([, , cpu]) => cpu)), 3) : null);
  const stepCount = k.loaded.reduce((sum, r) => sum + r.steps.length, 0);
  const uploads = k.loaded.flatMap((r) => r.uploads);
  const uploadSeconds = uploads.map((u) => (u.endedAt - u.startedAt) / 1000);
  const uploadedGiB = (uploads.length * setup.checkpointMiB * MiB) / GiB;
  return {
    kind: k.kind,
    label: stepKindLabels[k.kind],
    hashIterationsPerStep: k.iterations,
    // After the hashing, one after the other: a slower launch delays the step in full.
    deviceWaitMsPerStep: round(k.waitMs, 3),
    noCheckpoints: {
      meanStepMs: round(plainMs, 3),
      runsMeanStepMs: k.plain.map((r) => round(mean(r.map(([, ms]) => ms)), 3)),
      meanCpuPartMs: cpuPartMs(k.plain.flat()),
    },
    withUploads: {
      meanStepMs: round(loadedMs, 3),
      runsMeanStepMs: k.loaded.map((r) => round(mean(r.steps.map(([, ms]) => ms)), 3)),
      meanStepMsDuringUpload: during.length ? round(mean(during), 3) : null,
      meanCpuPartMs: cpuPartMs(k.loaded.flatMap((r) => r.steps)),
      meanCpuPartMsDuringUpload: cpuPartMs(duringSteps),
      stepsDuringUploadPercent: round((100 * during.length) / stepCount, 1),
      checkpoints: uploads.length,
      blockedMedianMs: round(median(k.loaded.flatMap((r) => r.blockedMs)), 3),
      // Of that, request sent to staged; the rest is the ack's way back to a trainer that must be scheduled.
      sentToStagedMedianMs: round(median(k.loaded.flatMap((r) => r.sentToStagedMs)), 3),
      hostEventLoopDelayMs: {
        p50: round(median(k.loopDelays.map((d) => d.p50)), 1),
        p99: round(Math.max(...k.loopDelays.map((d) => d.p99)), 1),
        max: round(Math.max(...k.loopDelays.map((d) => d.max)), 1),
      },
      uploadMedianSeconds: round(median(uploadSeconds), 2),
      uploadMiBPerSecond: round(setup.checkpointMiB / median(uploadSeconds), 0),
      // How many cores the uploads want besides the trainer's, to read the overhead on machines of other sizes.
      uploadCoreSecondsPerGiB: {
        keel: round(k.uploadCpu.keel / uploadedGiB, 2),
        minio: round(k.uploadCpu.minio / uploadedGiB, 2),
      },
    },
    overheadPercent: round((100 * (loadedMs - plainMs)) / plainMs, 2),
    overheadDuringUploadPercent: during.length ? round((100 * (mean(during) - plainMs)) / plainMs, 2) : null,
  };
}

/** True when the step ran at least partly while an upload (hashing or sending) was in flight. */
function overlaps([startedAt, ms]: Step, uploads: Upload[]): boolean {
  return uploads.some((u) => startedAt < u.endedAt && startedAt + ms > u.startedAt);
}
