// What the step-overhead trainer and the benchmark share: a fixed amount of CPU-bound work (so a
// slower step means contention, never a different amount of work), its calibration, a wait that
// uses no CPU (a trainer blocked on its GPU), and a clock that two processes can compare
// (epoch-based, sub-millisecond).
import { createHash } from 'node:crypto';

const block = Buffer.alloc(64 * 1024, 7); // fits in L2: the step is bound by the CPU, not memory

/** `iterations` chained sha256s of 64 KiB; chained so no iteration can be skipped. */
export function hashWork(iterations: number): string {
  let digest = '';
  for (let i = 0; i < iterations; i++) digest = createHash('sha256').update(block).update(digest).digest('hex');
  return digest;
}

/** Iterations that take about `targetMs` here, now (run it while the machine is otherwise idle). */
export function calibrate(targetMs: number): number {
  hashWork(200); // warm up
  const perMs: number[] = [];
  for (let i = 0; i < 7; i++) {
    const started = performance.now();
    hashWork(500);
    perMs.push(500 / (performance.now() - started));
  }
  perMs.sort((a, b) => a - b);
  return Math.max(1, Math.round(targetMs * (perMs[3] as number)));
}

const device = new Int32Array(new SharedArrayBuffer(4)); // nobody notifies it: every wait times out

/**
 * Blocks this thread for `ms` without using the CPU, as a trainer does in cudaStreamSynchronize
 * while its kernels run on the GPU. Only the wake-up needs the CPU (the scheduler, a core).
 */
export function waitOnDevice(ms: number): void {
  Atomics.wait(device, 0, 0, ms);
}

/** Milliseconds since the epoch, sub-millisecond, comparable between processes on one machine. */
export const epochMs = () => performance.timeOrigin + performance.now();
