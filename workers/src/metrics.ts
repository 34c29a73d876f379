// keel's own Prometheus metrics, one registry per worker (several workers in one process, as in
// the tests, never collide), every series labelled with the host. The job activities count into
// `job` (ActivityDeps.metrics); GPU slots and trainers are read when scraped.
import type { ActivityDeps } from '@keel/activities';
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { HostInventory } from './host.ts';

export type JobMetrics = NonNullable<ActivityDeps['metrics']>;

export interface KeelMetrics {
  registry: Registry;
  /** What the job activities count (ActivityDeps.metrics). */
  job: JobMetrics;
}

export function createKeelMetrics(
  deps: Pick<ActivityDeps, 'gpuSlots' | 'trainers'>,
  host: Pick<HostInventory, 'hostId' | 'gpuClass' | 'gpuTaskQueue' | 'models'>,
): KeelMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ host: host.hostId });
  const registers = [registry];
  // The info-metric idiom: constant 1, the facts in labels, for joins and dashboards by class.
  new Gauge({
    name: 'keel_worker_info',
    help: "This worker's GPU class (KEEL_GPU_CLASS, empty for none), launch queue and GPU models",
    labelNames: ['gpu_class', 'gpu_task_queue', 'gpu_models'],
    registers,
  }).set({ gpu_class: host.gpuClass ?? '', gpu_task_queue: host.gpuTaskQueue, gpu_models: host.models.join(',') }, 1);
  const pendingUploads = new Set<string>();
  const { gpuSlots, trainers } = deps;
  new Gauge({
    name: 'keel_gpu_slots',
    help: 'GPUs this worker may hand out (KEEL_GPUS, else nvidia-smi)',
    registers,
    collect() {
      this.set(gpuSlots.devices.length);
    },
  });
  new Gauge({
    name: 'keel_gpu_slots_busy',
    help: 'GPUs leased to running attempts',
    registers,
    collect() {
      this.set(gpuSlots.devices.length - gpuSlots.freeCount);
    },
  });
  new Gauge({
    name: 'keel_trainers_running',
    help: 'Trainer processes this worker runs',
    registers,
    collect() {
      this.set(trainers.size);
    },
  });
  new Gauge({
    name: 'keel_uploads_pending',
    help: 'Checkpoints staged on this host whose upload has not finished (queued or in flight)',
    registers,
    collect() {
      this.set(pendingUploads.size);
    },
  });
  const job: JobMetrics = {
    pendingUploads,
    uploadsInFlight: new Gauge({
      name: 'keel_uploads_in_flight',
      help: 'Checkpoint uploads running now',
      registers,
    }),
    uploadsFailed: new Counter({
      name: 'keel_uploads_failed_total',
      help: 'Checkpoint upload attempts that failed (each retry counts)',
      registers,
    }),
    uploadBytes: new Counter({
      name: 'keel_upload_bytes_total',
      help: 'Bytes of checkpoint files put into storage (files a retry found stored are not counted)',
      registers,
    }),
    checkpointsStaged: new Counter({
      name: 'keel_checkpoints_staged_total',
      help: 'Checkpoints staged on this host and handed to their job',
      registers,
    }),
    resumes: new Counter({
      name: 'keel_resumes_total',
      help: 'Attempts that restored a committed checkpoint',
      registers,
    }),
  };
  return { registry, job };
}

/** Adds Node's process metrics (memory, CPU, event loop lag) to a registry that is served. */
export function addProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
}
