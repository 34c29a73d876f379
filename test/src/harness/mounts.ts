// Tests that need a small filesystem of their own (a full disk, staging by copy) mount a tmpfs.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Why a tmpfs cannot be mounted here (not root, or a sandbox that forbids it); undefined if it can. */
export function tmpfsRefused(): string | undefined {
  const probe = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'pipe' });
    execFileSync('umount', [probe], { stdio: 'pipe' });
    return undefined;
  } catch (err) {
    return String((err as { stderr?: Buffer }).stderr ?? err).trim();
  } finally {
    fs.rmSync(probe, { recursive: true, force: true });
  }
}
