// hpoStudy: a hyperparameter search. Each trial is a child trainingJob (so it inherits background
// uploads and automatic resume), started with ParentClosePolicy ABANDON so the study can continue
// as new while trials run; trials report their objective values (from runTrainer) and their end
// (from trainingJob) by signal, to the study's workflow id, which survives continue-as-new.
//
// Signal and update handlers only change state; the main loop does everything with side effects
// (launching, stopping, recording), so the order of events in history is the order of decisions.
import type { KeelActivities } from '@keel/activities';
import {
  type TrialEnded,
  type TrialReport,
  trialEndedSignalName,
  trialReportSignalName,
} from '@keel/activities/contract';
import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  getExternalWorkflowHandle,
  ParentClosePolicy,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { createPruner, createSampler, type Direction, type Params, type TrialView } from './hpo/index.ts';
import { parseOrFail } from './parse-or-fail.ts';
import { KeelBestValue, KeelKind, KeelStatus, KeelStudy, KeelTrialsDone } from './search-attributes.ts';
import { maxConcurrencySchema, parseStudySpec, type StudySpec, type StudySpecInput } from './specs/index.ts';
import { stopSignal, trainingJob } from './training-job.ts';

export type { StudySpec, StudySpecInput } from './specs/index.ts';

export type TrialStatus = 'pending' | 'running' | 'completed' | 'pruned' | 'failed' | 'stopped';
export type StudyStatus = 'running' | 'paused' | 'stopping' | 'completed' | 'stopped' | 'failed';

/** One trial as the study keeps it (and carries across continue-as-new). */
export interface TrialRecord {
  number: number;
  params: Params;
  state: TrialStatus;
  value: number | null;
  /** [step, objective value], ascending. */
  intermediate: [number, number][];
  jobId: string;
  /** Runs started (2 and more: retries after failures). */
  runs: number;
  startedAtMs: number | null;
  endedAtMs: number | null;
  error: string | null;
  /** The study asked the trial's job to stop, and why (pruned, timeout, study stopped). */
  stopping: 'pruned' | 'timeout' | 'study' | null;
}

/** What a run of the workflow hands to the next one when it continues as new. */
export interface StudyCarry {
  trials: TrialRecord[];
  maxConcurrency: number;
  paused: boolean;
  consecutiveFailures: number;
  stop: { status: 'stopped' | 'failed'; reason: string } | null;
  samplerExhausted: boolean;
  lastLaunchAtMs: number | null;
  runs: number;
  /** Trial ends that arrived while the previous run was handing over. */
  unappliedEnds?: TrialEnded[];
}

export interface StudyProgress {
  studyId: string;
  status: StudyStatus;
  objective: { metric: string; direction: Direction };
  nTrials: number;
  maxConcurrency: number;
  counts: Record<TrialStatus, number>;
  best: { number: number; value: number; params: Params } | null;
  /** Seconds until the last trial ends, from observed trial durations; null until one has ended. */
  etaSeconds: number | null;
  /** Mean seconds a trial took, from the trials that ended; null until one has. */
  meanTrialSeconds: number | null;
  stopReason: string | null;
  /** Workflow runs so far (the study continues as new as its history grows). */
  runs: number;
  trials: {
    number: number;
    state: TrialStatus;
    value: number | null;
    params: Params;
    jobId: string;
    /** The newest step and objective value the trial reported. */
    step: number | null;
    lastValue: number | null;
    startedAtMs: number | null;
    endedAtMs: number | null;
  }[];
}

export interface StudyResult {
  status: 'completed' | 'stopped' | 'failed';
  stopReason: string | null;
  counts: Record<TrialStatus, number>;
  best: { number: number; value: number; params: Params; jobId: string } | null;
}

export const studyProgressQuery = defineQuery<StudyProgress>('progress');
export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');
export const stopStudySignal = defineSignal<[{ reason?: string }?]>('stop');
export const setConcurrencySignal = defineSignal<[{ maxConcurrency: number }]>('setConcurrency');
/** The same controls as updates: the caller gets the study's progress back, or a named error. */
export const pauseUpdate = defineUpdate<StudyProgress>('pause');
export const resumeUpdate = defineUpdate<StudyProgress>('resume');
export const stopStudyUpdate = defineUpdate<StudyProgress, [{ reason?: string }?]>('stop');
export const setConcurrencyUpdate = defineUpdate<StudyProgress, [{ maxConcurrency: number }]>('setConcurrency');

