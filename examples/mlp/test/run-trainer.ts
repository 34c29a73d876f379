// Runs the trainer as a real child process, as keel would but without a control socket: the SDK
// still reads KEEL_PARAMS, KEEL_CHECKPOINT_DIR, KEEL_ATTEMPT and KEEL_RESUME_FROM/_STEP.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';

export const trainerPath = fileURLToPath(new URL('../src/train.ts', import.meta.url));

export interface TrainerOptions {
  params?: Record<string, unknown>;
  /** Raw KEEL_PARAMS, for malformed JSON. */
  rawParams?: string;
  checkpointDir: string;
  resumeFrom?: { path: string; step: number };
  attempt?: number;
}

export interface FinalLine {
  final: Record<string, number>;
  weightsSha256: string;
  stopped?: string;
}

export interface TrainerResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The trainer's last stdout line, parsed (undefined when it printed none). */
  final: FinalLine | undefined;
  /** What keel.report() printed locally: `step N: {...}` lines on stderr. */
  reports: { step: number; metrics: Record<string, number> }[];
}

export interface RunningTrainer {
  child: ChildProcess;
  stderr: () => string;
  result: Promise<TrainerResult>;
}

export function startTrainer(options: TrainerOptions): RunningTrainer {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('KEEL_')) env[key] = value;
  env.KEEL_CHECKPOINT_DIR = options.checkpointDir;
  env.KEEL_ATTEMPT = String(options.attempt ?? 1);
  env.KEEL_PARAMS = options.rawParams ?? JSON.stringify(options.params ?? {});
  if (options.resumeFrom) {
    env.KEEL_RESUME_FROM = options.resumeFrom.path;
    env.KEEL_RESUME_STEP = String(options.resumeFrom.step);
  }
  const child = spawn(process.execPath, [trainerPath], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const result = (async (): Promise<TrainerResult> => {
    const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    const lastLine = stdout.trim().split('\n').at(-1);
    const reports = [...stderr.matchAll(/^step (\d+): (\{.*\})$/gm)].map((m) => ({
      step: Number(m[1]),
      metrics: JSON.parse(m[2] as string) as Record<string, number>,
    }));
    return { code, signal, stdout, stderr, final: lastLine ? (JSON.parse(lastLine) as FinalLine) : undefined, reports };
  })();
  return { child, stderr: () => stderr, result };
}

export function runTrainer(options: TrainerOptions): Promise<TrainerResult> {
  return startTrainer(options).result;
}

/** A fresh temporary folder, removed after the test. */
export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-mlp-'));
  onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The step-<N> folders in a checkpoint folder, by step. */
export function checkpointSteps(dir: string): number[] {
  return fs
    .readdirSync(dir)
    .filter((name) => /^step-\d+$/.test(name))
    .map((name) => Number(name.slice('step-'.length)))
    .sort((a, b) => a - b);
}
