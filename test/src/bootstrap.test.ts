// The bootstrap behind both README commands: a second run reuses every cached tool, and a missing
// prerequisite stops it with one line that names the step and the fix.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';

const bootstrap = path.resolve('scripts/bootstrap.sh');

function runBootstrap(args: string[], env: NodeJS.ProcessEnv) {
  const result = spawnSync('bash', [bootstrap, ...args], { env, encoding: 'utf8', timeout: 300_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('bootstrap', () => {
  test('a warm run reuses every tool: nothing is built or installed again', () => {
    // The test run itself was bootstrapped with --test, so every tool is already in the cache.
    const { status, stdout, stderr } = runBootstrap(['--test'], process.env);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    for (const step of ['node', 'pnpm', 'temporal', 'minio', 'fake-gcs-server', 's5cmd', 'postgresql', 'chromium']) {
      expect(stdout).toMatch(new RegExp(`^bootstrap: ${step}: (cached|found|using)`, 'm'));
    }
    expect(stdout).not.toMatch(/building|installing|apt-get install/);
    expect(stdout).toMatch(/^bootstrap: ready/m);
  });

  test('without Go, it stops with one line naming the step and the fix', () => {
    // A fresh cache that has Node and pnpm (linked from the real cache) but no Temporal CLI, and a
    // PATH without Go.
    const realCache = process.env.KEEL_CACHE_DIR as string;
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-cache-'));
    fs.mkdirSync(path.join(cache, 'tools'));
    for (const entry of fs.readdirSync(path.join(realCache, 'tools'))) {
      if (entry.startsWith('node@') || entry.startsWith('pnpm@')) {
        fs.symlinkSync(path.join(realCache, 'tools', entry), path.join(cache, 'tools', entry));
      }
    }
    const goDir = path.dirname(spawnSync('bash', ['-c', 'command -v go'], { encoding: 'utf8' }).stdout.trim());
    const PATH = (process.env.PATH ?? '')
      .split(':')
      .filter((dir) => dir !== goDir)
      .join(':');
    const env = { ...process.env, PATH, KEEL_CACHE_DIR: cache, KEEL_TEMPORAL_BIN: '' };
    const { status, stderr } = runBootstrap([], env);
    fs.rmSync(cache, { recursive: true, force: true });

    expect(status).toBe(1);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^bootstrap: step 'temporal' failed: Go is not installed .*Fix: install Go/);
  });

  test('an unknown option is refused by name', () => {
    const { status, stderr } = runBootstrap(['--tset'], process.env);
    expect(status).toBe(2);
    expect(stderr).toContain("unknown option '--tset'");
  });
});
