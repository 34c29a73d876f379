// The study report as a person opens it: seeded into a real SQLite database, loaded, written to a
// file and opened in headless Chromium (Debian's) with the network cut off. The charts must draw
// (every chart has a size and one mark per trial), the page must fetch nothing, and text from the
// database must stay text. The screenshot lands in .keel/test-artifacts/study-report.png.
import fs from 'node:fs';
import path from 'node:path';
import { loadStudyReport, writeStudyReport } from '@keel/client/report';
import {
  createJob,
  createStudy,
  type KeelDatabase,
  markCheckpoint,
  migrateDatabase,
  openDatabase,
  RecordNotFoundError,
  recordCheckpoint,
  recordIntermediateValues,
  recordTrial,
  setBestCheckpoint,
  updateStudy,
  updateTrial,
} from '@keel/db';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type FreshDatabase, freshDatabase } from '../harness/databases.ts';

const artifacts = path.resolve('.keel/test-artifacts');
const studyId = 'report-study';
const studyName = 'lr × optimizer <b>sweep</b> & "friends"';
const injected = '<script>window.injected = true</script><img src=x onerror="window.injected = true">';
const optimizers = ['adam', 'sgd', 'rmsprop'];
const steps = Array.from({ length: 10 }, (_, i) => (i + 1) * 100);

interface Seeded {
  number: number;
  params: { lr: number; layers: number; optimizer: string };
  state: 'completed' | 'pruned' | 'failed';
  final: number;
  reported: number;
}

/** 20 trials: lr decides most of the loss, sgd adds some, layers barely matter. Trials whose
 *  curve is clearly bad at step 300 are pruned there (from trial 5 on, as a pruner would); 13 fails. */
function seedTrials(): Seeded[] {
  return Array.from({ length: 20 }, (_, number) => {
    const lr = 10 ** (-4 + (((number * 7) % 20) / 19) * 3);
    const layers = 1 + ((number * 5) % 8);
    const optimizer = optimizers[number % 3] as string;
    const final = 0.05 + (Math.log10(lr) + 2.5) ** 2 / 5 + (optimizer === 'sgd' ? 0.08 : 0) + layers * 0.002;
    const state = number === 13 ? 'failed' : number >= 5 && final > 0.25 ? 'pruned' : 'completed';
    const reported = state === 'pruned' ? 3 : state === 'failed' ? 4 : steps.length;
    return { number, params: { lr, layers, optimizer }, state, final, reported };
  });
}
const curve = (t: Seeded, step: number) => t.final + 1.2 * Math.exp(-step / 250);

let fresh: FreshDatabase;
let db: KeelDatabase;
const trials = seedTrials();
const best = trials.filter((t) => t.state === 'completed').reduce((a, b) => (b.final < a.final ? b : a));

beforeAll(async () => {
  fresh = await freshDatabase('sqlite', '');
  db = await openDatabase({ url: fresh.url });
  await migrateDatabase(db);
  await createStudy(db, {
    id: studyId,
    name: studyName,
    objective: { metric: 'val_loss', direction: 'minimize' },
    spec: {
      space: {
        lr: { type: 'float', low: 1e-4, high: 0.1, log: true },
        layers: { type: 'int', low: 1, high: 8 },
        optimizer: { type: 'categorical', choices: optimizers },
      },
      nTrials: 20,
    },
  });
  for (const t of trials) {
    const jobId = `job-${t.number}`;
    await recordTrial(db, { studyId, number: t.number, params: t.params, jobId });
    await updateTrial(db, studyId, t.number, { state: 'running', attempts: 1 });
    const values = steps
      .slice(0, t.reported)
      .map((step) => ({ studyId, trialNumber: t.number, step, value: curve(t, step) }));
    await recordIntermediateValues(db, values);
    const last = values[values.length - 1]?.value ?? null;
    if (t.state === 'failed') {
      await updateTrial(db, studyId, t.number, {
        state: 'failed',
        attempt: true,
        error: `trainer exited 1: ${injected}`,
      });
    } else {
      await updateTrial(db, studyId, t.number, { state: t.state, value: last });
    }
  }
  // The best trial's job and its checkpoints: three committed, one whose upload failed.
  const jobId = `job-${best.number}`;
  await createJob(db, { id: jobId, spec: {}, studyId, trialNumber: best.number });
  for (const step of [300, 600, 900, 1000]) {
    const row = await recordCheckpoint(db, {
      jobId,
      step,
      uri: `file:///ckpt/${jobId}/step-${step}`,
      bytes: 1_234_567 + step,
    });
    if (step === 900) await markCheckpoint(db, row.id, 'failed', { reason: `upload gave up: ${injected}` });
    else await markCheckpoint(db, row.id, 'committed', { sha256: step.toString(16).padStart(64, '0') });
    if (step === 1000) await setBestCheckpoint(db, jobId, row.id);
  }
  await updateStudy(db, studyId, { status: 'completed' });
});