const trialReportSignal = defineSignal<[TrialReport]>(trialReportSignalName);
const trialEndedSignal = defineSignal<[TrialEnded]>(trialEndedSignalName);

// Local activities: a row is a few milliseconds of work, and a study at high concurrency writes
// several a second; a task-queue round trip (and three history events) each would hold it back.
const record = proxyLocalActivities<KeelActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

/** Intermediate values kept per trial in the workflow (all of them are in the database). The
 *  trials travel through continue-as-new, whose payload Temporal limits to a few MB. */
const maxPointsPerTrial = 200;

/**
 * Halves the older half of a trial's values (every other point goes), keeping the first, the
 * newest ones and the steps in between evenly spread: pruners still find a value at or after
 * each early rung, a little later than it was reported at worst.
 */
function thin(points: [number, number][]): void {
  const half = Math.floor(points.length / 2);
  const older = points.slice(0, half).filter((_, i) => i % 2 === 0);
  points.splice(0, half, ...older);
}

export async function hpoStudy(input: StudySpecInput, carried?: StudyCarry): Promise<StudyResult> {
  const spec = parseOrFail(parseStudySpec, input);
  const studyId = workflowInfo().workflowId;
  const direction = spec.objective.direction;
  const state: StudyCarry = carried ?? {
    trials: [],
    maxConcurrency: spec.maxConcurrency,
    paused: false,
    consecutiveFailures: 0,
    stop: null,
    samplerExhausted: false,
    lastLaunchAtMs: null,
    runs: 0,
  };
  state.runs += 1;
  const sampler = createSampler(spec.sampler);
  const pruner = createPruner(spec.pruner);
  const ended: TrialEnded[] = state.unappliedEnds ?? [];
  delete state.unappliedEnds;
  /** Set by every handler: the main loop looks again. */
  let wake = false;

  const running = () => state.trials.filter((t) => t.state === 'running').length;
  const hasWork = () =>
    state.trials.some((t) => t.state === 'pending') || (!state.samplerExhausted && state.trials.length < spec.nTrials);
  /** Set once the study has finished, so queries of the closed workflow say how it ended. */
  let finished: StudyResult['status'] | null = null;
  const progress = () => buildProgress(studyId, spec, state, finished);

  // ---- handlers: they change state and wake the main loop, nothing else ----
  const control =
    <A extends unknown[]>(change: (...args: A) => void) =>
    (...args: A) => {
      change(...args);
      wake = true;
      return progress();
    };
  const pause = control(() => {
    state.paused = true;
  });
  const resume = control(() => {
    state.paused = false;
  });
  const stop = control((request?: { reason?: string }) => {
    state.stop ??= { status: 'stopped', reason: request?.reason ?? 'stopped by request' };
  });
  const setConcurrency = control((request: { maxConcurrency: number }) => {
    state.maxConcurrency = request.maxConcurrency;
  });
  setHandler(studyProgressQuery, progress);
  setHandler(pauseSignal, () => void pause());
  setHandler(resumeSignal, () => void resume());
  setHandler(stopStudySignal, (request) => void stop(request));
  setHandler(setConcurrencySignal, (request) => {
    if (concurrencyProblem(request) === null) setConcurrency(request); // a signal has nobody to answer; the update says why
  });
  setHandler(pauseUpdate, pause);
  setHandler(resumeUpdate, resume);
  setHandler(stopStudyUpdate, stop);
  setHandler(setConcurrencyUpdate, setConcurrency, {
    validator: (request) => {
      const problem = concurrencyProblem(request);
      if (problem) throw new Error(problem);
    },
  });
  setHandler(trialReportSignal, (report) => {
    const trial = state.trials[report.trialNumber]; // numbered in order, from 0
    if (!trial || trial.jobId !== report.jobId || trial.state !== 'running') return; // a stale run
    // Views share the trials' value arrays, so these stay current as the values below arrive.
    const own = view(trial);
    const all = views(state);
    for (const [step, value] of report.points) {
      const last = trial.intermediate[trial.intermediate.length - 1];
      if (last && step <= last[0]) {
        if (step === last[0]) last[1] = value;
        continue;
      }
      trial.intermediate.push([step, value]);
      if (trial.intermediate.length > maxPointsPerTrial) thin(trial.intermediate);
      if (!trial.stopping && !state.stop && pruner.shouldPrune({ direction, trial: own, trials: all })) {
        trial.stopping = 'pruned';
        wake = true;
      }
    }
  });
  setHandler(trialEndedSignal, (end) => {
    ended.push(end);
    wake = true;
  });

  if (!carried) {
    await record.startStudy({ studyId, name: spec.name ?? studyId, spec: input as never, objective: spec.objective });
  }
  upsertSearchAttributes([
    { key: KeelKind, value: 'study' },
    { key: KeelStudy, value: studyId },
  ]);
  const stopsSent = new Set<string>();
  // The ends of the jobs this run started. A job signals its end before its workflow completes, so
  // the study waits for these before completing: a child's completion arriving during the study's
  // last task would make Temporal reject that task and replay the whole history.
  const childrenOfThisRun: Promise<unknown>[] = [];
  let shownStatus: StudyStatus | null = null;

  // ---- the main loop: every side effect happens here, in history's order ----
  for (;;) {
    wake = false;
    await settleEnded(ended.splice(0), state, spec, studyId);
    markTimedOut(spec, state);
    await sendStops(state, stopsSent);
    const status = studyStatus(state);
    if (status !== shownStatus) {
      shownStatus = status;
      upsertSearchAttributes([{ key: KeelStatus, value: status }]);
      if (status !== 'stopping') await record.setStudyStatus({ studyId, status });
    }
    render(progress(), direction);

    if (running() === 0 && (state.stop || !hasWork())) break;
    if (shouldContinueAsNew(spec)) {
      // Handlers are synchronous, so none is midway; ends that arrived since the last look go
      // along with the state and are applied first thing in the next run.
      await condition(allHandlersFinished);
      await continueAsNew<typeof hpoStudy>(input, { ...state, unappliedEnds: ended.splice(0) });
    }
    if (!state.stop && !state.paused && running() < state.maxConcurrency && hasWork()) {
      const wait = launchWait(spec, state);
      // Every free slot at once (one at a time under a launch interval): at high concurrency
      // trials end several per second, and one launch per loop would fall behind.
      const slots = spec.launchIntervalSeconds > 0 ? 1 : state.maxConcurrency - running();
      if (wait === 0) childrenOfThisRun.push(...(await launch(slots, spec, state, studyId, sampler)));
      else await condition(() => wake, wait);
      continue;
    }
    // Sleep until a trial ends or is pruned, a control arrives, or a trial's time is up.
    const deadline = nextDeadline(spec, state);
    if (deadline === null) await condition(() => wake);
    else await condition(() => wake, Math.max(1, deadline - Date.now()));
  }

  await Promise.all(childrenOfThisRun);
  const result = finalResult(state, direction);
  finished = result.status;
  upsertSearchAttributes([{ key: KeelStatus, value: result.status }]);
  render(progress(), direction);
  await record.setStudyStatus({
    studyId,
    status: result.status,
    ...(result.stopReason ? { stopReason: result.stopReason } : {}),
  });
  // The breaker stopped it: the Temporal UI shows the study failed, with the reason.
  if (result.status === 'failed') {
    throw ApplicationFailure.nonRetryable(result.stopReason ?? 'the study failed', 'StudyFailed', result);
  }
  return result;
}

