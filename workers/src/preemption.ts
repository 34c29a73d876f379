// Preemption notices: clouds warn before they take a spot instance away (AWS: 2 minutes, GCP: 30
// seconds), which is time for trainers to save. KEEL_PREEMPTION_NOTICE names where the warning
// comes from; when it arrives the worker does what it does on SIGTERM: tell its trainers to save
// and exit, then drain. One of:
//   file:/path/to/flag         the notice is the file appearing (a sidecar or a hook writes it)
//   http(s)://host/path        polled every 5 s; a notice is a 200 whose body is not empty, "false"
//                              or "none" (AWS's spot/instance-action answers 404 until a stop is
//                              scheduled; GCP's instance/preempted answers FALSE, then TRUE)
//   signal:SIGUSR1             a signal sent to the worker (SIGTERM and SIGINT always count)
// KEEL_PREEMPTION_NOTICE_HEADER adds one request header for http(s), e.g. `Metadata-Flavor: Google`.
import fs from 'node:fs';

export interface PreemptionNotice {
  /** What was seen, for the log line. */
  reason: string;
}

export class PreemptionConfigError extends Error {
  override name = 'PreemptionConfigError';
}

const pollMs = { file: 1000, http: 5000 };

/**
 * Starts watching `source` (the value of KEEL_PREEMPTION_NOTICE) and calls `onNotice` once.
 * Returns a function that stops watching.
 */
export function watchPreemptionNotice(
  source: string,
  onNotice: (notice: PreemptionNotice) => void,
  options: { header?: string | undefined } = {},
): () => void {
  let fired = false;
  const fire = (reason: string) => {
    if (fired) return;
    fired = true;
    stop();
    onNotice({ reason });
  };
  let stop: () => void;

  if (source.startsWith('signal:')) {
    const signal = source.slice('signal:'.length) as NodeJS.Signals;
    if (!/^SIG[A-Z0-9]+$/.test(signal)) {
      throw new PreemptionConfigError(`KEEL_PREEMPTION_NOTICE: '${signal}' is not a signal name (e.g. signal:SIGUSR1)`);
    }
    const handler = () => fire(`${signal} received`);
    process.on(signal, handler);
    stop = () => process.off(signal, handler);
  } else if (source.startsWith('file:')) {
    const file = source.startsWith('file://') ? new URL(source).pathname : source.slice('file:'.length);
    const timer = setInterval(() => {
      if (fs.existsSync(file)) fire(`${file} appeared`);
    }, pollMs.file);
    stop = () => clearInterval(timer);
  } else if (/^https?:\/\//.test(source)) {
    const headers = parseHeader(options.header);
    let busy = false;
    const timer = setInterval(async () => {
      if (busy) return; // a slow endpoint: one request at a time
      busy = true;
      try {
        const response = await fetch(source, { headers, signal: AbortSignal.timeout(pollMs.http) });
        const body = (await response.text()).trim();
        if (response.ok && body !== '' && !/^(false|none)$/i.test(body))
          fire(`${source} answered ${body.slice(0, 200)}`);
      } catch {
        // Unreachable or slow: no notice (a metadata server that is down does not mean preemption).
      } finally {
        busy = false;
      }
    }, pollMs.http);
    stop = () => clearInterval(timer);
  } else {
    throw new PreemptionConfigError(
      `KEEL_PREEMPTION_NOTICE: '${source}' is not a notice source; use file:/path, http(s)://url or signal:SIGNAME`,
    );
  }
  return () => stop();
}

function parseHeader(header: string | undefined): Record<string, string> {
  if (!header) return {};
  const colon = header.indexOf(':');
  if (colon <= 0) {
    throw new PreemptionConfigError(`KEEL_PREEMPTION_NOTICE_HEADER must be 'Name: value', got '${header}'`);
  }
  return { [header.slice(0, colon).trim()]: header.slice(colon + 1).trim() };
}
