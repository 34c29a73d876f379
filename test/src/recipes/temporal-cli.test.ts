// docs/temporal-cli.md, run as written: every ```sh block after a `<!-- recipe: name -->` comment
// is taken from the doc and run with bash and the real `temporal` binary against a dev server and
// a keel worker on the `keel` queue (what `keel dev` gives a person), and what it prints is
// checked. The doc's $JOB_ID and $STUDY_ID come from the environment, set per run by the test.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fencedBlocks, markedBlocks, type Ran, runBash, runUntil } from './doc-recipes.ts';
import { useKeelServer } from './keel-server.ts';

const docFile = path.resolve('docs/temporal-cli.md');
const doc = fs.readFileSync(docFile, 'utf8');

const recipes = markedBlocks(doc, 'recipe', 'sh');
const ran = new Set<string>();

const server = useKeelServer();
/** Where the recipes run: a stand-in for the repository root (its `examples` folder, linked), so
 *  the files they write (job.json) land in a throw-away folder. */
let cwd: string;

beforeAll(() => {
  cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-cli-recipes-'));
  fs.symlinkSync(path.resolve('examples'), path.join(cwd, 'examples'));
});
afterAll(() => {
  if (cwd) fs.rmSync(cwd, { recursive: true, force: true });
});

/** Runs a recipe as the doc has it (bash, stopping at the first failing command). It must not
 *  block: the worker that serves the commands runs in this process. */
async function run(name: string, vars: Record<string, string>): Promise<Ran> {
  const recipe = recipes.get(name);
  if (!recipe) throw new Error(`docs/temporal-cli.md has no recipe '${name}'`);
  ran.add(name);
  const bin = process.env.KEEL_TEMPORAL_BIN;
  if (!bin) throw new Error("KEEL_TEMPORAL_BIN is not set. Fix: run the tests with 'npm test'.");
  const env = {
    ...process.env,
    PATH: [path.dirname(bin), path.dirname(process.execPath), process.env.PATH].join(path.delimiter),
    TEMPORAL_ADDRESS: server.temporal.address,
    TEMPORAL_NAMESPACE: server.temporal.namespace,
    ...vars,
  };
  return runBash(recipe, { cwd, env, timeoutMs: 90_000 });
}

/** Runs the recipe again until `ok` holds for what it printed. */
const until = (name: string, vars: Record<string, string>, ok: (r: Ran) => boolean) =>
  runUntil(name, () => run(name, vars), ok, { timeoutMs: 60_000, pauseMs: 500 });

/** The JSON after a label in the CLI's text output (`QueryResult  {…}`, `Result  {…}`). */
function labelled<T = Record<string, unknown>>(r: Ran, label: string): T {
  const line = new RegExp(`^\\s*${label}\\s+(.+)$`, 'm').exec(r.stdout)?.[1];
  if (!line) throw new Error(`no '${label}' in:\n${r.stdout}`);
  return JSON.parse(line) as T;
}

/** Rows of `temporal workflow list`: workflow id → status. */
function listed(r: Ran): Map<string, string> {
  const rows = r.stdout
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((cells) => cells.length >= 3);
  return new Map(rows.map((cells) => [cells[1] as string, cells[0] as string]));
}

/** A keyword search attribute's value as `temporal workflow describe` prints it. */
function attribute(r: Ran, key: string): string | undefined {
  return new RegExp(`${key}:metadata:.*?data:"\\\\"([^"\\\\]*)\\\\""`).exec(r.stdout)?.[1];
}

interface JobProgress {
  jobId: string;
  status: string;
  step: number | null;
  attempt: number;
  newestCommittedStep: number | null;
  checkpoints: { committed: number };
}

interface StudyProgress {
  studyId: string;
  status: string;
  nTrials: number;
  maxConcurrency: number;
  counts: Record<string, number>;
  trials: { number: number; state: string; jobId: string; step: number | null; params: Record<string, number> }[];
}

