// GPU slots on one worker host: which devices exist (KEEL_GPUS, else nvidia-smi), and who holds
// them. A job asks for N devices and waits, first come first served, until N are free; its
// trainer then sees exactly those through CUDA_VISIBLE_DEVICES.
import { execFileSync } from 'node:child_process';

export class GpuCapacityError extends Error {
  override name = 'GpuCapacityError';
}

export interface GpuDevice {
  /** What CUDA_VISIBLE_DEVICES names: the index nvidia-smi reports. */
  id: string;
  name: string;
}

/**
 * The host's GPUs: KEEL_GPUS (`0,1,3`, or `none`) when set, so a host can keep some for other
 * work; else whatever `nvidia-smi` lists; else none (a CPU-only host).
 */
export function detectGpus(env: NodeJS.ProcessEnv = process.env): GpuDevice[] {
  const configured = env.KEEL_GPUS?.trim();
  if (configured === 'none' || configured === '') return [];
  if (configured) return configured.split(',').map((id) => ({ id: id.trim(), name: 'configured by KEEL_GPUS' }));
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=index,name', '--format=csv,noheader'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 10_000,
    });
    return out
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [id = '', ...name] = line.split(',');
        return { id: id.trim(), name: name.join(',').trim() };
      });
  } catch {
    return []; // no driver, no GPUs
  }
}

export interface GpuLease {
  devices: string[];
  release(): void;
}

export class GpuSlots {
  readonly devices: readonly GpuDevice[];
  readonly #free: string[];
  readonly #waiting: { count: number; grant: (devices: string[]) => void }[] = [];

  constructor(devices: GpuDevice[]) {
    this.devices = devices;
    this.#free = devices.map((d) => d.id);
  }

  get freeCount(): number {
    return this.#free.length;
  }

  /** Waits for `count` devices (0 returns at once). Aborting the signal gives up the place in line. */
  acquire(count: number, signal?: AbortSignal): Promise<GpuLease> {
    if (count > this.devices.length) {
      return Promise.reject(
        new GpuCapacityError(
          `the job needs ${count} GPU(s) and this host has ${this.devices.length}` +
            ' (set gpus lower, or run it on a queue served by bigger hosts)',
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        count,
        grant: (devices: string[]) => {
          signal?.removeEventListener('abort', giveUp);
          resolve(this.#lease(devices));
        },
      };
      const giveUp = () => {
        const index = this.#waiting.indexOf(waiter);
        if (index >= 0) this.#waiting.splice(index, 1);
        reject(signal?.reason ?? new Error('aborted'));
      };
      if (signal?.aborted) return giveUp();
      signal?.addEventListener('abort', giveUp, { once: true });
      this.#waiting.push(waiter);
      this.#grant();
    });
  }

  #lease(devices: string[]): GpuLease {
    let released = false;
    return {
      devices,
      release: () => {
        if (released) return;
        released = true;
        this.#free.push(...devices);
        this.#free.sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
        this.#grant();
      },
    };
  }

  /** Strict FIFO: a big request at the head is not overtaken by small ones (no starvation). */
  #grant(): void {
    while (this.#waiting.length > 0 && (this.#waiting[0]?.count ?? 0) <= this.#free.length) {
      const waiter = this.#waiting.shift();
      waiter?.grant(this.#free.splice(0, waiter.count));
    }
  }
}
