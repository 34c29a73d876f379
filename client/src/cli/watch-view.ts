// What `keel study watch` and `keel job watch` print. Pure functions of the progress (and the
// clock), so the views are tested without a terminal: `studyFrame` is the live view redrawn in
// place on a TTY (a bar for the study, one per running trial); `studyChanges` is the plain lines
// printed instead when stdout is a pipe or a file (one line per change, nothing redrawn).
import type { JobProgress, StudyProgress } from '@keel/workflows';

type TrialProgress = StudyProgress['trials'][number];

export function bar(fraction: number, width: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
}

export function duration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function num(value: number | null | undefined): string {
  if (value === null || value === undefined) return '-';
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
}

export function done(p: StudyProgress): number {
  const c = p.counts;
  return c.completed + c.pruned + c.failed + c.stopped;
}

function params(t: { params: Record<string, unknown> }): string {
  return Object.entries(t.params)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? num(v) : String(v)}`)
    .join(' ');
}

/** The steps a trial runs to, as far as the study can tell: the most any completed trial ran. */
function expectedSteps(p: StudyProgress): number | null {
  const steps = p.trials.filter((t) => t.state === 'completed' && t.step !== null).map((t) => t.step as number);
  return steps.length > 0 ? Math.max(...steps) : null;
}

function trialLine(p: StudyProgress, t: TrialProgress, now: number, width: number, total: number | null): string {
  const elapsed = t.startedAtMs === null ? null : (now - t.startedAtMs) / 1000;
  const eta = p.meanTrialSeconds === null || elapsed === null ? null : p.meanTrialSeconds - elapsed;
  const step = t.step ?? 0;
  const shown = total === null ? '' : `${bar(step / total, width)} `;
  return (
    `  #${String(t.number).padEnd(4)} ${shown}step ${step}${total === null ? '' : `/${total}`}` +
    `  ${p.objective.metric} ${num(t.lastValue)}  ETA ${duration(eta)}  ${params(t)}`
  );
}

/** The live view: the study's bar and counts, then one bar per running trial. */
export function studyFrame(p: StudyProgress, now: number, width = 24): string[] {
  const c = p.counts;
  const best = p.best ? `best ${num(p.best.value)} (#${p.best.number} ${params(p.best)})` : 'best -';
  const total = expectedSteps(p);
  const running = p.trials.filter((t) => t.state === 'running');
  return [
    `${p.studyId}  ${p.status}  ${bar(done(p) / p.nTrials, width)} ${done(p)}/${p.nTrials} trials  ETA ${duration(p.etaSeconds)}`,
    `  completed ${c.completed} · pruned ${c.pruned} · failed ${c.failed} · stopped ${c.stopped} · ` +
      `running ${c.running}/${p.maxConcurrency} · ${p.objective.direction} ${p.objective.metric}: ${best}`,
    ...running.map((t) => trialLine(p, t, now, width, total)),
    ...(p.stopReason ? [`  stop reason: ${p.stopReason}`] : []),
  ];
}

/** Plain lines for what changed between two progress reads (`previous` undefined: the first). */
export function studyChanges(previous: StudyProgress | undefined, p: StudyProgress): string[] {
  const lines: string[] = [];
  const before = new Map(previous?.trials.map((t) => [t.number, t]));
  for (const t of p.trials) {
    const old = before.get(t.number);
    if (old?.state === t.state) continue;
    if (t.state === 'running') lines.push(`trial ${t.number} running: ${params(t)}`);
    else if (t.state !== 'pending') {
      const value = t.value ?? t.lastValue;
      lines.push(
        `trial ${t.number} ${t.state}${t.step === null ? '' : ` at step ${t.step}`}: ${p.objective.metric} ${num(value)}`,
      );
    }
  }
  const summary = (q: StudyProgress) =>
    `${q.status} ${done(q)}/${q.nTrials} ${JSON.stringify(q.counts)} ${q.best?.value ?? ''} ${q.maxConcurrency}`;
  if (!previous || lines.length > 0 || summary(previous) !== summary(p)) {
    const c = p.counts;
    lines.push(
      `study ${p.studyId} ${p.status}: ${done(p)}/${p.nTrials} done (completed ${c.completed}, pruned ${c.pruned}, ` +
        `failed ${c.failed}, stopped ${c.stopped}), running ${c.running}/${p.maxConcurrency}, ` +
        `best ${p.best ? `${num(p.best.value)} (trial ${p.best.number})` : '-'}, ETA ${duration(p.etaSeconds)}` +
        (p.stopReason ? `, stop reason: ${p.stopReason}` : ''),
    );
  }
  return lines;
}

/** One line for a job's progress (plain output, and the live view of `keel job watch`). */
export function jobLine(p: JobProgress): string {
  const metrics = Object.entries(p.metrics)
    .map(([k, v]) => `${k}=${num(v)}`)
    .join(' ');
  const c = p.checkpoints;
  return (
    `job ${p.jobId} ${p.status}: step ${p.step ?? '-'} ${metrics}  attempt ${p.attempt}  checkpoints ` +
    `committed ${c.committed}, uploading ${c.uploading}, staged ${c.staged}, failed ${c.failed}` +
    (p.waiting ? `  ${p.waiting}` : '') +
    (p.lastError ? `  last error: ${p.lastError}` : '')
  );
}