describe('docs/temporal-cli.md', () => {
  test('marks its runnable commands as recipes', () => {
    expect(recipes.size).toBeGreaterThan(10);
    expect([...doc.matchAll(/<!--\s*recipe:/g)]).toHaveLength(recipes.size); // no name used twice
    // Every block that runs `temporal` is a recipe, so none escapes this test.
    const scripts = new Set(recipes.values());
    const untested = fencedBlocks(doc, 'sh').filter((b) => /\btemporal /.test(b) && !scripts.has(b));
    expect(untested).toEqual([]);
  });

  test('a training job: start, progress, describe, metadata, stop, result; cancel; list', async () => {
    const JOB_ID = `cli-job-${Date.now()}`;
    const start = await run('job-start', { JOB_ID });
    expect(start.code, start.stderr).toBe(0);
    expect(start.stdout).toContain('Running execution:');
    expect(start.stdout).toMatch(new RegExp(`WorkflowId\\s+${JOB_ID}\\n`));
    expect(start.stdout).toMatch(/Type\s+trainingJob\n/);
    expect(start.stdout).toMatch(/TaskQueue\s+keel\n/);

    // The query's step moves with checkpoints: wait for the first to be committed.
    const progress = labelled<JobProgress>(
      await until(
        'job-progress',
        { JOB_ID },
        (r) => labelled<JobProgress>(r, 'QueryResult').newestCommittedStep !== null,
      ),
      'QueryResult',
    );
    expect(progress).toMatchObject({ jobId: JOB_ID, status: 'running', attempt: 1 });
    expect(progress.step).toBeGreaterThan(0);
    expect(progress.checkpoints.committed).toBeGreaterThanOrEqual(1);

    // The live step is in the attempt's heartbeat, at or past the checkpoint's.
    // (Heartbeats are throttled, 2 s at most between them: read again until one has caught up.)
    const heartbeatOf = (r: { stdout: string }) =>
      JSON.parse(/LastHeartbeatDetails\s+(\[.*\])/.exec(r.stdout)?.[1] ?? 'null') as [{ step: number }] | null;
    const described = await until(
      'job-describe',
      { JOB_ID },
      (r) => (heartbeatOf(r)?.[0].step ?? -1) >= (progress.step as number),
    );
    expect(described.stdout).toMatch(/Type\s+runTrainer\n/);
    const heartbeat = heartbeatOf(described) as [{ step: number; metrics: object }];
    expect(heartbeat[0].step).toBeGreaterThanOrEqual(progress.step as number);
    expect(heartbeat[0].metrics).toHaveProperty('loss');
    expect(attribute(described, 'KeelKind')).toBe('job');
    expect(attribute(described, 'KeelJob')).toBe(JOB_ID);
    expect(attribute(described, 'KeelStatus')).toBe('running');

    const metadata = await run('job-metadata', { JOB_ID });
    expect(metadata.code, metadata.stderr).toBe(0);
    expect(metadata.stdout).toMatch(/Query Definitions:[\s\S]*\bprogress\b/);
    expect(metadata.stdout).toMatch(/Signal Definitions:[\s\S]*\bstop\b/);
    expect(metadata.stdout).toMatch(/Current Details:\s+\*\*running\*\* · attempt 1 · step \d+/);
    expect(metadata.stdout).toContain('| checkpoints | staged | uploading | committed | failed | collected |');

    const stop = await run('job-stop', { JOB_ID });
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stdout).toContain('Signal workflow succeeded');
    const result = await run('job-result', { JOB_ID });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/Status\s+COMPLETED\n/);
    const outcome = labelled<{ status: string; step: number; committedCheckpoints: number; attempts: number }>(
      result,
      'Result',
    );
    expect(outcome).toMatchObject({ status: 'stopped', attempts: 1 });
    expect(outcome.step).toBeGreaterThanOrEqual(heartbeat[0].step);
    expect(outcome.step).toBeLessThan(10_000); // stopped early: the spec asks for 10,000 steps
    expect(outcome.committedCheckpoints).toBeGreaterThanOrEqual(progress.checkpoints.committed);

    // A second job, cancelled while its trainer runs.
    const second = { JOB_ID: `${JOB_ID}-cancelled` };
    expect((await run('job-start', second)).code).toBe(0);
    await until('job-describe', second, (r) => r.stdout.includes('LastHeartbeatDetails'));
    const cancel = await run('job-cancel', second);
    expect(cancel.stdout).toContain('Canceled workflow');
    expect(cancel.stdout).toMatch(/Status\s+CANCELED/);
    expect(cancel.code).toBe(1); // `result` of a cancelled workflow
    // keel recorded the end (a query still answers once the workflow is closed).
    const after = labelled<JobProgress>(await run('job-progress', second), 'QueryResult');
    expect(after.status).toBe('cancelled');
    expect(after.checkpoints.committed).toBeGreaterThanOrEqual(1); // its final checkpoint, kept
    expect(attribute(await run('job-describe', second), 'KeelStatus')).toBe('cancelled');

    const jobs = listed(await until('list-jobs', {}, (r) => listed(r).get(second.JOB_ID) === 'Canceled'));
    expect(jobs.get(JOB_ID)).toBe('Completed');
    expect(jobs.get(second.JOB_ID)).toBe('Canceled');
  });

  test('an HPO study: start, progress, steer, find, stop, result, read fields', async () => {
    const STUDY_ID = `cli-study-${Date.now()}`;
    const vars = { STUDY_ID };
    const start = await run('study-start', vars);
    expect(start.code, start.stderr).toBe(0);
    expect(start.stdout).toMatch(new RegExp(`WorkflowId\\s+${STUDY_ID}\\n`));
    expect(start.stdout).toMatch(/Type\s+hpoStudy\n/);

    // examples/mlp/study.json as written: 16 trials, 4 at a time; wait for trials to report steps.
    const query = (r: Ran) => labelled<StudyProgress>(r, 'QueryResult');
    const progress = query(
      await until('study-progress', vars, (r) => query(r).trials.some((t) => t.step !== null && t.state === 'running')),
    );
    expect(progress).toMatchObject({ studyId: STUDY_ID, status: 'running', nTrials: 16, maxConcurrency: 4 });
    expect(progress.counts.running).toBeGreaterThanOrEqual(1);
    expect(progress.counts.running).toBeLessThanOrEqual(4);
    for (const t of progress.trials) {
      expect(t.jobId).toBe(`${STUDY_ID}-trial-${t.number}`);
      expect(Object.keys(t.params).sort()).toEqual(['hiddenSize', 'learningRate', 'momentum']);
    }

    // setConcurrency as an update: answers with the progress; a bad value is refused, named.
    const update = await run('study-set-concurrency', vars);
    expect(update.code, update.stderr).toBe(0);
    expect(update.stdout).toMatch(/Name\s+setConcurrency\n/);
    expect(update.stdout).toMatch(/Result\s+map\[.*\bmaxConcurrency:2\b.*\bstatus:running\b/);
    const rejected = await run('study-set-concurrency-rejected', vars);
    expect(rejected.code).toBe(1);
    expect(rejected.stdout + rejected.stderr).toContain(
      'unable to update workflow: maxConcurrency: Too small: expected number to be >=1 (got 0)',
    );
    expect(query(await run('study-progress', vars)).maxConcurrency).toBe(2);

    // Pause: the status says so, in the progress and in the search attribute.
    const pause = await run('study-pause', vars);
    expect(pause.stdout).toContain('Signal workflow succeeded');
    expect(query(await run('study-progress', vars)).status).toBe('paused');
    const paused = await until('count-paused', vars, (r) => /Total: 1\n/.test(r.stdout));
    expect(paused.stdout).toBe('Total: 1\n');
    expect(listed(await run('list-running-studies', {})).has(STUDY_ID)).toBe(false);
    const resume = await run('study-resume', vars);
    expect(resume.stdout).toContain('Signal workflow succeeded');
    await until('count-paused', vars, (r) => r.stdout === 'Total: 0\n');
    const running = await until('list-running-studies', {}, (r) => listed(r).has(STUDY_ID));
    expect(listed(running).get(STUDY_ID)).toBe('Running');

    // The study and its trials' jobs, by KeelStudy.
    const family = listed(
      await until('list-study', vars, (r) => listed(r).has(STUDY_ID) && listed(r).has(`${STUDY_ID}-trial-0`)),
    );
    expect([...family.keys()].every((id) => id === STUDY_ID || id.startsWith(`${STUDY_ID}-trial-`))).toBe(true);
    expect(family.size).toBeGreaterThanOrEqual(1 + progress.trials.length);

    const metadata = await run('study-metadata', vars);
    expect(metadata.code, metadata.stderr).toBe(0);
    expect(metadata.stdout).toMatch(/Update Definitions:[\s\S]*\bsetConcurrency\b/);
    expect(metadata.stdout).toMatch(/Current Details:\s+\*\*running\*\* · \d+ of 16 done · running \d+ \(max 2\)/);
    expect(metadata.stdout).toMatch(/completed \d+ · pruned \d+ · failed \d+ · stopped \d+/);
    expect(metadata.stdout).toContain('| trial | value | params |');

    const described = await run('study-describe', vars);
    expect(described.code, described.stderr).toBe(0);
    expect(described.stdout).toMatch(/StaticSummary\s+"MLP: learning rate, momentum, width"/);
    expect(attribute(described, 'KeelKind')).toBe('study');
    expect(attribute(described, 'KeelStudy')).toBe(STUDY_ID);
    expect(attribute(described, 'KeelStatus')).toBe('running');

    // Stop with a reason; the study ends 'stopped' with it.
    const stop = await run('study-stop', vars);
    expect(stop.stdout).toContain('Signal workflow succeeded');
    const result = await run('study-result', vars);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/Status\s+COMPLETED\n/);
    const outcome = labelled<{ status: string; stopReason: string; counts: Record<string, number>; best: unknown }>(
      result,
      'Result',
    );
    expect(outcome).toMatchObject({ status: 'stopped', stopReason: 'enough' });
    expect(outcome.counts.running).toBe(0);
    expect(outcome.counts.pending).toBe(0);
    expect(outcome.counts.stopped).toBeGreaterThanOrEqual(1); // the trials running at the stop
    const ended = Object.values(outcome.counts).reduce((a, b) => a + b, 0);
    expect(ended).toBeGreaterThanOrEqual(progress.trials.length);

    // The same, field by field, with node instead of jq.
    const best = await run('read-result-field', vars);
    expect(best.code, best.stderr).toBe(0);
    expect(JSON.parse(best.stdout)).toEqual(outcome.best);
    const completed = await run('read-progress-field', vars);
    expect(completed.code, completed.stderr).toBe(0);
    expect(completed.stdout).toBe(`${outcome.counts.completed}\n`);

    // Found by its final status, and no longer among the running.
    const final = await until('study-describe', vars, (r) => attribute(r, 'KeelStatus') === 'stopped');
    expect(final.stdout).toMatch(/Status\s+COMPLETED/);
    expect(listed(await run('list-running-studies', {})).has(STUDY_ID)).toBe(false);
    // Trials are jobs too, but not among the jobs of their own.
    const jobs = await run('list-jobs', {});
    expect(jobs.code, jobs.stderr).toBe(0);
    expect([...listed(jobs).keys()].filter((id) => id.startsWith(STUDY_ID))).toEqual([]);
  });

  test('every recipe in the doc was run', () => {
    expect([...recipes.keys()].filter((name) => !ran.has(name))).toEqual([]);
  });
});