/** What is wrong with a setConcurrency request, in the spec's own terms; null when nothing is. */
function concurrencyProblem(request: { maxConcurrency: number } | undefined): string | null {
  const checked = maxConcurrencySchema.safeParse(request?.maxConcurrency);
  if (checked.success) return null;
  return `maxConcurrency: ${checked.error.issues[0]?.message ?? 'invalid'} (got ${JSON.stringify(request?.maxConcurrency)})`;
}

function view(t: TrialRecord): TrialView {
  return {
    number: t.number,
    params: t.params,
    state: t.state === 'pending' ? 'running' : t.state === 'stopped' ? 'failed' : t.state,
    value: t.value,
    intermediate: t.intermediate,
  };
}

function views(state: StudyCarry): TrialView[] {
  return state.trials.map(view);
}

/**
 * Picks up to `slots` trials (retries first, then new samples, one after the other so each
 * sample sees the ones before it as running), then records them and starts their jobs, all at once.
 */
async function launch(
  slots: number,
  spec: StudySpec,
  state: StudyCarry,
  studyId: string,
  sampler: ReturnType<typeof createSampler>,
): Promise<Promise<unknown>[]> {
  const picked: TrialRecord[] = [];
  for (let i = 0; i < slots; i++) {
    const trial = nextTrial(spec, state, studyId, sampler);
    if (!trial) break;
    picked.push(trial);
  }
  const started = await Promise.all(picked.map((trial) => startTrial(spec, trial, studyId)));
  return started.map((child) => child.result().catch(() => undefined));
}

