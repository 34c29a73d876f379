// The README's demo command, minus its bootstrap: embedded dev server + worker, a smoke workflow,
// then a real HPO study of the example MLP whose trials' checkpoints land in the demo's home; and
// the same with --chaos, whose worker is killed with kill -9 midway and started again.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { groupAlive } from '@keel/client/processes';
import getPort from 'get-port';
import { expect, test } from 'vitest';
import { liveProcess } from './harness/processes.ts';

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

test('demo --chaos kills its worker with kill -9 midway, restarts it, and the study finishes with nothing lost', async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-demo-chaos-'));
  const [port, uiPort] = [await getPort(), await getPort()];
  const args = ['scripts/demo.ts', '--port', String(port), '--ui-port', String(uiPort), '--home', home, '--no-wait'];
  const { status, stdout, stderr } = spawnSync(process.execPath, [...args, '--chaos'], {
    encoding: 'utf8',
    timeout: 240_000,
  });
  expect(stderr).toBe('');
  expect(status).toBe(0);
  // The kill, midway, and the restart.
  const killed = stdout.match(
    /demo: chaos: killed the worker \(pid (\d+)\) with kill -9, and its (\d+) trainer\(s\) with it \(trials ([\d, ]+)\), at (\d)\/8 trials done/,
  );
  expect(killed, stdout).not.toBeNull();
  const workerPid = Number(killed?.[1]);
  const hit = String(killed?.[3]).split(', ').map(Number);
  expect(Number(killed?.[2])).toBeGreaterThan(0); // trainers went down with it
  expect(Number(killed?.[4])).toBeLessThan(8); // midway
  const restarted = stdout.match(/demo: chaos: worker restarted \(pid (\d+)\)/);
  const restartedPid = Number(restarted?.[1]);
  expect(restartedPid).toBeGreaterThan(0);
  expect(restartedPid).not.toBe(workerPid);
  // The study carried on to the end: every trial done.
  const summary = stdout.match(/demo: study completed: (\d+) completed, (\d+) pruned by ASHA/);
  expect(Number(summary?.[1]) + Number(summary?.[2])).toBe(8);
  // Each trial that was hit is accounted for: one that had a committed checkpoint went on from it
  // (or from a newer one, committed from what it had staged), one that had none started over.
  const resumes = [
    ...stdout.matchAll(
      /demo: chaos: {3}trial (\d+): killed (.*), (resumed from step (\d+)|started over[^,]*|ended without another attempt), (\w+) at step (\d+)/g,
    ),
  ];
  expect(resumes.map((m) => Number(m[1])).sort(), stdout).toEqual([...hit].sort());
  for (const m of resumes) {
    expect(['completed', 'pruned'], stdout).toContain(m[5]);
    const committed = /committed up to step (\d+)/.exec(m[2] as string)?.[1];
    if (m[3]?.startsWith('ended')) continue; // pruned by the study before its next attempt
    if (committed) expect(Number(m[4]), stdout).toBeGreaterThanOrEqual(Number(committed));
    else expect(m[3], stdout).toMatch(/^(started over|resumed from)/);
  }
  // Nothing lost: every acked checkpoint committed (re-read, sha256 equal) or deleted by retention.
  const ledger = stdout.match(
    /demo: chaos: checkpoints: (?<acked>\d+) acked; (?<committed>\d+) committed and re-read with sha256 equal, (?<collected>\d+) deleted by retention \(keepLast\), (?<failed>\d+) failed with a reason; (?<lost>\d+) lost/,
  );
  expect(ledger, stdout).not.toBeNull();
  const count = (name: string) => Number(ledger?.groups?.[name]);
  expect(count('lost')).toBe(0);
  expect(count('acked')).toBeGreaterThan(8);
  expect(count('committed') + count('collected') + count('failed')).toBe(count('acked'));
  expect(stdout).toContain('demo: chaos: nothing was lost');
  // Neither worker process is left, nor the dev server.
  for (const pid of [workerPid, restartedPid]) expect(liveProcess(pid), `worker ${pid}`).toBe(false);
  const serverPid = Number(stdout.match(/Temporal dev server ready \(pid (\d+)\)/)?.[1]);
  expect(groupAlive(serverPid)).toBe(false);
  fs.rmSync(home, { recursive: true, force: true });
}, 300_000);
