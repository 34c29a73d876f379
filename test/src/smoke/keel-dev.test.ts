// `keel dev` as a person runs it: the real CLI, the real dev server and UI, a browser, Ctrl-C.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectClient } from '@keel/client';
import { temporalAnswers } from '@keel/client/dev';
import {
  groupAlive,
  isListening,
  signalGroup,
  spawnManaged,
  stopManaged,
  waitUntilReady,
} from '@keel/client/processes';
import { KEEL_TASK_QUEUE, smokeCheck } from '@keel/workflows';
import { keelSearchAttributes } from '@keel/workflows/search-attributes';
import { Connection } from '@temporalio/client';
import getPort from 'get-port';
import { chromium } from 'playwright-core';
import { afterEach, describe, expect, inject, test } from 'vitest';

const cli = path.resolve('client/src/cli.ts');
const artifacts = path.resolve('.keel/test-artifacts');
const running: KeelDev[] = [];

// A test that failed midway still leaves nothing running: Ctrl-C first, then force, and the dev
// server too (it runs in its own process group, so it would outlive a killed keel dev).
afterEach(async () => {
  for (const dev of running.splice(0)) {
    const stopped = await Promise.race([dev.stop('SIGINT'), sleep(30_000)]);
    if (!stopped) await dev.stop('SIGKILL');
    const serverPid = dev.serverPid();
    if (serverPid) signalGroup(serverPid, 'SIGKILL');
  }
});

