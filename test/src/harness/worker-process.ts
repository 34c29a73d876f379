// A keel worker in a child process of its own, so a test can kill it with SIGKILL the way a lost
// pod dies: the worker and every trainer it started go at once, with no chance to clean up.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { WorkerConfig } from '@keel/workers/config';

const workerScript = fileURLToPath(new URL('../jobs/fixtures/worker-process.ts', import.meta.url));

export interface WorkerProcess {
  child: ChildProcess;
  /** What the worker printed so far (stdout and stderr). */
  output(): string;
}

export function startWorkerProcess(config: WorkerConfig): WorkerProcess {
  const child = spawn(process.execPath, [workerScript], {
    env: { ...process.env, KEEL_TEST_WORKER_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  return { child, output: () => output };
}

/** SIGKILL to the worker and to every process group it started (trainers run in their own). */
export function killTree(pid: number): void {
  let kids: number[] = [];
  try {
    kids = execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .map((s) => Number(s.trim()))
      .filter(Boolean);
  } catch {} // ps exits 1 when there are none
  try {
    process.kill(pid, 'SIGKILL');
  } catch {}
  for (const kid of kids) {
    try {
      process.kill(-kid, 'SIGKILL');
    } catch {}
  }
}
