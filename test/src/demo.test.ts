// The README's demo command, minus its bootstrap: embedded dev server + worker, a smoke workflow,
// then a real training job of the example MLP whose checkpoints land in the demo's home.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { groupAlive } from '@keel/client/processes';
import getPort from 'get-port';
import { expect, test } from 'vitest';

test('the demo runs a workflow and a training job through its own dev server and worker, then stops both', async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-demo-'));
  const [port, uiPort] = [await getPort(), await getPort()];
  const args = ['scripts/demo.ts', '--port', String(port), '--ui-port', String(uiPort), '--home', home, '--no-wait'];
  const { status, stdout, stderr } = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 180_000 });
  expect(stderr).toBe('');
  expect(status).toBe(0);
  expect(stdout).toMatch(/demo: result: .*"message":"hello from keel"/);
  expect(stdout).toMatch(/demo: job completed: step 2000, final metrics \{.*"val_acc":0\.9/);
  expect(stdout).toContain('4 checkpoints committed');
  expect(stdout).toContain(
    `see them in the Temporal UI: http://127.0.0.1:${uiPort}/namespaces/default/workflows/keel-demo-smoke-`,
  );
  // Retention kept the newest 3 and the best; their files are in the demo's local storage.
  const stored = fs.readdirSync(path.join(home, 'checkpoints'), { recursive: true }) as string[];
  expect(stored.filter((f) => f.endsWith('weights.f64')).length).toBeGreaterThanOrEqual(3);
  const serverPid = Number(stdout.match(/Temporal dev server ready \(pid (\d+)\)/)?.[1]);
  expect(serverPid).toBeGreaterThan(0);
  expect(groupAlive(serverPid)).toBe(false);
  fs.rmSync(home, { recursive: true, force: true });
});