afterAll(async () => {
  await db?.close();
  await fresh?.drop();
});

test('an unknown study is a RecordNotFoundError naming the id', async () => {
  const error = await loadStudyReport(db, 'no-such-study').catch((e: unknown) => e);
  expect(error).toBeInstanceOf(RecordNotFoundError);
  expect((error as Error).message).toContain('no-such-study');
});

test('the report loads every trial, its reports and the best trial checkpoints', async () => {
  const report = await loadStudyReport(db, studyId);
  expect(report.study).toMatchObject({ name: studyName, status: 'completed', objective: { metric: 'val_loss' } });
  expect(report.trials.map((t) => t.state)).toEqual(trials.map((t) => t.state));
  expect(report.trials.map((t) => t.intermediate.length)).toEqual(trials.map((t) => t.reported));
  expect(report.bestTrialNumber).toBe(best.number);
  expect(report.checkpoints.map((c) => [c.step, c.status, c.isBest])).toEqual([
    [300, 'committed', false],
    [600, 'committed', false],
    [900, 'failed', false],
    [1000, 'committed', true],
  ]);
});

test('the report draws in headless Chromium without the network', async () => {
  const dir = path.dirname(fresh.url.slice('file:'.length));
  const file = path.join(dir, 'report.html');
  await writeStudyReport(db, studyId, file);

  const executablePath = process.env.KEEL_CHROMIUM_BIN;
  if (!executablePath) throw new Error("KEEL_CHROMIUM_BIN is not set. Fix: run the tests with 'npm test'.");
  const browser = await chromium.launch({
    executablePath,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
    // Anything but the file itself is recorded and refused: the report must need nothing else.
    const fetched: string[] = [];
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith('file:')) return route.continue();
      fetched.push(url);
      return route.abort();
    });
    // A load the page's CSP refuses never reaches the route above; Chromium logs it as an error.
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('console', (message) => message.type() === 'error' && errors.push(message.text()));
    await page.goto(`file://${file}`);

    const completed = trials.filter((t) => t.state === 'completed').length;
    const pruned = trials.filter((t) => t.state === 'pruned').length;
    expect(pruned).toBeGreaterThanOrEqual(3);
    const expected = {
      history: { selector: 'circle[data-trial]', count: completed + pruned },
      intermediate: { selector: 'path.series', count: trials.length },
      parallel: { selector: 'path.line', count: completed },
      importance: { selector: 'rect[data-param]', count: 3 },
    };
    for (const [chart, marks] of Object.entries(expected)) {
      const svg = page.locator(`[data-chart="${chart}"] svg`);
      const box = await svg.boundingBox();
      expect(box?.width, chart).toBeGreaterThan(100);
      expect(box?.height, chart).toBeGreaterThan(40);
      // Every mark has a size and lies inside its chart.
      const rects = await svg.locator(marks.selector).evaluateAll((els) =>
        els.map((el) => {
          const r = (el as unknown as { getBoundingClientRect(): Box }).getBoundingClientRect();
          return { x: r.x, y: r.y, width: r.width, height: r.height };
        }),
      );
      expect(rects, chart).toHaveLength(marks.count);
      const frame = box as Box;
      for (const r of rects) {
        expect(r.width + r.height, chart).toBeGreaterThan(0);
        expect(r.x, chart).toBeGreaterThanOrEqual(frame.x - 1);
        expect(r.y, chart).toBeGreaterThanOrEqual(frame.y - 1);
        expect(r.x + r.width, chart).toBeLessThanOrEqual(frame.x + frame.width + 1);
        expect(r.y + r.height, chart).toBeLessThanOrEqual(frame.y + frame.height + 1);
      }
    }
    expect(await page.locator('[data-chart="intermediate"] path.pruned-end').count()).toBe(pruned);
    // lr decides most of the loss, the optimizer some, layers next to nothing.
    const ranked = await page
      .locator('[data-chart="importance"] rect[data-param]')
      .evaluateAll((els) => els.map((el) => (el as unknown as { dataset: { param: string } }).dataset.param));
    expect(ranked).toEqual(['lr', 'optimizer', 'layers']);
    expect(await page.locator('table[data-table="checkpoints"] tbody tr').count()).toBe(4);
    expect(await page.locator('table[data-table="trials"] tbody tr').count()).toBe(trials.length);

    // Text from the database stays text: nothing it holds became markup or ran.
    expect(await page.locator('h1').textContent()).toBe(studyName);
    expect(await page.locator('script, img, b').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { injected?: boolean }).injected)).toBeUndefined();
    expect(await page.getByText(`trainer exited 1: ${injected}`).count()).toBe(1);

    fs.mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: path.join(artifacts, 'study-report.png'), fullPage: true });
    fs.copyFileSync(file, path.join(artifacts, 'study-report.html'));
    expect(errors).toEqual([]);
    expect(fetched).toEqual([]);
  } finally {
    await browser.close();
  }
});

interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}
