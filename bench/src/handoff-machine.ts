// The checkpoint-handoff benchmark's local resources: the machine it ran on (the figures mean
// little without it), free disk (8 GiB checkpoints), and incompressible checkpoint files.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { round } from './report.ts';

export const GiB = 2 ** 30;
export const MiB = 2 ** 20;

export function freeBytes(dir: string): number {
  const stats = fs.statfsSync(dir);
  return stats.bavail * stats.bsize;
}

export function machine(workDir: string) {
  return {
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    memoryGiB: round(os.totalmem() / GiB, 1),
    // Other work on the machine skews every figure here: the load says whether there was any.
    loadAverage1m: round(os.loadavg()[0] ?? 0, 2),
    workDir,
    diskFreeGiB: round(freeBytes(workDir) / GiB, 1),
    node: process.version,
  };
}

/** Throws unless `dir` has `bytes` free: the disk is shared, so stop before filling it. */
export function ensureFree(dir: string, bytes: number, what: string): void {
  const free = freeBytes(dir);
  if (free < bytes) {
    throw new Error(`${what} needs ${round(bytes / GiB, 1)} GiB free in ${dir}, has ${round(free / GiB, 1)} GiB`);
  }
}

/**
 * Frees what MinIO deleted: it moves deleted objects to .minio.sys/tmp/.trash and purges that only
 * every few minutes, so a few 8 GiB runs would fill the disk first. Nothing in there is live data.
 */
export function emptyMinioTrash(dataDir: string): void {
  const trash = path.join(dataDir, '.minio.sys', 'tmp', '.trash');
  const entries = fs.existsSync(trash) ? fs.readdirSync(trash) : [];
  for (const entry of entries) {
    try {
      fs.rmSync(path.join(trash, entry), { recursive: true, force: true });
    } catch {
      // MinIO's own purge got there first
    }
  }
}

/**
 * Random bytes (incompressible, like weights) in 16 MiB chunks; returns their sha256. Synced before
 * returning, so writing back gigabytes of dirty pages does not overlap the timed runs.
 */
export function writeRandomFile(file: string, bytes: number): string {
  const hash = crypto.createHash('sha256');
  const chunk = Buffer.alloc(16 * MiB);
  const fd = fs.openSync(file, 'w');
  try {
    for (let written = 0; written < bytes; written += chunk.length) {
      const part = chunk.subarray(0, Math.min(chunk.length, bytes - written));
      crypto.randomFillSync(part);
      hash.update(part);
      fs.writeSync(fd, part);
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/**
 * CPU ticks (USER_HZ) since boot: the machine's busy time, and ours (this process, its reaped
 * children such as finished trainers, and `livePids` such as MinIO). Their difference over a
 * stretch is what other processes used: the benchmark shares its 2 cores with whatever else runs.
 * Linux only; undefined elsewhere.
 */
export function cpuTicks(livePids: number[]): { busy: number; ours: number } | undefined {
  try {
    const cpuLine = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const [, user, nice, system, , , irq, softirq, steal] = cpuLine.split(/\s+/).map(Number);
    const busy = [user, nice, system, irq, softirq, steal].reduce((sum: number, v) => sum + (v ?? 0), 0);
    const ours = processTicks('self', true) + livePids.reduce((sum, pid) => sum + processTicks(pid, false), 0);
    return { busy, ours };
  } catch {
    return undefined;
  }
}

/** CPU seconds a live process (MinIO) has used so far; undefined off Linux. */
export function cpuSecondsOf(pid: number): number | undefined {
  try {
    return processTicks(pid, false) / ticksPerSecond;
  } catch {
    return undefined;
  }
}

const ticksPerSecond = 100; // USER_HZ: 100 on every Linux architecture Node supports

function processTicks(pid: number | 'self', withReapedChildren: boolean): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command's closing parenthesis start at field 3; utime is field 14.
  const fields = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  const own = (fields[11] ?? 0) + (fields[12] ?? 0);
  return withReapedChildren ? own + (fields[13] ?? 0) + (fields[14] ?? 0) : own;
}

/** Cores' worth of CPU that other processes used between two cpuTicks readings. */
export function otherCores(
  before: ReturnType<typeof cpuTicks>,
  after: ReturnType<typeof cpuTicks>,
  seconds: number,
): number | undefined {
  if (!before || !after) return undefined;
  return round((after.busy - before.busy - (after.ours - before.ours)) / ticksPerSecond / seconds, 2);
}
