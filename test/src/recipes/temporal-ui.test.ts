// What a person sees of a running study in the Temporal UI: a dev server with its Web UI, a keel
// worker, a study of the example MLP, and its workflow page in headless Chromium (Debian's). The
// study's summary and current details are rendered markdown, each in an iframe of the page's
// User Metadata tab; the test reads them as the browser shows them and checks them against the
// study's progress query.
import fs from 'node:fs';
import path from 'node:path';
import { hpoStudy, KEEL_TASK_QUEUE, type StudySpecInput, stopStudySignal, studyProgressQuery } from '@keel/workflows';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, describe, expect, test } from 'vitest';
import { useKeelServer } from './keel-server.ts';

const server = useKeelServer({ ui: true });
const artifacts = path.resolve('.keel/test-artifacts');
let browser: Browser | undefined;

afterAll(async () => {
  await browser?.close();
});

/** examples/mlp/study.json, shortened: no pruner, so trials complete; 20 trials of ~4 s, 2 at a
 *  time, so the study is still running long after its first trial completed. */
function studySpec(): StudySpecInput {
  const example = JSON.parse(fs.readFileSync(path.resolve('examples/mlp/study.json'), 'utf8')) as StudySpecInput;
  return {
    ...example,
    nTrials: 20,
    maxConcurrency: 2,
    pruner: { type: 'none' },
    trial: { ...example.trial, params: { ...example.trial.params, steps: 400, stepDelayMs: 10 } },
  };
}

/** The text of every rendered-markdown frame on the page (the UI renders markdown in iframes). */
async function renderedMarkdown(page: Page): Promise<string[]> {
  const frames = page.frames().filter((f) => new URL(f.url()).pathname === '/render');
  return Promise.all(
    frames.map((f) =>
      f
        .locator('body')
        // biome-ignore lint/performance/useDomNodeTextContent: the rendered text is what a person sees
        .innerText({ timeout: 5_000 })
        .catch(() => ''),
    ),
  );
}

describe('the Temporal UI', () => {
  test("shows a running study's summary and current details: counts and the top trials", async () => {
    const uiUrl = server.temporal.uiUrl as string;
    expect(uiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const summary = 'MLP search, watched in the UI';
    const study = await server.client.workflow.start(hpoStudy, {
      taskQueue: KEEL_TASK_QUEUE,
      workflowId: `ui-study-${Date.now()}`,
      args: [studySpec()],
      staticSummary: summary, // keel sets no summary itself; the starter may (temporal: --static-summary)
    });
    // Open the page once a trial has completed, so the top-trials table has rows.
    await expect
      .poll(async () => (await study.query(studyProgressQuery)).counts.completed, { timeout: 90_000, interval: 500 })
      .toBeGreaterThanOrEqual(1);

    const executablePath = process.env.KEEL_CHROMIUM_BIN;
    if (!executablePath) throw new Error("KEEL_CHROMIUM_BIN is not set. Fix: run the tests with 'npm test'.");
    browser = await chromium.launch({
      executablePath,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'],
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(`${uiUrl}/namespaces/default/workflows/${study.workflowId}`);
    await page.getByRole('tab', { name: 'User Metadata' }).click();
    await page.getByText('Current Details', { exact: true }).waitFor({ timeout: 30_000 });

    // Wait for both frames to render: the summary, and the details with at least one table row.
    let details = '';
    await expect
      .poll(
        async () => {
          const texts = await renderedMarkdown(page);
          details = texts.find((t) => /\bdone\b/.test(t)) ?? '';
          return { summary: texts.includes(summary), row: /learningRate=/.test(details) };
        },
        { timeout: 60_000, interval: 500 },
      )
      .toEqual({ summary: true, row: true });
    fs.mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: path.join(artifacts, 'temporal-ui-study.png') });
    // The workflow's own status badge, beside its id.
    await expect.poll(() => page.getByText('Running', { exact: true }).first().isVisible()).toBe(true);

    // What the details say, as the browser shows them.
    const head = /running · (\d+) of (\d+) done · running (\d+) \(max (\d+)\)/.exec(details);
    expect(head, details).not.toBeNull();
    const [done, nTrials, running, max] = (head as RegExpExecArray).slice(1).map(Number);
    expect({ nTrials, max }).toEqual({ nTrials: 20, max: 2 });
    expect(running).toBeLessThanOrEqual(2);
    const counts = /completed (\d+) · pruned (\d+) · failed (\d+) · stopped (\d+)/.exec(details);
    expect(counts, details).not.toBeNull();
    const [completed, pruned, failed, stopped] = (counts as RegExpExecArray).slice(1).map(Number);
    expect({ pruned, failed, stopped }).toEqual({ pruned: 0, failed: 0, stopped: 0 });
    expect(completed).toBe(done);
    expect(completed).toBeGreaterThanOrEqual(1);

    // The table: header, then the best completed trials (at most 5), best first.
    const lines = details.split('\n').map((l) => l.trim());
    const header = lines.findIndex((l) => /^trial\s+value\s+params$/.test(l));
    expect(header, details).toBeGreaterThanOrEqual(0);
    const rows = lines
      .slice(header + 1)
      .map((l) => /^(\d+)\s+(\S+)\s+(.+)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ number: Number(m[1]), value: Number(m[2]), params: m[3] as string }));
    expect(rows).toHaveLength(Math.min(5, completed as number));
    const values = rows.map((r) => r.value);
    expect(values).toEqual([...values].sort((a, b) => a - b)); // minimize: the lowest first

    // Each row is a completed trial of the study, with its value and params as the query has them.
    const progress = await study.query(studyProgressQuery);
    expect(progress.counts.completed).toBeGreaterThanOrEqual(completed as number);
    for (const row of rows) {
      const trial = progress.trials.find((t) => t.number === row.number);
      if (!trial) throw new Error(`the UI shows trial ${row.number}, which the study does not have`);
      expect(trial.state).toBe('completed');
      expect(row.value).toBe(Number((trial.value as number).toPrecision(4)));
      const shown = Object.fromEntries(row.params.split(', ').map((kv) => kv.split('=') as [string, string])) as Record<
        string,
        string
      >;
      expect(Object.keys(shown).sort()).toEqual(['hiddenSize', 'learningRate', 'momentum']);
      for (const [k, v] of Object.entries(shown)) {
        expect(Number(v)).toBe(Number((trial.params[k] as number).toPrecision(4)));
      }
    }

    // Done looking: stop the study (its running trials save and stop) before the worker goes.
    await study.signal(stopStudySignal, { reason: 'seen in the UI' });
    expect((await study.result()).status).toBe('stopped');
  });
});