/** A retry or a new sample, marked running; null when there is nothing left to run. */
function nextTrial(
  spec: StudySpec,
  state: StudyCarry,
  studyId: string,
  sampler: ReturnType<typeof createSampler>,
): TrialRecord | null {
  let trial = state.trials.find((t) => t.state === 'pending');
  if (!trial) {
    if (state.trials.length >= spec.nTrials) return null;
    const number = state.trials.length;
    const params = sampler.suggest({
      space: spec.space,
      direction: spec.objective.direction,
      seed: spec.seed,
      trialNumber: number,
      trials: views(state),
    });
    if (params === null) {
      state.samplerExhausted = true; // a grid with every point tried
      return null;
    }
    trial = {
      number,
      params,
      state: 'pending',
      value: null,
      intermediate: [],
      jobId: '',
      runs: 0,
      startedAtMs: null,
      endedAtMs: null,
      error: null,
      stopping: null,
    };
    state.trials.push(trial);
  }
  trial.runs += 1;
  trial.jobId = `${studyId}-trial-${trial.number}${trial.runs > 1 ? `-run-${trial.runs}` : ''}`;
  trial.state = 'running';
  trial.intermediate = [];
  trial.startedAtMs = Date.now();
  state.lastLaunchAtMs = trial.startedAtMs;
  return trial;
}

/** Records the trial's run and starts its job (side by side: neither needs the other). */
async function startTrial(spec: StudySpec, trial: TrialRecord, studyId: string) {
  const recorded = record.startTrial({
    studyId,
    number: trial.number,
    params: trial.params as never,
    jobId: trial.jobId,
    run: trial.runs,
  });
  const template = spec.trial;
  const started = startChild(trainingJob, {
    workflowId: trial.jobId,
    args: [
      {
        ...template,
        name: `${spec.name ?? studyId} · trial ${trial.number}`,
        params: { ...(template.params ?? {}), ...trial.params },
        // Rank each trial's checkpoints by the study's objective unless the template says otherwise.
        checkpoints: { objective: spec.objective, ...(template.checkpoints ?? {}) },
        trial: {
          studyId,
          trialNumber: trial.number,
          metric: spec.objective.metric,
          prune: spec.pruner.type !== 'none',
        },
      },
    ],
    // The study continues as new while trials run: they must outlive the run that started them.
    parentClosePolicy: ParentClosePolicy.ABANDON,
    typedSearchAttributes: [{ key: KeelStudy, value: studyId }] as never,
    // What the Temporal UI shows for the trial's job: which study, which params.
    staticSummary: `trial ${trial.number} of study ${studyId}: ${Object.entries(trial.params)
      .map(([k, v]) => `${k}=${typeof v === 'number' ? Number(v.toPrecision(4)) : v}`)
      .join(', ')}`,
  });
  const [, child] = await Promise.all([recorded, started]);
  return child;
}

