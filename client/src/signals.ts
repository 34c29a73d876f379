// How long-running keel commands (keel dev, the demo) end: on Ctrl-C, SIGTERM or SIGHUP they stop
// what they started, in order, then exit.

/** Waits for Ctrl-C (or SIGTERM/SIGHUP), runs stop once, then exits; a second Ctrl-C forces. */
export function stopOnSignal(stop: () => Promise<void>): Promise<never> {
  return new Promise(() => {
    // Signal handlers do not keep Node running; with nothing else to wait on (a reused server and
    // --no-worker), this timer does.
    const keepAlive = setInterval(() => {}, 1 << 30);
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        console.error(`keel: ${signal} again, exiting without waiting`);
        process.exit(130);
      }
      stopping = true;
      clearInterval(keepAlive);
      console.log(`keel: ${signal}, stopping what this command started`);
      stop().then(
        () => process.exit(0),
        (err: unknown) => {
          console.error(`keel: stopping failed: ${String(err)}`);
          process.exit(1);
        },
      );
    };
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);
  });
}
