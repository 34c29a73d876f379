// The training job spec: what a user writes (JSON or YAML, from the Temporal CLI, `keel job start`,
// the typed client or the HTTP API). Shared by the workflow and every client; every field but
// `command` has a default, and unknown fields are rejected so typos do not pass silently.
import { z } from 'zod';
import { gpuClassHint, gpuClassPattern } from '../task-queues.ts';
import { parseSpec } from './validate.ts';

const storageUri = z
  .string()
  .regex(
    /^(file:\/\/\/|s3:\/\/|gs:\/\/|az:\/\/)[^\s]*$/,
    'expected file:///absolute/folder, s3://bucket/prefix, gs://bucket/prefix or az://container/prefix',
  );

const argvHint = 'give the trainer command as an argv list, e.g. ["python", "train.py"]';

export const objectiveSchema = z.strictObject({
  metric: z.string().min(1),
  direction: z.enum(['minimize', 'maximize']),
});

export const checkpointPolicySchema = z
  .strictObject({
    /** every: upload each checkpoint; best-and-last: only those that are (or may become) the best or
     *  the newest; on-end: upload the best and the last once, when the job ends however it ends. */
    upload: z.enum(['every', 'best-and-last', 'on-end']).default('every'),
    /** Committed checkpoints kept: the newest keepLast plus the best keepBest; older ones are deleted. */
    keepLast: z.int().min(1).default(3),
    /** Default: 1 with an objective, else 0. */
    keepBest: z.int().min(0).optional(),
    /** The metric that ranks checkpoints (needed for keepBest > 0 and best-and-last). */
    objective: objectiveSchema.optional(),
  })
  .refine((p) => p.objective !== undefined || (!p.keepBest && p.upload !== 'best-and-last'), {
    message: "needs an objective ({ metric, direction }) to rank checkpoints; or set keepBest: 0 and upload: 'every'",
    path: ['objective'],
  })
  .transform((p) => ({ ...p, keepBest: p.keepBest ?? (p.objective ? 1 : 0) }));

export const jobSpecSchema = z.strictObject({
  /** A label for people; the workflow id is the job's identity. */
  name: z.string().min(1).max(200).optional(),
  /** The trainer's argv, e.g. ["python", "train.py", "--epochs", "10"]. */
  command: z.array(z.string().min(1), { error: () => argvHint }).min(1, argvHint),
  env: z.record(z.string(), z.string()).default({}),
  /** Working directory on the worker host (default: the worker's). */
  cwd: z.string().min(1).optional(),
  /** Passed to the trainer as KEEL_PARAMS (JSON). */
  params: z.record(z.string(), z.json()).default({}),
  /** Where checkpoints go (default: the worker's KEEL_STORAGE_URI, else file://<KEEL_HOME>/checkpoints). */
  storage: storageUri.optional(),
  checkpoints: checkpointPolicySchema.prefault({}),
  gpus: z.int().min(0).max(64).default(1),
  failures: z
    .strictObject({
      /** Trainer crashes and hangs tolerated before the job fails. */
      maxFailures: z.int().min(0).default(3),
      /** Preempted workers tolerated (a worker told to stop, a pod taken away). */
      maxPreemptions: z.int().min(0).default(20),
    })
    .prefault({}),
  timeouts: z
    .strictObject({
      /** A worker that stops heartbeating this long is taken for dead and the job moves on. */
      heartbeatSeconds: z.int().min(5).default(30),
      /** A trainer silent this long (no metric, checkpoint or heartbeat message) is hung. */
      progressSeconds: z.int().min(10).default(600),
      /** After SIGTERM, how long the trainer may take to save and exit before SIGKILL. */
      stopGraceSeconds: z.int().min(1).default(60),
      /** An attempt that no worker has taken after this long is reported in the progress
       *  (`waiting`: which queue, and whether any worker serves it); the job goes on waiting.
       *  Default 60 (applied by the workflow). */
      pickUpSeconds: z.int().min(1).optional(),
      /** Fail the job once no worker has taken an attempt for this long. Default: wait for as
       *  long as it takes (a host of the class may be on its way). */
      waitForWorkerSeconds: z.int().min(1).optional(),
    })
    .prefault({}),
  /** The queue the trainer is launched from: GPU workers serve `keel-gpu`; fleets may have one
   *  queue per GPU class. */
  gpuTaskQueue: z.string().min(1).default('keel-gpu'),
  /** Run only on hosts of this GPU class (workers started with KEEL_GPU_CLASS, e.g. `a100`):
   *  attempts launch from `<gpuTaskQueue>-<gpuClass>`, e.g. `keel-gpu-a100`. */
  gpuClass: z.string().regex(gpuClassPattern, gpuClassHint).optional(),
  /** Used when no GPU worker picks the job up within fallbackAfterSeconds (e.g. a CPU queue). */
  fallbackTaskQueue: z.string().min(1).optional(),
  fallbackAfterSeconds: z.int().min(1).default(300),
  /** Set by an hpoStudy on the jobs it runs as trials: where the job reports its objective values
   *  and its end. Users leave it out. */
  trial: z
    .strictObject({
      studyId: z.string().min(1),
      trialNumber: z.int().min(0),
      metric: z.string().min(1),
      /** Whether the study prunes: values then travel to it every second, else every 10 s. */
      prune: z.boolean().default(true),
    })
    .optional(),
});

/** What users write. */
export type JobSpecInput = z.input<typeof jobSpecSchema>;
/** With every default filled in. */
export type JobSpec = z.output<typeof jobSpecSchema>;

export function parseJobSpec(input: unknown): JobSpec {
  return parseSpec('job spec', jobSpecSchema, input);
}
