// The quick activities of the main queue (database steps: records, commits, marks) heartbeat while
// they run, so the workflow can give them a short heartbeat timeout. Why: a host cut off from the
// network leaves its open polls on the server for a while, and the server still hands them tasks;
// such a task is lost until a timeout frees it. With heartbeats, that is the 10 s heartbeat
// timeout, not the 30 s start-to-close timeout (measured in test/src/fleet/multi-host.test.ts).
import type { ActivityInterceptorsFactory } from '@temporalio/worker';

/** How often a running activity heartbeats (well inside the workflow's 10 s heartbeat timeout). */
const beatMs = 2_000;

export const heartbeatWhileRunning: ActivityInterceptorsFactory = (context) => ({
  inbound: {
    async execute(input, next) {
      const beat = setInterval(() => context.heartbeat(), beatMs);
      try {
        return await next(input);
      } finally {
        clearInterval(beat);
      }
    },
  },
});
