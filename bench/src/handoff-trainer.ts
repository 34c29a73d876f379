// The trainer of the blocked-time benchmark: saves one checkpoint and times how long that blocks
// training. Mode `keel`: reports it to keel (`await keel.checkpoint`: keel stages it by hard link
// and acks). Mode `upload`: what a trainer does without keel, uploading it itself and waiting.
// Writes {blockedMs, sentAt (epoch ms), firstMs (keel mode's warm-up)} to params.resultFile.
import fs from 'node:fs';
import path from 'node:path';
import { connect } from '@keel/sdk';
import { openStorage } from '@keel/storage';
import { epochMs } from './step-work.ts';

const MiB = 2 ** 20;

interface Params {
  mode: 'keel' | 'upload';
  /** Random bytes the benchmark wrote once (8 GiB per run would cost minutes and disk). */
  source: string;
  sha256: string;
  step: number;
  storageUri: string;
  key: string;
  resultFile: string;
}

const keel = await connect();
const params = keel.params<Params>();
let blockedMs: number;
let sentAt: number | undefined;
let firstMs: number | undefined;
if (params.mode === 'keel') {
  // A process's first checkpoint pays for cold code paths on both sides: timed apart, on a small
  // file at step 0 (hard-link staging costs the same whatever the size), and not uploaded.
  const warmup = path.join(keel.checkpointDir, 'warmup.bin');
  fs.writeFileSync(warmup, Buffer.alloc(MiB));
  const warmupStarted = performance.now();
  await keel.checkpoint(0, warmup);
  firstMs = performance.now() - warmupStarted;
  fs.rmSync(warmup);
  // The "save": the bytes enter the checkpoint folder as a new file, before the clock starts.
  const file = path.join(keel.checkpointDir, `step-${params.step}.bin`);
  fs.linkSync(params.source, file);
  const started = performance.now();
  sentAt = epochMs(); // with the benchmark's staged time: where the blocked time goes
  await keel.checkpoint(params.step, file);
  blockedMs = performance.now() - started;
  fs.rmSync(file); // acked: keel holds its own link, so the trainer may free its copy
} else {
  const storage = openStorage(params.storageUri); // a trainer keeps its client: opened off the clock
  const started = performance.now();
  // The digest is given so the baseline skips @keel/storage's hashing pass (boto3 would not hash).
  await storage.put(params.key, params.source, { sha256: params.sha256 });
  blockedMs = performance.now() - started;
  await storage.close();
}
fs.writeFileSync(params.resultFile, JSON.stringify({ blockedMs, sentAt, firstMs }));
await keel.done({ blockedMs });
