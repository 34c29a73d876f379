// Part 1 of checkpoint-handoff: how long one checkpoint blocks the trainer, keel (hard-link
// staging + ack, upload in the background) against save-then-upload (the trainer uploads to
// MinIO itself and waits), alternating which goes first. One trainer process per run; its keel
// checkpoint comes after one small warm-up checkpoint, whose (cold) time is reported apart.
import fs from 'node:fs';
import path from 'node:path';
import { stageCheckpoint } from '@keel/activities/trainer';
import type { Storage } from '@keel/storage';
import { BackgroundUploader, runTrainer } from './handoff-host.ts';
import { ensureFree, freeBytes, GiB, MiB, writeRandomFile } from './handoff-machine.ts';
import { median, round } from './report.ts';

export interface BlockedSetup {
  sizesGiB: number[];
  runs: number;
  work: string;
  storage: Storage;
  /** Passed to the baseline trainer, which opens its own client (credentials come from env). */
  storageUri: string;
  /** Frees the disk space of deleted objects (see emptyMinioTrash). */
  reclaim: () => void;
}

const trainer = path.join(import.meta.dirname, 'handoff-trainer.ts');

export async function measureBlocked(setup: BlockedSetup) {
  const sizes = [];
  const skipped = [];
  for (const sizeGiB of setup.sizesGiB) {
    const bytes = Math.round((sizeGiB * GiB) / MiB) * MiB;
    // The file, plus one copy of it in MinIO at a time (each run's object is deleted), plus slack.
    const needed = 2 * bytes + GiB;
    const free = freeBytes(setup.work);
    if (free < needed) {
      const reason = `needs ${round(needed / GiB, 1)} GiB free in ${setup.work}, has ${round(free / GiB, 1)} GiB`;
      console.error(`skipping ${sizeGiB} GiB: ${reason}`);
      skipped.push({ sizeGiB, reason });
      continue;
    }
    sizes.push(await measureSize(setup, sizeGiB, bytes));
  }
  return { runs: setup.runs, sizes, skipped };
}

async function measureSize(setup: BlockedSetup, sizeGiB: number, bytes: number) {
  const source = path.join(setup.work, `checkpoint-${sizeGiB}gib.bin`);
  console.error(`writing ${sizeGiB} GiB of random bytes to ${source}`);
  const writeStarted = performance.now();
  const sha256 = writeRandomFile(source, bytes);
  const writeSeconds = (performance.now() - writeStarted) / 1000;
  const keel: { blockedMs: number; firstMs: number; toStagedMs: number; method: string; inStorageSeconds: number }[] =
    [];
  const baseline: number[] = [];
  let stageOnly: number[] = [];
  try {
    for (let run = 1; run <= setup.runs; run++) {
      const attemptDir = (name: string) => path.join(setup.work, `${name}-${sizeGiB}gib-${run}`);
      const viaKeel = async () => {
        const uploader = new BackgroundUploader(setup.storage, `keel/${sizeGiB}gib/run-${run}`, sha256);
        const dir = attemptDir('keel');
        const { blockedMs, sentAt, firstMs } = await runTrainer<{ blockedMs: number; sentAt: number; firstMs: number }>(
          {
            script: trainer,
            attemptDir: dir,
            params: { mode: 'keel', source, sha256, step: 1 },
            onStaged: (staged) => staged.step > 0 && uploader.enqueue(staged), // step 0: the warm-up
          },
        );
        // Not the trainer's time: how long after the ack the checkpoint was safe in storage.
        const [upload] = await uploader.drain();
        if (!upload) throw new Error('keel staged no checkpoint');
        keel.push({
          blockedMs,
          firstMs,
          // Request sent to staged (socket, parsing, stageCheckpoint); the rest is the ack's way back.
          toStagedMs: upload.stagedAt - sentAt,
          method: upload.method,
          inStorageSeconds: (upload.endedAt - upload.stagedAt) / 1000,
        });
        await uploader.clear();
        setup.reclaim();
        fs.rmSync(dir, { recursive: true, force: true });
      };
      const saveThenUpload = async () => {
        const dir = attemptDir('baseline');
        const key = `baseline/${sizeGiB}gib/run-${run}.bin`;
        const params = { mode: 'upload', source, sha256, storageUri: setup.storageUri, key };
        const { blockedMs } = await runTrainer<{ blockedMs: number }>({ script: trainer, attemptDir: dir, params });
        baseline.push(blockedMs);
        await setup.storage.delete(key);
        setup.reclaim();
        fs.rmSync(dir, { recursive: true, force: true });
      };
      const order = run % 2 === 1 ? [viaKeel, saveThenUpload] : [saveThenUpload, viaKeel];
      for (const measure of order) {
        ensureFree(setup.work, bytes + GiB, `a ${sizeGiB} GiB run (its copy in MinIO)`);
        await measure();
      }
      console.error(`${sizeGiB} GiB: run ${run}/${setup.runs} done`);
    }
    stageOnly = await stageOnlyMs(setup.work, source, 20);
  } finally {
    fs.rmSync(source, { force: true });
  }
  const keelMs = median(keel.map((k) => k.blockedMs));
  const baselineMs = median(baseline);
  return {
    sizeGiB,
    writeSeconds: round(writeSeconds, 1),
    keel: {
      medianMs: round(keelMs, 3),
      runsMs: keel.map((k) => round(k.blockedMs, 3)),
      firstCheckpointMedianMs: round(median(keel.map((k) => k.firstMs)), 3),
      staging: [...new Set(keel.map((k) => k.method))].join(','),
      sentToStagedMedianMs: round(median(keel.map((k) => k.toStagedMs)), 3),
      stageCheckpointAloneMedianMs: round(median(stageOnly), 3),
      inStorageMedianSeconds: round(median(keel.map((k) => k.inStorageSeconds)), 2),
      inStorageRunsSeconds: keel.map((k) => round(k.inStorageSeconds, 2)),
    },
    saveThenUpload: {
      medianMs: round(baselineMs, 1),
      runsMs: baseline.map((ms) => round(ms, 1)),
      mibPerSecond: round(bytes / MiB / (baselineMs / 1000), 0),
    },
    saveThenUploadOverKeel: round(baselineMs / keelMs, 0),
  };
}

/** stageCheckpoint alone, warm, in this process (no socket, no trainer): the floor under keel's figure. */
async function stageOnlyMs(work: string, source: string, times: number): Promise<number[]> {
  const stagingDir = path.join(work, 'stage-only');
  const ms: number[] = [];
  for (let step = 1; step <= times; step++) {
    const started = performance.now();
    const staged = await stageCheckpoint({ checkpointDir: work, stagingDir, reported: path.basename(source), step });
    ms.push(performance.now() - started);
    await fs.promises.rm(staged.dir, { recursive: true, force: true });
  }
  fs.rmSync(stagingDir, { recursive: true, force: true });
  return ms;
}