describe('keel dev', () => {
  test('starts a dev server with its UI and a worker; Ctrl-C stops them; state survives a restart', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-dev-'));
    const [port, uiPort] = [await getPort(), await getPort()];
    const args = ['--port', String(port), '--ui-port', String(uiPort), '--home', home];
    const dev = startKeelDev(args);
    await dev.waitFor(/ready; press Ctrl-C/);
    const uiUrl = dev.match(/Temporal UI: (\S+)/)?.[1];
    expect(uiUrl).toBe(`http://127.0.0.1:${uiPort}`);
    const serverPid = dev.serverPid() as number;
    expect(groupAlive(serverPid)).toBe(true);

    // The worker that keel dev started serves the keel task queue.
    const address = `127.0.0.1:${port}`;
    const client = await connectClient({ connectionOptions: { address }, namespace: 'default' });
    const workflowId = `keel-dev-smoke-${Date.now()}`;
    const result = await client.workflow.execute(smokeCheck, {
      taskQueue: KEEL_TASK_QUEUE,
      workflowId,
      args: [{ message: 'via keel dev' }],
    });
    expect(result.worker.pid).toBe(dev.pid);

    // The UI answers over HTTP, and a browser shows the namespace and the workflow.
    const res = await fetch(`${uiUrl}/namespaces/default/workflows`);
    expect(res.status).toBe(200);
    const page = await screenshotUi(`${uiUrl}/namespaces/default/workflows`, workflowId, 'temporal-ui.png');
    expect(page.inputs).toContain('default'); // the namespace picker
    expect(page.text).toContain(workflowId);

    // Ctrl-C: the worker and the server it started stop; the command exits cleanly.
    const exit = await dev.stop('SIGINT');
    expect(exit).toEqual({ code: 0, signal: null });
    expect(dev.output()).toContain('Temporal dev server stopped');
    expect(groupAlive(serverPid)).toBe(false);
    expect(await isListening('127.0.0.1', port)).toBe(false);

    // Started again on the same home: the workflow is still there (state in home/temporal.db).
    const again = startKeelDev([...args, '--no-worker']);
    await again.waitFor(/ready; press Ctrl-C/);
    const client2 = await connectClient({ connectionOptions: { address }, namespace: 'default' });
    const description = await client2.workflow.getHandle(workflowId).describe();
    expect(description.status.name).toBe('COMPLETED');
    await client.connection.close();
    await client2.connection.close();
    expect(await again.stop('SIGINT')).toEqual({ code: 0, signal: null });
    fs.rmSync(home, { recursive: true, force: true });
  });

  test('reuses a Temporal server that is already listening, and leaves it running on Ctrl-C', async () => {
    const { address } = inject('services').temporal;
    const port = address.split(':')[1] as string;
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-dev-'));
    const dev = startKeelDev(['--port', port, '--ui-port', String(await getPort()), '--home', home]);
    await dev.waitFor(/ready; press Ctrl-C/);
    expect(dev.output()).toContain(`reusing the Temporal server already listening on 127.0.0.1:${port}`);
    expect(dev.output()).not.toContain('starting the Temporal dev server');

    expect(await dev.stop('SIGINT')).toEqual({ code: 0, signal: null });
    expect(await temporalAnswers(address)).toBe(true);
    expect(fs.existsSync(path.join(home, 'temporal.db'))).toBe(false);
    fs.rmSync(home, { recursive: true, force: true });
  });
  test("registers keel's search attributes on a reused server that lacks them", async () => {
    const port = await getPort();
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-dev-'));
    // A bare dev server, as someone might already run: no keel search attributes.
    const bare = spawnManaged(
      'bare Temporal dev server',
      process.env.KEEL_TEMPORAL_BIN as string,
      ['server', 'start-dev', '--headless', '--ip', '127.0.0.1', '--port', String(port), '--log-level', 'error'],
      { logFile: path.join(home, 'bare.log') },
    );
    const address = `127.0.0.1:${port}`;
    try {
      await waitUntilReady(bare, () => temporalAnswers(address));
      const dev = startKeelDev(['--port', String(port), '--home', home, '--no-worker']);
      await dev.waitFor(/ready; press Ctrl-C/);
      expect(dev.output()).toContain(
        `registered search attributes: ${keelSearchAttributes.map((k) => k.name).join(', ')}`,
      );
      expect(await dev.stop('SIGINT')).toEqual({ code: 0, signal: null });

      const connection = await Connection.connect({ address });
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
      await connection.close();
      expect(Object.keys(customAttributes ?? {})).toEqual(
        expect.arrayContaining(keelSearchAttributes.map((k) => k.name)),
      );
      expect(await temporalAnswers(address)).toBe(true); // still running: keel dev did not start it
    } finally {
      await stopManaged(bare);
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('keel dev refuses what it cannot do, and says how to fix it', () => {
  test('a port held by something that is not Temporal', async () => {
    const squatter = net.createServer((socket) => socket.on('error', () => {})); // accepts, never answers
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const port = (squatter.address() as net.AddressInfo).port;
    try {
      const dev = startKeelDev(['--port', String(port), '--home', os.tmpdir()]);
      expect(await dev.exit()).toEqual({ code: 1, signal: null });
      expect(dev.output()).toMatch(
        new RegExp(`keel: port 127.0.0.1:${port} is in use, but it is not a Temporal server`),
      );
    } finally {
      squatter.close();
    }
  });

  test('no Temporal CLI', async () => {
    const port = await getPort();
    const env = { ...process.env, KEEL_TEMPORAL_BIN: '/nonexistent/temporal' };
    const dev = startKeelDev(['--port', String(port), '--home', os.tmpdir()], env);
    expect(await dev.exit()).toEqual({ code: 1, signal: null });
    expect(dev.output()).toContain("keel: the Temporal CLI at '/nonexistent/temporal' is not an executable file.");
    expect(dev.output()).toContain("Fix: run 'npm run setup'");
    expect(await isListening('127.0.0.1', port)).toBe(false);
  });
});

interface KeelDev {
  pid: number;
  output(): string;
  match(re: RegExp): RegExpMatchArray | null;
  /** Pid of the dev server this keel dev said it started. */
  serverPid(): number | undefined;
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>;
  stop(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Waits for the command to end by itself. */
  exit(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startKeelDev(args: string[], env: NodeJS.ProcessEnv = process.env): KeelDev {
  // Its own process group, as in a terminal: Ctrl-C is a SIGINT to that group.
  const child: ChildProcess = spawn(process.execPath, [cli, 'dev', ...args], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const dev: KeelDev = {
    pid: child.pid as number,
    output: () => text,
    match: (re) => text.match(re),
    serverPid: () => {
      const pid = text.match(/Temporal dev server ready \(pid (\d+)\)/)?.[1];
      return pid ? Number(pid) : undefined;
    },
    async waitFor(re, timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      while (!re.test(text)) {
        if (child.exitCode !== null) throw new Error(`keel dev exited (${child.exitCode}) before ${re}:\n${text}`);
        if (Date.now() > deadline) throw new Error(`keel dev did not print ${re} in time:\n${text}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async stop(signal) {
      if (child.exitCode === null && child.signalCode === null) signalGroup(child.pid as number, signal);
      return dev.exit();
    },
    async exit() {
      const [code, sig] = await exited;
      return { code, signal: sig };
    },
  };
  running.push(dev);
  return dev;
}

/** Opens the page in headless Chromium (Debian's), waits for `text`, saves a screenshot, and
 *  returns the rendered text and the values of the page's inputs. */
async function screenshotUi(url: string, text: string, file: string): Promise<{ text: string; inputs: string[] }> {
  const executablePath = process.env.KEEL_CHROMIUM_BIN;
  if (!executablePath) throw new Error("KEEL_CHROMIUM_BIN is not set. Fix: run the tests with 'npm test'.");
  const browser = await chromium.launch({
    executablePath,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(url);
    await page.getByText(text).first().waitFor({ timeout: 60_000 });
    fs.mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: path.join(artifacts, file) });
    return {
      // biome-ignore lint/performance/useDomNodeTextContent: the rendered text is what a person sees
      text: await page.locator('body').innerText(),
      inputs: await page
        .locator('input')
        .evaluateAll((els) => els.map((el) => (el as unknown as { value: string }).value)),
    };
  } finally {
    await browser.close();
  }
}