/** Applies the trials' ends: states, values, retries, the breaker. */
async function settleEnded(ends: TrialEnded[], state: StudyCarry, spec: StudySpec, studyId: string): Promise<void> {
  const writes: Promise<void>[] = [];
  for (const end of ends) {
    const trial = state.trials[end.trialNumber];
    if (!trial || trial.jobId !== end.jobId || trial.state !== 'running') continue; // a stale run
    const metric = spec.objective.metric;
    // The job's last values, where the reports (every 10 s without a pruner) did not bring them.
    const reported = end.metrics[metric];
    const lastStep = trial.intermediate[trial.intermediate.length - 1]?.[0] ?? -1;
    if (end.step !== null && end.step > lastStep && typeof reported === 'number') {
      trial.intermediate.push([end.step, reported]);
    }
    const lastValue = trial.intermediate[trial.intermediate.length - 1]?.[1] ?? null;
    let next: { state: 'completed' | 'pruned' | 'failed' | 'stopped'; value: number | null; error: string | null };
    // A trainer that never reports the objective would do the same again: no retry for it.
    let reportedNoObjective = false;
    if (end.status === 'completed') {
      const value = end.finalMetrics?.[metric] ?? end.metrics[metric];
      reportedNoObjective = !(typeof value === 'number' && Number.isFinite(value));
      next =
        typeof value === 'number' && Number.isFinite(value)
          ? { state: 'completed', value, error: null }
          : { state: 'failed', value: null, error: `the trial completed without reporting the objective '${metric}'` };
    } else if (trial.stopping === 'pruned') {
      next = { state: 'pruned', value: lastValue, error: null };
    } else if (trial.stopping === 'timeout') {
      next = {
        state: 'stopped',
        value: lastValue,
        error: `ran past trialTimeoutSeconds (${spec.trialTimeoutSeconds}s)`,
      };
    } else if (trial.stopping === 'study' || (end.status === 'stopped' && state.stop)) {
      next = { state: 'stopped', value: lastValue, error: `stopped with the study: ${state.stop?.reason ?? ''}` };
    } else {
      const why = end.error ?? `the trial's job ended ${end.status}${end.stopReason ? ` (${end.stopReason})` : ''}`;
      next = { state: 'failed', value: null, error: why };
    }
    trial.stopping = null;
    trial.endedAtMs = Date.now();
    trial.error = next.error;
    trial.value = next.value;
    if (next.state === 'failed' && !reportedNoObjective && trial.runs <= spec.failures.retriesPerTrial && !state.stop) {
      trial.state = 'pending'; // runs again with the same params
      writes.push(record.endTrial({ studyId, number: trial.number, state: 'failed', value: null, error: next.error }));
      continue;
    }
    trial.state = next.state;
    writes.push(record.endTrial({ studyId, number: trial.number, ...next }));
    if (next.state === 'failed') {
      state.consecutiveFailures += 1;
      const failed = state.trials.filter((t) => t.state === 'failed').length;
      if (failed >= spec.failures.maxFailedTrials) {
        state.stop ??= {
          status: 'failed',
          reason: `${failed} trials failed (maxFailedTrials ${spec.failures.maxFailedTrials}); last: ${next.error}`,
        };
      } else if (state.consecutiveFailures >= spec.failures.consecutiveToHalve) {
        state.maxConcurrency = Math.max(1, Math.floor(state.maxConcurrency / 2));
        state.consecutiveFailures = 0;
      }
    } else if (next.state === 'completed') {
      state.consecutiveFailures = 0;
    }
  }
  await Promise.all(writes);
  if (ends.length === 0) return;
  const best = bestTrial(state, spec.objective.direction);
  const done = state.trials.filter((t) => isEnded(t.state)).length;
  upsertSearchAttributes([
    { key: KeelTrialsDone, value: done },
    ...(best ? [{ key: KeelBestValue, value: best.value as number }] : []),
  ]);
}

/** Sends stop to the jobs the study wants stopped (once each). */
async function sendStops(state: StudyCarry, sent: Set<string>): Promise<void> {
  for (const trial of state.trials) {
    if (trial.state !== 'running') continue;
    if (state.stop && !trial.stopping) trial.stopping = 'study';
    if (!trial.stopping || sent.has(trial.jobId)) continue;
    sent.add(trial.jobId);
    const reason =
      trial.stopping === 'pruned' ? 'pruned' : trial.stopping === 'timeout' ? 'trial timeout' : 'study stopped';
    try {
      await getExternalWorkflowHandle(trial.jobId).signal(stopSignal, { reason });
    } catch {
      // The job has already ended: its end signal is on its way.
    }
  }
}

function markTimedOut(spec: StudySpec, state: StudyCarry): void {
  if (!spec.trialTimeoutSeconds) return;
  const now = Date.now();
  for (const trial of state.trials) {
    if (trial.state === 'running' && !trial.stopping && trial.startedAtMs !== null) {
      if (now - trial.startedAtMs >= spec.trialTimeoutSeconds * 1000) trial.stopping = 'timeout';
    }
  }
}

function nextDeadline(spec: StudySpec, state: StudyCarry): number | null {
  if (!spec.trialTimeoutSeconds) return null;
  const starts = state.trials
    .filter((t) => t.state === 'running' && !t.stopping && t.startedAtMs !== null)
    .map((t) => (t.startedAtMs as number) + (spec.trialTimeoutSeconds as number) * 1000);
  return starts.length > 0 ? Math.min(...starts) : null;
}

function launchWait(spec: StudySpec, state: StudyCarry): number {
  if (!spec.launchIntervalSeconds || state.lastLaunchAtMs === null) return 0;
  return Math.max(0, state.lastLaunchAtMs + spec.launchIntervalSeconds * 1000 - Date.now());
}

function shouldContinueAsNew(spec: StudySpec): boolean {
  const info = workflowInfo();
  return info.continueAsNewSuggested || info.historyLength >= spec.historyEventsBeforeContinueAsNew;
}

function isEnded(state: TrialStatus): boolean {
  return state === 'completed' || state === 'pruned' || state === 'failed' || state === 'stopped';
}

