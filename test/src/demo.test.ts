// The README's demo command, minus its bootstrap: embedded dev server + worker, a smoke workflow,
// then a real HPO study of the example MLP whose trials' checkpoints land in the demo's home.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { groupAlive } from '@keel/client/processes';
import getPort from 'get-port';
import { expect, test } from 'vitest';

test('the demo runs a workflow and an 8-trial study through its own dev server and worker, then stops both', async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-demo-'));
  const [port, uiPort] = [await getPort(), await getPort()];
  const args = ['scripts/demo.ts', '--port', String(port), '--ui-port', String(uiPort), '--home', home, '--no-wait'];
  const { status, stdout, stderr } = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 180_000 });
  expect(stderr).toBe('');
  expect(status).toBe(0);
  expect(stdout).toMatch(/demo: result: .*"message":"hello from keel"/);
  const summary = stdout.match(/demo: study completed: (\d+) completed, (\d+) pruned by ASHA/);
  expect(summary).not.toBeNull();
  expect(Number(summary?.[1]) + Number(summary?.[2])).toBe(8);
  expect(stdout).toMatch(/demo: {3}best: trial \d+, val_loss \d\.\d+, params \{"learningRate":/);
  expect(stdout).toContain(
    `see them in the Temporal UI: http://127.0.0.1:${uiPort}/namespaces/default/workflows/keel-demo-smoke-`,
  );
  // Every trial's checkpoints are in the demo's local storage.
  const stored = fs.readdirSync(path.join(home, 'checkpoints'), { recursive: true }) as string[];
  const trialsWithWeights = new Set(stored.filter((f) => f.endsWith('weights.f64')).map((f) => f.split(path.sep)[0]));
  expect(trialsWithWeights.size).toBe(8);
  const serverPid = Number(stdout.match(/Temporal dev server ready \(pid (\d+)\)/)?.[1]);
  expect(serverPid).toBeGreaterThan(0);
  expect(groupAlive(serverPid)).toBe(false);
  fs.rmSync(home, { recursive: true, force: true });
});
