// `keel job …`, `keel study …` and `keel checkpoints …`: thin wrappers over KeelClient that print
// for people (tables, live bars) or, with --json, for scripts.
import fs from 'node:fs/promises';
import path from 'node:path';
import { type JobSpecInput, maxConcurrencySchema, type StudySpecInput } from '@keel/workflows/specs';
import { type Command, InvalidArgumentError } from 'commander';
import logUpdate from 'log-update';
import { type Checkpoint, KeelClient, type StudyProgress } from '../keel-client.ts';
import { CliError, exitCodes } from './errors.ts';
import { readSpecFile } from './spec-file.ts';
import { jobLine, num, studyChanges, studyFrame } from './watch-view.ts';

interface JsonOption {
  json?: boolean;
}

/** Runs `work` with a connected client, closing it after. */
async function withClient<T>(work: (keel: KeelClient) => Promise<T>): Promise<T> {
  const keel = await KeelClient.connect();
  try {
    return await work(keel);
  } finally {
    await keel.close();
  }
}

function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}

/** The Temporal UI page of a workflow: KEEL_UI_URL, else the dev server's (gRPC port + 1000). */
export function uiLink(workflowId: string, env = process.env): string | null {
  const namespace = env.TEMPORAL_NAMESPACE || 'default';
  let base = env.KEEL_UI_URL;
  if (!base) {
    const match = /^(localhost|127\.0\.0\.1|\[::1\]):(\d+)$/.exec(env.TEMPORAL_ADDRESS || 'localhost:7233');
    if (!match) return null;
    base = `http://${match[1]}:${Number(match[2]) + 1000}`;
  }
  return `${base.replace(/\/$/, '')}/namespaces/${namespace}/workflows/${encodeURIComponent(workflowId)}`;
}

function printStarted(kind: 'job' | 'study', id: string, started: object, opts: JsonOption): void {
  const ui = uiLink(id);
  if (opts.json) {
    printJson({ ...started, ui });
    return;
  }
  console.log(`started ${kind} ${id}`);
  if (ui) console.log(`  UI: ${ui}`);
  console.log(`  watch: keel ${kind} watch ${id}`);
}

function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number ≥ 0.');
  return n;
}

/** `keel study concurrency <id> <n>`: checked as the study checks it, before anything is sent. */
function parseConcurrency(value: string): number {
  const checked = maxConcurrencySchema.safeParse(/^\d+$/.test(value) ? Number(value) : Number.NaN);
  if (!checked.success) {
    throw new CliError(
      `<n> (maxConcurrency) must be a whole number from ${maxConcurrencySchema.minValue} to ` +
        `${maxConcurrencySchema.maxValue}, got '${value}': e.g. keel study concurrency <id> 4`,
      exitCodes.usage,
    );
  }
  return checked.data;
}

export function registerJobCommands(program: Command): void {
  const job = program.command('job').description('Start, watch and stop training jobs');

  job
    .command('start <spec>')
    .description('Start a training job from a JSON or YAML job spec (see workflows/src/specs/job-spec.ts)')
    .option('--id <id>', 'the job id (the workflow id; default: job-<name>-<random>)')
    .option('--watch', 'then watch it until it ends')
    .option('--json', 'print {"jobId", "runId", "ui"} as JSON')
    .action(async (file: string, opts: JsonOption & { id?: string; watch?: boolean }) => {
      const spec = (await readSpecFile(file)) as JobSpecInput;
      await withClient(async (keel) => {
        const started = await keel.startJob(spec, opts.id ? { id: opts.id } : {});
        printStarted('job', started.jobId, started, opts);
        if (opts.watch) await watchJob(keel, started.jobId);
      });
    });

  job
    .command('status <id>')
    .description("Print a job's progress: step, metrics, checkpoints, attempts")
    .option('--json', 'print the progress as JSON')
    .action(async (id: string, opts: JsonOption) => {
      await withClient(async (keel) => {
        const p = await keel.jobProgress(id);
        if (opts.json) printJson(p);
        else console.log(jobLine(p));
      });
    });

  job
    .command('watch <id>')
    .description("Print the job's progress as it changes until it ends (exit 1 if it failed)")
    .action(async (id: string) => {
      await withClient((keel) => watchJob(keel, id));
    });

  job
    .command('stop <id>')
    .description('Ask the job to save a final checkpoint and stop (the trainer is signalled, not killed)')
    .option('--reason <text>', 'why, recorded with the job')
    .action(async (id: string, opts: { reason?: string }) => {
      await withClient((keel) => keel.stopJob(id, opts.reason));
      console.log(`asked job ${id} to stop; it saves a final checkpoint first`);
    });
}

