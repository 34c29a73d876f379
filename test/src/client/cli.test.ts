// The `keel` CLI as a person or a script runs it: a real process (`node client/src/cli.ts`) against
// the real dev server, worker and database. Output is read as text or --json, and exit codes
// are checked: 0 ok, 1 failed, 2 bad input, 3 not found, 4 Temporal unreachable.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, inject, test } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { useInProcessWorker } from '../harness/in-process-worker.ts';
import { clientEnv, mlpJob, mlpStudy } from './fixtures/specs.ts';

const services = inject('services');
const worker = useInProcessWorker('cli', services.temporal);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function keel(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.resolve('client/src/cli.ts'), ...args],
      { env: { ...process.env, ...clientEnv(worker), ...env }, cwd: tmp },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }),
    );
  });
}

function writeSpec(name: string, spec: unknown): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, name.endsWith('.json') ? JSON.stringify(spec) : toYaml(spec));
  return file;
}

const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('keel study', () => {
  test('start from YAML, watch to the end in plain lines, status, report', async () => {
    const study = mlpStudy(worker, { nTrials: 3 });
    study.trial.params = { ...study.trial.params, stepDelayMs: 10 }; // ~2 s a trial: watch sees them run
    const spec = writeSpec('study.yaml', study);
    const started = await keel(['study', 'start', spec, '--json']);
    expect(started.code).toBe(0);
    const { studyId } = JSON.parse(started.stdout);

    const watched = await keel(['study', 'watch', studyId, '--interval', '200']);
    expect(watched.code).toBe(0);
    const lines = watched.stdout.trim().split('\n');
    // A trial is shown running if a read caught it running; the third starts after watch began.
    expect(lines.some((l) => l.startsWith('trial 2 running: learningRate='))).toBe(true);
    for (const n of [0, 1, 2]) {
      expect(lines.some((l) => new RegExp(`^trial ${n} completed at step 200: val_loss \\d`).test(l))).toBe(true);
    }
    expect(lines.at(-1)).toMatch(new RegExp(`^study ${studyId} completed: 3/3 done \\(completed 3,`));

    const status = await keel(['study', 'status', studyId, '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ studyId, status: 'completed', counts: { completed: 3 } });

    const report = await keel(['study', 'report', studyId, '-o', 'r/report.html']);
    expect(report.code).toBe(0);
    const html = fs.readFileSync(path.join(tmp, 'r/report.html'), 'utf8');
    for (const chart of ['history', 'intermediate', 'parallel', 'importance'])
      expect(html).toContain(`data-chart="${chart}"`);
    expect(html).toContain(studyId);
  });

  test('stop answers at once, and watch ends with the study stopped', async () => {
    const spec = mlpStudy(worker, { nTrials: 50 });
    spec.trial.params = { ...spec.trial.params, steps: 100_000, stepDelayMs: 5 };
    const { studyId } = JSON.parse((await keel(['study', 'start', writeSpec('long.json', spec), '--json'])).stdout);
    const stopped = await keel(['study', 'stop', studyId, '--reason', 'from the cli']);
    expect(stopped).toMatchObject({ code: 0 });
    expect(stopped.stdout).toMatch(new RegExp(`^study ${studyId} is stopping`));
    const watched = await keel(['study', 'watch', studyId]);
    expect(watched.code).toBe(0);
    expect(watched.stdout.trim().split('\n').at(-1)).toMatch(/ stopped: .*stop reason: from the cli$/);
  });

  test('a study that fails makes watch exit 1 with the reason', async () => {
    const spec = mlpStudy(worker, {
      nTrials: 3,
      maxConcurrency: 1,
      failures: { retriesPerTrial: 0, maxFailedTrials: 1 },
      trial: {
        command: ['node', '-e', 'process.exit(3)'],
        gpus: 0,
        gpuTaskQueue: `${worker.name}-gpu`,
        failures: { maxFailures: 0 },
      },
    });
    const { studyId } = JSON.parse((await keel(['study', 'start', writeSpec('failing.json', spec), '--json'])).stdout);
    const watched = await keel(['study', 'watch', studyId, '--interval', '200']);
    expect(watched.code).toBe(1);
    expect(watched.stderr).toMatch(new RegExp(`keel: study ${studyId} failed: .*1 trials failed`));
  });
});

describe('keel job and keel checkpoints', () => {
  test('start, status, stop, ls and a verified download', async () => {
    const id = `cli-job-${Date.now()}`;
    const spec = writeSpec('job.json', mlpJob(worker, { steps: 100_000, stepDelayMs: 5 }));
    expect((await keel(['job', 'start', spec, '--id', id])).stdout).toContain(`started job ${id}`);
    let committed = 0;
    while (committed === 0) {
      const status = JSON.parse((await keel(['job', 'status', id, '--json'])).stdout);
      committed = status.checkpoints.committed;
    }
    expect((await keel(['job', 'stop', id, '--reason', 'done'])).code).toBe(0);
    const watched = await keel(['job', 'watch', id]);
    expect(watched.code).toBe(0);
    expect(watched.stdout.trim().split('\n').at(-1)).toMatch(new RegExp(`^job ${id} stopped: step \\d+`));

    const rows = JSON.parse((await keel(['checkpoints', 'ls', id, '--json'])).stdout);
    const newest = rows.filter((r: { status: string }) => r.status === 'committed').at(-1);
    const table = (await keel(['checkpoints', 'ls', id])).stdout;
    expect(table.split('\n')[0]).toMatch(/^step +state +bytes +sha256 +metrics +uri \/ reason$/);
    expect(table).toContain(`${newest.step} `);

    const download = await keel(['checkpoints', 'download', id]);
    expect(download.code).toBe(0);
    expect(download.stdout).toContain(`downloaded step ${newest.step} of job ${id}`);
    for (const file of newest.files) {
      const got = path.join(tmp, `${id}-step-${newest.step}`, file.path);
      expect(sha256(got)).toBe(file.sha256);
      expect(sha256(got)).toBe(sha256(fileURLToPath(`${newest.uri}/${file.path}`)));
    }
  });
});

describe('errors a person can act on', () => {
  test('--help exits 0; usage errors exit 2', async () => {
    const help = await keel(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['dev', 'worker', 'job', 'study', 'checkpoints']) expect(help.stdout).toContain(command);
    expect(help.stdout).toContain('Exit codes:');
    expect((await keel(['study', 'watch'])).code).toBe(2);
    expect((await keel(['study', 'nope'])).code).toBe(2);
    expect((await keel(['checkpoints', 'download', 'x', '--step', 'ten'])).code).toBe(2);
  });

  test('a missing or invalid spec file exits 2 and names the problem', async () => {
    const missing = await keel(['study', 'start', 'nowhere.yaml']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^keel: cannot read spec file nowhere\.yaml/);

    const bad = writeSpec('bad.yaml', {
      ...mlpStudy(worker),
      nTrials: -1,
      objective: { metric: 'loss', direction: 'up' },
    });
    const invalid = await keel(['study', 'start', bad]);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain('invalid study spec');
    expect(invalid.stderr).toMatch(/- nTrials: /);
    expect(invalid.stderr).toMatch(/- objective\.direction: /);

    fs.writeFileSync(path.join(tmp, 'broken.json'), '{"space": ');
    const broken = await keel(['job', 'start', 'broken.json']);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain('spec file broken.json is not valid JSON');
  });

  test('unknown ids exit 3; an unreachable Temporal exits 4', async () => {
    const unknown = await keel(['study', 'status', 'no-such-study']);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr.trim()).toBe("keel: no study 'no-such-study'");
    expect((await keel(['checkpoints', 'ls', 'no-such-job'])).code).toBe(3);

    const down = await keel(['job', 'status', 'x'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(down.code).toBe(4);
    expect(down.stderr).toContain('cannot reach Temporal at 127.0.0.1:1');
  });
});
