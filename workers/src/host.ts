// What a worker host offers the fleet: its name, its GPU class (and so the queue it takes trainer
// launches from) and its GPUs, from KEEL_GPUS or nvidia-smi (detectGpus, the same list the GPU
// slots hand out). `keel worker --check`, the worker's start line, /healthz and the
// keel_worker_info metric all print this one description.
import { detectGpus, type GpuDevice } from '@keel/activities/trainer';
import { gpuClassPattern } from '@keel/workflows/task-queues';

export interface HostInventory {
  hostId: string;
  /** KEEL_GPU_CLASS, or null: the host takes the jobs that name no class. */
  gpuClass: string | null;
  /** Where this host takes trainer launches from. */
  gpuTaskQueue: string;
  gpus: GpuDevice[];
  /** Where the list came from: KEEL_GPUS, nvidia-smi, or neither (a CPU-only host). */
  gpuSource: 'KEEL_GPUS' | 'nvidia-smi' | 'none';
  /** The distinct GPU models nvidia-smi names (none when KEEL_GPUS lists the devices). */
  models: string[];
  /** The class the models suggest (`h100` for "NVIDIA H100 80GB HBM3"), to name in KEEL_GPU_CLASS. */
  suggestedClass: string | null;
  /** How many trainer launches the host takes from its queue at once (KEEL_TRAINER_SLOTS, else one
   *  per GPU): a busy host leaves the next job to a host with a free GPU instead of holding it
   *  while it waits. Null: no limit (a CPU-only host without KEEL_TRAINER_SLOTS). */
  trainerSlots: number | null;
  /** Whether KEEL_TRAINER_SLOTS set trainerSlots. */
  trainerSlotsConfigured: boolean;
}

export function describeHost(
  config: { hostId?: string; hostTaskQueue: string; gpuClass?: string; gpuTaskQueue: string; trainerSlots?: number },
  env: NodeJS.ProcessEnv = process.env,
  gpus: GpuDevice[] = detectGpus(env),
): HostInventory {
  const configured = env.KEEL_GPUS?.trim() !== undefined && env.KEEL_GPUS?.trim() !== '';
  const models = configured ? [] : [...new Set(gpus.map((g) => g.name).filter(Boolean))];
  const suggested = models.map(gpuClassOfModel).find((c) => c !== undefined);
  return {
    hostId: config.hostId ?? config.hostTaskQueue,
    gpuClass: config.gpuClass ?? null,
    gpuTaskQueue: config.gpuTaskQueue,
    gpus,
    gpuSource: configured ? 'KEEL_GPUS' : gpus.length > 0 ? 'nvidia-smi' : 'none',
    models,
    suggestedClass: suggested ?? null,
    trainerSlots: config.trainerSlots ?? (gpus.length > 0 ? gpus.length : null),
    trainerSlotsConfigured: config.trainerSlots !== undefined,
  };
}

/**
 * A GPU class name from nvidia-smi's model name: the model's first word without the vendor and
 * the form factor ("NVIDIA A100-SXM4-80GB" → a100, "NVIDIA H100 80GB HBM3" → h100, "Tesla T4" →
 * t4, "NVIDIA GeForce RTX 4090" → rtx-4090). Only a suggestion: classes are what a fleet's jobs
 * ask for, and a fleet may split one model by memory (a100-40gb, a100-80gb).
 */
export function gpuClassOfModel(model: string): string | undefined {
  const words = model
    .toLowerCase()
    .replace(/\b(nvidia|tesla|geforce|quadro)\b/g, ' ')
    .split(/[\s_]+/)
    .filter(Boolean);
  const [first, second] = words.map((w) => w.split('-')[0] as string);
  if (!first) return undefined;
  const name = (first === 'rtx' || first === 'gtx') && second ? `${first}-${second}` : first;
  return gpuClassPattern.test(name) ? name : undefined;
}

/** One line for people: how many trainers the host runs at once, and why. */
export function describeSlots(host: HostInventory): string {
  if (host.trainerSlots === null) return 'no limit (a CPU-only host; KEEL_TRAINER_SLOTS=N sets one)';
  const why = host.trainerSlotsConfigured ? 'KEEL_TRAINER_SLOTS' : 'one per GPU';
  return `${host.trainerSlots} trainer(s) at once (${why}); more jobs wait in the queue for any host with a free slot`;
}

/** One line for people: the GPUs and what the class means for which jobs this host takes. */
export function describeGpus(host: HostInventory): string {
  const list =
    host.gpus.length === 0
      ? 'none: a CPU-only host (jobs asking for GPUs fail here; beside GPU hosts, give it a class of its own, e.g. KEEL_GPU_CLASS=cpu)'
      : `${host.gpus.length}: ${host.gpus.map((g) => `${g.id} (${g.name})`).join(', ')}`;
  if (host.gpuClass) {
    return `${list}; GPU class ${host.gpuClass}: takes jobs with gpuClass '${host.gpuClass}' from task queue ${host.gpuTaskQueue}`;
  }
  const hint = host.suggestedClass
    ? `; these look like class '${host.suggestedClass}' (KEEL_GPU_CLASS=${host.suggestedClass} would take jobs with gpuClass '${host.suggestedClass}' instead)`
    : '';
  return `${list}; no GPU class: takes jobs without gpuClass from task queue ${host.gpuTaskQueue}${hint}`;
}