function bestTrial(state: StudyCarry, direction: Direction): TrialRecord | undefined {
  let best: TrialRecord | undefined;
  for (const t of state.trials) {
    if (t.state !== 'completed' || t.value === null) continue;
    if (!best || better(t.value, best.value as number, direction)) best = t;
  }
  return best;
}

function better(a: number, b: number, direction: Direction): boolean {
  return direction === 'minimize' ? a < b : a > b;
}

function studyStatus(state: StudyCarry): StudyStatus {
  if (state.stop) return 'stopping';
  return state.paused ? 'paused' : 'running';
}

function counts(state: StudyCarry): Record<TrialStatus, number> {
  const c: Record<TrialStatus, number> = { pending: 0, running: 0, completed: 0, pruned: 0, failed: 0, stopped: 0 };
  for (const t of state.trials) c[t.state] += 1;
  return c;
}

function finalResult(state: StudyCarry, direction: Direction): StudyResult {
  const best = bestTrial(state, direction);
  return {
    status: state.stop?.status ?? 'completed',
    stopReason: state.stop?.reason ?? null,
    counts: counts(state),
    best: best ? { number: best.number, value: best.value as number, params: best.params, jobId: best.jobId } : null,
  };
}

function buildProgress(
  studyId: string,
  spec: StudySpec,
  state: StudyCarry,
  finished: StudyResult['status'] | null,
): StudyProgress {
  const best = bestTrial(state, spec.objective.direction);
  const c = counts(state);
  const durations = state.trials
    .filter((t) => t.startedAtMs !== null && t.endedAtMs !== null && isEnded(t.state))
    .map((t) => (t.endedAtMs as number) - (t.startedAtMs as number));
  const left = Math.max(0, spec.nTrials - state.trials.length) + c.pending + c.running;
  const mean = durations.length > 0 ? durations.reduce((a, b) => a + b, 0) / durations.length : null;
  const etaSeconds =
    mean === null || state.samplerExhausted
      ? null
      : Math.round((Math.ceil(left / Math.max(1, state.maxConcurrency)) * mean) / 1000);
  return {
    studyId,
    status: finished ?? studyStatus(state),
    objective: { metric: spec.objective.metric, direction: spec.objective.direction },
    nTrials: spec.nTrials,
    maxConcurrency: state.maxConcurrency,
    counts: c,
    best: best ? { number: best.number, value: best.value as number, params: best.params } : null,
    etaSeconds,
    meanTrialSeconds: mean === null ? null : Math.round(mean) / 1000,
    stopReason: state.stop?.reason ?? null,
    runs: state.runs,
    trials: state.trials.map((t) => ({
      number: t.number,
      state: t.state,
      value: t.value,
      params: t.params,
      jobId: t.jobId,
      step: t.intermediate[t.intermediate.length - 1]?.[0] ?? null,
      lastValue: t.intermediate[t.intermediate.length - 1]?.[1] ?? null,
      startedAtMs: t.startedAtMs,
      endedAtMs: t.endedAtMs,
    })),
  };
}

/** The Temporal UI's current details: counts and the top trials. */
function render(p: StudyProgress, direction: Direction): void {
  const sign = direction === 'minimize' ? 1 : -1;
  const top = p.trials
    .filter((t) => t.state === 'completed' && t.value !== null)
    .sort((a, b) => sign * ((a.value as number) - (b.value as number)))
    .slice(0, 5);
  const c = p.counts;
  const fmt = (v: unknown) => (typeof v === 'number' ? Number(v.toPrecision(4)) : v);
  setCurrentDetails(
    [
      // Blank lines between: markdown would join the lines into one paragraph.
      `**${p.status}** · ${c.completed + c.pruned + c.failed + c.stopped} of ${p.nTrials} done · running ${c.running} (max ${p.maxConcurrency})`,
      '',
      `completed ${c.completed} · pruned ${c.pruned} · failed ${c.failed} · stopped ${c.stopped}` +
        (p.etaSeconds !== null ? ` · ETA ${p.etaSeconds}s` : ''),
      '',
      '| trial | value | params |',
      '|---|---|---|',
      ...top.map(
        (t) =>
          `| ${t.number} | ${fmt(t.value)} | ${Object.entries(t.params)
            .map(([k, v]) => `${k}=${fmt(v)}`)
            .join(', ')} |`,
      ),
      ...(p.stopReason ? ['', `stop reason: ${p.stopReason}`] : []),
    ].join('\n'),
  );
}