async function watchJob(keel: KeelClient, id: string): Promise<void> {
  let status = 'running';
  for await (const p of keel.watchJob(id)) {
    console.log(jobLine(p));
    status = p.status;
  }
  if (status === 'failed') throw new CliError(`job ${id} failed`, exitCodes.failed);
}

export function registerStudyCommands(program: Command): void {
  const study = program.command('study').description('Start, watch, steer and report HPO studies');

  study
    .command('start <spec>')
    .description('Start an HPO study from a JSON or YAML study spec (see workflows/src/specs/study-spec.ts)')
    .option('--id <id>', 'the study id (the workflow id; default: study-<name>-<random>)')
    .option('--watch', 'then watch it until it ends')
    .option('--json', 'print {"studyId", "runId", "ui"} as JSON')
    .action(async (file: string, opts: JsonOption & { id?: string; watch?: boolean }) => {
      const spec = (await readSpecFile(file)) as StudySpecInput;
      await withClient(async (keel) => {
        const started = await keel.startStudy(spec, opts.id ? { id: opts.id } : {});
        printStarted('study', started.studyId, started, opts);
        if (opts.watch) await watchStudy(keel, started.studyId, {});
      });
    });

  study
    .command('watch <id>')
    .description(
      'Live progress until the study ends: a bar for the study and one per running trial (step, metric, ETA); ' +
        'plain lines when stdout is not a terminal. Exit 1 if the study failed.',
    )
    .option('--interval <ms>', 'how often to read progress', parseCount, 1000)
    .option('--plain', 'print plain lines even on a terminal')
    .action(async (id: string, opts: { interval: number; plain?: boolean }) => {
      await withClient((keel) => watchStudy(keel, id, opts));
    });

  study
    .command('status <id>')
    .description("Print a study's progress: counts, best trial, ETA, every trial")
    .option('--json', 'print the progress as JSON')
    .action(async (id: string, opts: JsonOption) => {
      await withClient(async (keel) => {
        const p = await keel.studyProgress(id);
        if (opts.json) printJson(p);
        else for (const line of studyChanges(undefined, p)) console.log(line);
      });
    });

  for (const [name, description] of [
    ['pause', 'Launch no new trials (running ones finish)'],
    ['resume', 'Launch trials again after a pause'],
  ] as const) {
    study
      .command(`${name} <id>`)
      .description(description)
      .option('--json', 'print the study progress as JSON')
      .action(async (id: string, opts: JsonOption) => {
        await withClient(async (keel) => {
          const p = name === 'pause' ? await keel.pauseStudy(id) : await keel.resumeStudy(id);
          if (opts.json) printJson(p);
          else console.log(`study ${id} is ${p.status}`);
        });
      });
  }

  study
    .command('stop <id>')
    .description('Stop the study: running trials save a final checkpoint and stop; it ends "stopped"')
    .option('--reason <text>', 'why, recorded with the study')
    .option('--json', 'print the study progress as JSON')
    .action(async (id: string, opts: JsonOption & { reason?: string }) => {
      await withClient(async (keel) => {
        const p = await keel.stopStudy(id, opts.reason);
        if (opts.json) printJson(p);
        else console.log(`study ${id} is ${p.status}; ${p.counts.running} running trial(s) are saving and stopping`);
      });
    });

  study
    .command('concurrency <id> <n>')
    .description('Change how many trials run at once')
    .action(async (id: string, n: string) => {
      const maxConcurrency = parseConcurrency(n);
      await withClient(async (keel) => {
        const p = await keel.setStudyConcurrency(id, maxConcurrency);
        console.log(`study ${id}: maxConcurrency ${p.maxConcurrency}`);
      });
    });

  study
    .command('report <id>')
    .description(
      'Write the study report: one self-contained HTML file (optimization history, intermediate values, ' +
        "parallel coordinates, parameter importance, the best trial's checkpoints)",
    )
    .option('-o, --output <file>', 'where to write it (default: <id>-report.html)')
    .action(async (id: string, opts: { output?: string }) => {
      const file = path.resolve(opts.output ?? `${id}-report.html`);
      const html = await withClient((keel) => keel.studyReport(id));
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(file, html);
      console.log(`wrote ${file}`);
    });
}

