// The study-throughput benchmark's arithmetic, apart from any server: slot idle time from the
// trainers' own timestamps, and where each slot handover's time went, from the study's and the
// trials' workflow histories.
import type { connectClient } from '@keel/client';

type Client = Awaited<ReturnType<typeof connectClient>>;
export type History = Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['fetchHistory']>>;
type HistoryEvent = NonNullable<History['events']>[number];

/** One trainer run, as the trainer logged it (epoch ms). */
export interface TrainerRun {
  job: string;
  pid: number;
  /** The trainer script's first line (the interpreter's start-up before it is not included). */
  start: number;
  /** After keel_sdk and the standard modules were imported. */
  imported: number;
  /** After done() returned, just before exit. */
  end: number;
  /** CPU seconds the trainer used (user + system). */
  cpu: number;
}

/** Parses the trainer's log (one JSON line per run, times in epoch seconds). */
export function parseTrainerLog(text: string): TrainerRun[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      const raw = JSON.parse(l) as {
        job: string;
        pid: number;
        start: number;
        imported: number;
        end: number;
        cpu: number;
      };
      return {
        job: raw.job,
        pid: raw.pid,
        start: raw.start * 1000,
        imported: raw.imported * 1000,
        end: raw.end * 1000,
        cpu: raw.cpu,
      };
    });
}

/** Nearest-rank percentile (p in 0..1). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] as number;
}

/**
 * Slot idle time between trials: trainer starts in order; the first `concurrency` fill the slots,
 * and each later one takes over the slot of the most recent trainer end before it that no
 * earlier start has taken (so two trials ending together free two slots, and each gap is counted
 * once). The gap is that start minus that end. A start with no free end before it (the limit was
 * exceeded) is measured from the latest end before it.
 */
export function slotGaps(runs: TrainerRun[], concurrency: number): number[] {
  const events = [
    ...runs.map((r) => ({ at: r.end, kind: 'end' as const })),
    ...runs.map((r) => ({ at: r.start, kind: 'start' as const })),
  ].sort((a, b) => a.at - b.at || (a.kind === 'end' ? -1 : 1));
  const free: number[] = [];
  const gaps: number[] = [];
  let starts = 0;
  let latestEnd: number | null = null;
  for (const e of events) {
    if (e.kind === 'end') {
      free.push(e.at);
      latestEnd = e.at;
      continue;
    }
    starts += 1;
    if (starts <= concurrency) continue;
    const end = free.pop() ?? latestEnd;
    if (end !== null) gaps.push(e.at - end);
  }
  return gaps;
}

/** The most trainers that ran at once. */
export function peakOverlap(runs: TrainerRun[]): number {
  const events = runs.flatMap((r) => [
    [r.start, 1],
    [r.end, -1],
  ]) as [number, number][];
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let peak = 0;
  for (const [, delta] of events) {
    now += delta;
    peak = Math.max(peak, now);
  }
  return peak;
}

// ---- workflow histories ----

export function eventMs(event: HistoryEvent): number {
  const t = event.eventTime;
  if (!t) return Number.NaN;
  const s = t.seconds as { toNumber?: () => number } | number | null | undefined;
  const seconds = typeof s === 'number' ? s : (s?.toNumber?.() ?? Number(s));
  return seconds * 1000 + (t.nanos ?? 0) / 1e6;
}

function decodeFirst(payloads: { data?: Uint8Array | null }[] | null | undefined): unknown {
  const data = payloads?.[0]?.data;
  if (!data) return undefined;
  try {
    return JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    return undefined;
  }
}

export interface ActivityTimes {
  name: string;
  scheduled: number;
  started: number | null;
  completed: number | null;
}

export interface WorkflowTaskTimes {
  scheduled: number;
  started: number | null;
  completed: number | null;
}

/** The times a history holds that the benchmark uses. */
export interface HistoryTimes {
  started: number;
  closed: number | null;
  activities: ActivityTimes[];
  workflowTasks: WorkflowTaskTimes[];
  /** startChild commands: child workflow id -> when the command was recorded. */
  childrenInitiated: Map<string, number>;
  /** Signals received: name, when, the first argument. */
  signals: { name: string; at: number; arg: unknown }[];
  /** Signals sent to other workflows: name, when the command was recorded. */
  signalsSent: { name: string; at: number }[];
}

