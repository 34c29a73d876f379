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
    // The bootstrap also looks in /usr/local/go/bin: hide that folder behind an empty one, in a
    // mount namespace of this command alone (unshare -rm works without privileges).
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-no-go-'));
    const hideGo = `[ ! -d /usr/local/go ] || mount --bind ${empty} /usr/local/go || exit 97; exec bash ${bootstrap}`;
    // Should this run get further than it must, it would rewrite .keel/tools.env for its own cache.
    const toolsEnv = fs.readFileSync('.keel/tools.env');
    const result = spawnSync('unshare', ['-rm', 'bash', '-c', hideGo], { env, encoding: 'utf8', timeout: 300_000 });
    fs.writeFileSync('.keel/tools.env', toolsEnv);
    const { status, stderr } = result;
    fs.rmSync(cache, { recursive: true, force: true });
    fs.rmSync(empty, { recursive: true, force: true });
    if (result.error || status === 97) throw new Error(`could not hide Go with unshare -rm: ${result.error ?? stderr}`);

    expect(status).toBe(1);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^bootstrap: step 'temporal' failed: Go is not installed .*looked on PATH and in \/usr\/local\/go\/bin.*Fix: install Go/,
    );
  });

  test('an unknown option is refused by name', () => {
    const { status, stderr } = runBootstrap(['--tset'], process.env);
    expect(status).toBe(2);
    expect(stderr).toContain("unknown option '--tset'");
  });
});