async function watchStudy(keel: KeelClient, id: string, opts: { interval?: number; plain?: boolean }): Promise<void> {
  // A terminal of unknown size (rows 0) would show nothing: plain lines there too.
  const live = process.stdout.isTTY && (process.stdout.rows ?? 0) > 0 && !opts.plain;
  let last: StudyProgress | undefined;
  for await (const p of keel.watchStudy(id, { intervalMs: opts.interval ?? 1000 })) {
    if (live) logUpdate(studyFrame(p, Date.now()).join('\n'));
    else for (const line of studyChanges(last, p)) console.log(line);
    last = p;
  }
  if (live) logUpdate.done();
  if (last?.status === 'failed') throw new CliError(`study ${id} failed: ${last.stopReason}`, exitCodes.failed);
}

export function registerCheckpointCommands(program: Command): void {
  const checkpoints = program.command('checkpoints').description("List and download a job's checkpoints");

  checkpoints
    .command('ls <job>')
    .description("List a job's checkpoints: step, state, size, sha256 (failed ones with their reason)")
    .option('--json', 'print the rows as JSON')
    .action(async (job: string, opts: JsonOption) => {
      const rows = await withClient((keel) => keel.listCheckpoints(job));
      if (opts.json) printJson(rows);
      else printCheckpoints(rows);
    });

  checkpoints
    .command('download <job>')
    .description('Download a committed checkpoint (the newest, or --step) and verify every file by sha256')
    .option('--step <n>', 'the step to download', parseCount)
    .option('--dest <dir>', 'where to put it (default: ./<job>-step-<N>)')
    .option('--json', 'print what was downloaded as JSON')
    .action(async (job: string, opts: JsonOption & { step?: number; dest?: string }) => {
      await withClient(async (keel) => {
        // The newest committed step names the default folder; downloadCheckpoint checks it again.
        const newest = (await keel.listCheckpoints(job)).filter((c) => c.status === 'committed').at(-1);
        const step = opts.step ?? newest?.step;
        const dest = path.resolve(opts.dest ?? `${job}-step-${step ?? 'none'}`);
        const got = await keel.downloadCheckpoint(job, { dest, ...(step === undefined ? {} : { step }) });
        if (opts.json) printJson({ jobId: job, step: got.checkpoint.step, dest, files: got.files });
        else {
          console.log(`downloaded step ${got.checkpoint.step} of job ${job} to ${dest} (sha256 verified):`);
          for (const f of got.files) console.log(`  ${f.path}  ${f.bytes} bytes  ${f.sha256.slice(0, 16)}…`);
        }
      });
    });
}

function printCheckpoints(rows: Checkpoint[]): void {
  if (rows.length === 0) {
    console.log('no checkpoints yet');
    return;
  }
  const table = rows.map((c) => [
    String(c.step),
    c.status + (c.isBest ? ' (best)' : ''),
    String(c.bytes),
    c.sha256 ? `${c.sha256.slice(0, 12)}…` : '-',
    Object.entries(c.metrics)
      .map(([k, v]) => `${k}=${num(v)}`)
      .join(' '),
    c.failureReason ?? c.uri,
  ]);
  const header = ['step', 'state', 'bytes', 'sha256', 'metrics', 'uri / reason'];
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => (r[i] as string).length)));
  for (const row of [header, ...table]) {
    console.log(row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] as number))).join('  '));
  }
}
