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
      const raw = JSON.parse(l) as TrainerRun; // times in seconds, as Python's time.time() gives them
      return { ...raw, start: raw.start * 1000, imported: raw.imported * 1000, end: raw.end * 1000 };
    });
}

/**
 * Slot idle time between trials. Trainer starts in order: the first `concurrency` fill the slots;
 * each later one takes over the slot of the oldest trainer end before it that no earlier start
 * has taken (first freed, first refilled: the study launches in the order it hears of the ends),
 * and the gap between them is that slot's idle time. Each end is taken once, so two trials ending
 * together free two slots. (Taking the most recent free end instead would leave an early end
 * untaken behind later ones and count it, seconds later, as one huge gap.) A start with no free end
 * before it (the limit was exceeded) is measured from the latest end before it.
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
    const end = free.shift() ?? latestEnd;
    if (end !== null) gaps.push(e.at - end);
  }
  return gaps;
}

/** The simpler measure: each start after the first `concurrency` minus the latest end before it
 *  (a lower bound: a slot freed earlier that waited longer is not seen). */
export function gapsToLatestEnd(runs: TrainerRun[], concurrency: number): number[] {
  const ends = runs.map((r) => r.end).sort((a, b) => a - b);
  return runs
    .map((r) => r.start)
    .sort((a, b) => a - b)
    .slice(concurrency)
    .map((start) => {
      const before = ends.filter((e) => e <= start);
      return before.length > 0 ? start - (before[before.length - 1] as number) : Number.NaN;
    })
    .filter((g) => !Number.isNaN(g));
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

// temporal.api.enums.v1.WorkflowTaskFailedCause, the ones a worker meets (the enum is not a
// dependency of bench).
const taskFailedCauses: Record<number, string> = {
  1: 'UNHANDLED_COMMAND',
  13: 'RESET_STICKY_TASK_QUEUE',
  14: 'WORKFLOW_WORKER_UNHANDLED_FAILURE',
  19: 'BAD_SIGNAL_INPUT_SIZE',
  24: 'NON_DETERMINISTIC_ERROR',
  26: 'PENDING_CHILD_WORKFLOWS_LIMIT_EXCEEDED',
  28: 'PENDING_SIGNALS_LIMIT_EXCEEDED',
  36: 'GRPC_MESSAGE_TOO_LARGE',
};

export interface ActivityTimes {
  name: string;
  /** The activity's first argument. */
  arg: unknown;
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
  /** Children the server started: child workflow id -> when the parent's history heard of it. */
  childrenStarted: Map<string, number>;
  /** Signals received: name, when, the first argument. */
  signals: { name: string; at: number; arg: unknown }[];
  /** Signals sent to other workflows: name, when the command was recorded. */
  signalsSent: { name: string; at: number }[];
  /** Local activities (markers): name -> how many. */
  localActivities: Record<string, number>;
  /** Failed workflow tasks: when, and the cause Temporal gives. */
  workflowTaskFailures: { at: number; cause: string }[];
}

export function historyTimes(history: History): HistoryTimes {
  const out: HistoryTimes = {
    started: Number.NaN,
    closed: null,
    activities: [],
    workflowTasks: [],
    childrenInitiated: new Map(),
    childrenStarted: new Map(),
    signals: [],
    signalsSent: [],
    localActivities: {},
    workflowTaskFailures: [],
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
        arg: decodeFirst(scheduled.input?.payloads),
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
    const tFailed = event.workflowTaskFailedEventAttributes;
    if (tFailed) {
      const cause = String(tFailed.cause ?? '?');
      out.workflowTaskFailures.push({ at, cause: taskFailedCauses[Number(cause)] ?? cause });
    }
    const tDone = event.workflowTaskCompletedEventAttributes;
    if (tDone) {
      const t = tasks.get(String(tDone.scheduledEventId));
      if (t) t.completed = at;
    }
    const child = event.startChildWorkflowExecutionInitiatedEventAttributes;
    if (child?.workflowId) out.childrenInitiated.set(child.workflowId, at);
    const childStarted = event.childWorkflowExecutionStartedEventAttributes?.workflowExecution?.workflowId;
    if (childStarted) out.childrenStarted.set(childStarted, at);
    const signaled = event.workflowExecutionSignaledEventAttributes;
    if (signaled)
      out.signals.push({ name: signaled.signalName ?? '?', at, arg: decodeFirst(signaled.input?.payloads) });
    const marker = event.markerRecordedEventAttributes;
    if (marker?.markerName === 'core_local_activity') {
      const data = decodeFirst(marker.details?.data?.payloads) as { activity_type?: string } | undefined;
      const type = data?.activity_type ?? '?';
      out.localActivities[type] = (out.localActivities[type] ?? 0) + 1;
    }
    const sent = event.signalExternalWorkflowExecutionInitiatedEventAttributes;
    if (sent) out.signalsSent.push({ name: sent.signalName ?? '?', at });
  }
  return out;
}

/** The milestones of one slot handover, in causal order: trial A's trainer ends, the study hears
 *  of it and launches trial B into the freed slot, B's trainer starts. Those marked optional are
 *  activities that keel may run as local activities (inside a workflow task, no event of their
 *  own); when one is absent, the next segment takes its time. */
export const milestones = [
  { name: 'trainerEnd', optional: false, label: "A's trainer ends (its last line)" },
  { name: 'runTrainerDone', optional: false, label: "→ A's runTrainer completed (exit, socket close, last report)" },
  { name: 'finishJobScheduled', optional: true, label: "→ A's finishJob scheduled (A's workflow task)" },
  { name: 'finishJobDone', optional: true, label: "→ A's finishJob completed (activity)" },
  { name: 'endSignalSent', optional: false, label: "→ A's trialEnded signal sent (A's workflow task)" },
  { name: 'studySignaled', optional: false, label: "→ in the study's history" },
  { name: 'studyTaskStarted', optional: false, label: '→ the next study workflow task started' },
  { name: 'endTrialScheduled', optional: true, label: "→ A's endTrial scheduled" },
  { name: 'endTrialDone', optional: true, label: "→ A's endTrial completed (activity)" },
  { name: 'startTrialScheduled', optional: true, label: "→ B's startTrial scheduled (launches, ends ahead of B)" },
  { name: 'startTrialDone', optional: true, label: "→ B's startTrial completed (activity)" },
  { name: 'startChild', optional: false, label: "→ B's startChild recorded (study workflow task completed)" },
  { name: 'childStarted', optional: false, label: "→ B's workflow started" },
  { name: 'childTaskStarted', optional: false, label: "→ B's first workflow task started" },
  { name: 'startJobScheduled', optional: true, label: "→ B's startJob scheduled" },
  { name: 'startJobDone', optional: true, label: "→ B's startJob completed (activity)" },
  { name: 'runTrainerScheduled', optional: false, label: "→ B's runTrainer scheduled (B's workflow task)" },
  { name: 'runTrainerStarted', optional: false, label: "→ B's runTrainer picked up by the worker" },
  { name: 'trainerStart', optional: false, label: "→ B's trainer's first line (spawn, Python start-up)" },
] as const;
export type MilestoneName = (typeof milestones)[number]['name'];
/** Segments are named by the milestone they end at (every milestone but the first). */
export const segmentNames = milestones.slice(1).map((m) => m.name) as MilestoneName[];
export const segmentLabels = Object.fromEntries(milestones.map((m) => [m.name, m.label])) as Record<
  MilestoneName,
  string
>;

export interface Handover {
  from: string;
  to: string;
  /** ms since the previous milestone that was seen; NaN where the milestone was not (a local activity). */
  segments: Partial<Record<MilestoneName, number>>;
  /** B's trainer start minus A's trainer end. */
  total: number;
  /** Study workflow tasks between A's end signal and B's launch. */
  studyWorkflowTasks: number;
}

const arg = (a: ActivityTimes) => (a.arg ?? {}) as { number?: number; jobId?: string };
const firstTaskStartedAfter = (h: HistoryTimes, at: number) =>
  h.workflowTasks.find((t) => t.started !== null && t.started >= at)?.started ?? undefined;

/**
 * Each launch after the first `concurrency` is caused by a trial's end: launch c + k by the k-th
 * end the study received. For each, the chain from A's trainer end to B's trainer start, split at
 * the events of A's, the study's and B's histories (activities matched by their arguments).
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
    const ended = end.arg as { jobId?: string; trialNumber?: number } | undefined;
    const fromJob = ended?.jobId;
    if (!fromJob) continue;
    const a = jobs.get(fromJob);
    const b = jobs.get(toJob);
    const runA = runs.get(fromJob);
    const runB = runs.get(toJob);
    if (!a || !b || !runA || !runB) continue;
    const aTrainer = a.activities.find((x) => x.name === 'runTrainer');
    const aFinish = a.activities.find((x) => x.name === 'finishJob');
    const endTrial = study.activities.find(
      (x) => x.name === 'endTrial' && arg(x).number === ended.trialNumber && x.scheduled >= end.at,
    );
    const startTrial = study.activities.find((x) => x.name === 'startTrial' && arg(x).jobId === toJob);
    const bStartJob = b.activities.find((x) => x.name === 'startJob');
    const bTrainer = b.activities.find((x) => x.name === 'runTrainer');
    const at: Record<MilestoneName, number | null | undefined> = {
      trainerEnd: runA.end,
      runTrainerDone: aTrainer?.completed,
      finishJobScheduled: aFinish?.scheduled,
      finishJobDone: aFinish?.completed,
      endSignalSent: a.signalsSent.find((x) => x.name === trialEndedSignal)?.at,
      studySignaled: end.at,
      studyTaskStarted: firstTaskStartedAfter(study, end.at),
      endTrialScheduled: endTrial?.scheduled,
      endTrialDone: endTrial?.completed,
      startTrialScheduled: startTrial?.scheduled,
      startTrialDone: startTrial?.completed,
      startChild: launchedAt,
      childStarted: b.started,
      childTaskStarted: firstTaskStartedAfter(b, b.started),
      startJobScheduled: bStartJob?.scheduled,
      startJobDone: bStartJob?.completed,
      runTrainerScheduled: bTrainer?.scheduled,
      runTrainerStarted: bTrainer?.started,
      trainerStart: runB.start,
    };
    const seen = (v: number | null | undefined): v is number => typeof v === 'number' && !Number.isNaN(v);
    if (milestones.some((m) => !m.optional && !seen(at[m.name]))) continue;
    const segments: Partial<Record<MilestoneName, number>> = {};
    let previous = runA.end;
    for (const m of milestones.slice(1)) {
      const value = at[m.name];
      if (!seen(value)) {
        segments[m.name] = Number.NaN;
        continue;
      }
      segments[m.name] = value - previous;
      previous = value;
    }
    out.push({
      from: fromJob,
      to: toJob,
      segments,
      total: runB.start - runA.end,
      studyWorkflowTasks: study.workflowTasks.filter((t) => t.scheduled >= end.at && t.scheduled <= launchedAt).length,
    });
  }
  return out;
}

/** The study's launch burst at its start (its first `concurrency` launches, with nothing else to
 *  do): the interval between consecutive launches and, where startTrial is a regular activity,
 *  its parts. */
export const burstSegmentNames = [
  'childStartedHeard',
  'studyTaskToStartTrial',
  'startTrial',
  'studyTaskToStartChild',
] as const;
export type BurstSegmentName = (typeof burstSegmentNames)[number];
export const burstSegmentLabels: Record<BurstSegmentName, string> = {
  childStartedHeard: "startChild recorded → child started, in the study's history",
  studyTaskToStartTrial: "→ the next trial's startTrial scheduled (study workflow task)",
  startTrial: '→ startTrial completed (activity)',
  studyTaskToStartChild: '→ its startChild recorded (study workflow task)',
};

export function launchBurst(
  concurrency: number,
  study: HistoryTimes,
): { intervals: number[]; segments: Record<BurstSegmentName, number[]> } {
  const launches = [...study.childrenInitiated.entries()].sort((a, b) => a[1] - b[1]).slice(0, concurrency);
  const segments = Object.fromEntries(burstSegmentNames.map((n) => [n, [] as number[]])) as Record<
    BurstSegmentName,
    number[]
  >;
  const intervals: number[] = [];
  for (let i = 1; i < launches.length; i++) {
    const [prevJob, prevAt] = launches[i - 1] as [string, number];
    const [job, at] = launches[i] as [string, number];
    intervals.push(at - prevAt);
    const heard = study.childrenStarted.get(prevJob);
    const startTrial = study.activities.find((x) => x.name === 'startTrial' && arg(x).jobId === job);
    if (heard === undefined || !startTrial?.completed || startTrial.scheduled < heard) continue;
    segments.childStartedHeard.push(heard - prevAt);
    segments.studyTaskToStartTrial.push(startTrial.scheduled - heard);
    segments.startTrial.push(startTrial.completed - startTrial.scheduled);
    segments.studyTaskToStartChild.push(at - startTrial.completed);
  }
  return { intervals, segments };
}

/** How busy the study's own workflow was: its workflow tasks and the signals that caused them. */
export function studyLoad(study: HistoryTimes) {
  const duration = (study.closed ?? Number.NaN) - study.started;
  const busy = study.workflowTasks.reduce((sum, t) => sum + (t.completed !== null ? t.completed - t.scheduled : 0), 0);
  const signals: Record<string, number> = {};
  for (const s of study.signals) signals[s.name] = (signals[s.name] ?? 0) + 1;
  return {
    workflowTasks: study.workflowTasks.length,
    signals,
    /** Share of the study's life with a workflow task scheduled or running (they run one at a time). */
    busyFraction: duration > 0 ? busy / duration : Number.NaN,
  };
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
