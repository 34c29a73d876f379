// Runnable docs (docs/temporal-cli.md, docs/fleet.md): the fenced blocks a doc marks with
// `<!-- recipe: name -->`, taken from the doc and run with bash as a person would run them.
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The doc's blocks of one kind, by name: a fence of `lang` right after `<!-- kind: name -->`. */
export function markedBlocks(markdown: string, kind: string, lang: string): Map<string, string> {
  const pattern = new RegExp(`<!--\\s*${kind}:\\s*([\\w-]+)\\s*-->\\s*\\n\`\`\`${lang}\\n([\\s\\S]*?)\\n\`\`\``, 'g');
  return new Map([...markdown.matchAll(pattern)].map((m) => [m[1] as string, m[2] as string]));
}

/** Every fence of `lang` in the doc, marked or not. */
export function fencedBlocks(markdown: string, lang: string): string[] {
  return [...markdown.matchAll(new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\\n\`\`\``, 'g'))].map((m) => m[1] as string);
}

/** Runs a script with bash, stopping at its first failing command; killed after `timeoutMs`. */
export async function runBash(
  script: string,
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<Ran> {
  const child = spawn('bash', ['-c', `set -eo pipefail\n${script}`], { cwd: options.cwd, env: options.env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Runs a recipe again until `ok` holds for what it printed (a person runs it again, too). */
export async function runUntil(
  name: string,
  run: () => Promise<Ran>,
  ok: (r: Ran) => boolean,
  options: { timeoutMs: number; pauseMs: number },
): Promise<Ran> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const r = await run();
    let passed = false;
    try {
      passed = r.code === 0 && ok(r);
    } catch {}
    if (passed) return r;
    if (Date.now() > deadline) {
      throw new Error(
        `recipe '${name}' never printed what was expected; last run (${r.code}):\n${r.stdout}\n${r.stderr}`,
      );
    }
    await sleep(options.pauseMs);
  }
}