export function historyTimes(history: History): HistoryTimes {
  const out: HistoryTimes = {
    started: Number.NaN,
    closed: null,
    activities: [],
    workflowTasks: [],
    childrenInitiated: new Map(),
    signals: [],
    signalsSent: [],
  };
  const activities = new Map<string, ActivityTimes>();
  const tasks = new Map<string, WorkflowTaskTimes>();
  for (const event of history.events ?? []) {
    const at = eventMs(event);
    const id = String(event.eventId);
    if (event.workflowExecutionStartedEventAttributes) out.started = at;
    if (
      event.workflowExecutionCompletedEventAttributes ||
      event.workflowExecutionFailedEventAttributes ||
      event.workflowExecutionContinuedAsNewEventAttributes
    ) {
      out.closed = at;
    }
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) {
      const a: ActivityTimes = {
        name: scheduled.activityType?.name ?? '?',
        scheduled: at,
        started: null,
        completed: null,
      };
      activities.set(id, a);
      out.activities.push(a);
    }
    const aStarted = event.activityTaskStartedEventAttributes;
    if (aStarted) {
      const a = activities.get(String(aStarted.scheduledEventId));
      if (a) a.started = at;
    }
    const aDone =
      event.activityTaskCompletedEventAttributes ??
      event.activityTaskFailedEventAttributes ??
      event.activityTaskTimedOutEventAttributes ??
      event.activityTaskCanceledEventAttributes;
    if (aDone) {
      const a = activities.get(String(aDone.scheduledEventId));
      if (a) a.completed = at;
    }
    if (event.workflowTaskScheduledEventAttributes) {
      const t: WorkflowTaskTimes = { scheduled: at, started: null, completed: null };
      tasks.set(id, t);
      out.workflowTasks.push(t);
    }
    const tStarted = event.workflowTaskStartedEventAttributes;
    if (tStarted) {
      const t = tasks.get(String(tStarted.scheduledEventId));
      if (t) t.started = at;
    }
    const tDone = event.workflowTaskCompletedEventAttributes;
    if (tDone) {
      const t = tasks.get(String(tDone.scheduledEventId));
      if (t) t.completed = at;
    }
    const child = event.startChildWorkflowExecutionInitiatedEventAttributes;
    if (child?.workflowId) out.childrenInitiated.set(child.workflowId, at);
    const signaled = event.workflowExecutionSignaledEventAttributes;
    if (signaled)
      out.signals.push({ name: signaled.signalName ?? '?', at, arg: decodeFirst(signaled.input?.payloads) });
    const sent = event.signalExternalWorkflowExecutionInitiatedEventAttributes;
    if (sent) out.signalsSent.push({ name: sent.signalName ?? '?', at });
  }
  return out;
}

/** The segments of one slot handover, in ms, in causal order (trial A ends, trial B starts). */
export const segmentNames = [
  'trainerExit',
  'jobWrapUp',
  'signalDelivery',
  'studyLaunch',
  'childStart',
  'jobStart',
  'runTrainerPickUp',
  'trainerLaunch',
] as const;
export type SegmentName = (typeof segmentNames)[number];

export const segmentLabels: Record<SegmentName, string> = {
  trainerExit: "A's trainer end → A's runTrainer completed",
  jobWrapUp: "→ A's trialEnded signal sent (workflow tasks, finishJob)",
  signalDelivery: '→ the study has the signal',
  studyLaunch: "→ B's startChild recorded (workflow tasks, endTrial, startTrial)",
  childStart: "→ B's workflow started",
  jobStart: "→ B's runTrainer scheduled (workflow task, startJob)",
  runTrainerPickUp: "→ B's runTrainer picked up by the worker",
  trainerLaunch: "→ B's trainer script's first line (spawn, Python start-up)",
};

export interface Handover {
  from: string;
  to: string;
  segments: Record<SegmentName, number>;
  total: number;
  /** Activity durations inside the segments (scheduled → completed). */
  finishJob: number | null;
  endTrial: number | null;
  startTrial: number | null;
  startJob: number | null;
  /** Study workflow tasks between the end signal and B's launch. */
  studyWorkflowTasks: number;
}

const activityIn = (h: HistoryTimes, name: string, from: number, to: number) =>
  h.activities.filter((a) => a.name === name && a.scheduled >= from && a.scheduled <= to && a.completed !== null);

const activityDuration = (list: ActivityTimes[]) =>
  list.length === 0 ? null : list.reduce((sum, a) => sum + ((a.completed as number) - a.scheduled), 0);

/**
 * Each launch after the first `concurrency` is caused by a trial's end: launch number c + k by the
 * k-th end the study received. For each, the chain from A's trainer end to B's trainer start.
 */
export function handovers(
  concurrency: number,
  study: HistoryTimes,
  jobs: Map<string, HistoryTimes>,
  runs: Map<string, TrainerRun>,
  trialEndedSignal: string,
): Handover[] {
  const launches = [...study.childrenInitiated.entries()].sort((a, b) => a[1] - b[1]);
  const ends = study.signals.filter((s) => s.name === trialEndedSignal).sort((a, b) => a.at - b.at);
  const out: Handover[] = [];
  for (let k = 0; k + concurrency < launches.length && k < ends.length; k++) {
    const end = ends[k] as (typeof ends)[number];
    const [toJob, launchedAt] = launches[k + concurrency] as [string, number];
    const fromJob = (end.arg as { jobId?: string } | undefined)?.jobId;
    if (!fromJob) continue;
    const a = jobs.get(fromJob);
    const b = jobs.get(toJob);
    const runA = runs.get(fromJob);
    const runB = runs.get(toJob);
    if (!a || !b || !runA || !runB) continue;
    const aTrainer = a.activities.find((x) => x.name === 'runTrainer');
    const bTrainer = b.activities.find((x) => x.name === 'runTrainer');
    const aSignal = a.signalsSent.find((s) => s.name === trialEndedSignal);
    if (!aTrainer?.completed || !bTrainer?.started || !aSignal) continue;
    const points = [
      runA.end,
      aTrainer.completed,
      aSignal.at,
      end.at,
      launchedAt,
      b.started,
      bTrainer.scheduled,
      bTrainer.started,
      runB.start,
    ];
    const segments = Object.fromEntries(
      segmentNames.map((name, i) => [name, (points[i + 1] as number) - (points[i] as number)]),
    ) as Record<SegmentName, number>;
    out.push({
      from: fromJob,
      to: toJob,
      segments,
      total: runB.start - runA.end,
      finishJob: activityDuration(activityIn(a, 'finishJob', aTrainer.completed, aSignal.at)),
      endTrial: activityDuration(activityIn(study, 'endTrial', end.at, launchedAt)),
      startTrial: activityDuration(activityIn(study, 'startTrial', end.at, launchedAt)),
      startJob: activityDuration(activityIn(b, 'startJob', b.started, bTrainer.scheduled)),
      studyWorkflowTasks: study.workflowTasks.filter((t) => t.scheduled >= end.at && t.scheduled <= launchedAt).length,
    });
  }
  return out;
}

/** Workflow task latencies over histories: scheduled → started (queue) and started → completed (worker). */
export function workflowTaskLatencies(histories: HistoryTimes[]): { queue: number[]; worker: number[] } {
  const queue: number[] = [];
  const worker: number[] = [];
  for (const h of histories) {
    for (const t of h.workflowTasks) {
      if (t.started !== null) queue.push(t.started - t.scheduled);
      if (t.started !== null && t.completed !== null) worker.push(t.completed - t.started);
    }
  }
  return { queue, worker };
}

/** Activity latencies by name: scheduled → started (queue) and started → completed (run). */
export function activityLatencies(histories: HistoryTimes[]): Map<string, { queue: number[]; run: number[] }> {
  const out = new Map<string, { queue: number[]; run: number[] }>();
  for (const h of histories) {
    for (const a of h.activities) {
      const entry = out.get(a.name) ?? { queue: [], run: [] };
      out.set(a.name, entry);
      if (a.started !== null) entry.queue.push(a.started - a.scheduled);
      if (a.started !== null && a.completed !== null) entry.run.push(a.completed - a.started);
    }
  }
  return out;
}
