// The control socket's messages (docs/trainer-protocol.md), checked with zod: a trainer is user
// code, so every line it sends is validated before keel acts on it. The limits below are the
// protocol's (documented there with the problem codes); each keeps something keel holds or sends
// on bounded whatever a trainer does.
import { z } from 'zod';

export const protocolVersion = 1;
/** Longest line keel reads from a trainer; longer ones are refused, not buffered. */
export const maxLineBytes = 1024 * 1024;
/** Most metrics one message may carry. */
export const maxMetricsPerMessage = 256;
/** Longest metric name. */
export const maxMetricNameLength = 200;
/**
 * Most distinct metric names one attempt may use. The newest value of each travels in every
 * heartbeat and in the attempt's result, which Temporal caps in size: a trainer that invented
 * names without end made the heartbeat too big and failed the attempt, every attempt.
 */
export const maxMetricNames = 1024;
/** Longest checkpoint path. */
export const maxPathLength = 4096;
/** Longest problem text keel sends back (bad input is quoted in part, never echoed whole). */
export const maxProblemLength = 500;

/** The names of the problems keel reports in `error` and `nack` messages. */
export type ProblemCode =
  // a line keel could not use (`error`; `nack` when it is a checkpoint with a readable step)
  | 'line_too_long'
  | 'not_json'
  | 'bad_message'
  | 'too_many_metrics'
  | 'too_many_metric_names'
  | 'unsupported_protocol'
  // a checkpoint refused (`nack`)
  | 'bad_path'
  | 'outside_checkpoint_dir'
  | 'not_found'
  | 'not_regular_file'
  | 'empty_folder'
  | 'step_not_increasing'
  | 'already_staged'
  | 'stage_failed'
  | 'no_space'
  // keel itself failed on a message (a bug, or an outage on keel's side)
  | 'keel_error';

const step = z.int().min(0).max(Number.MAX_SAFE_INTEGER);
const metrics = z
  .record(z.string().min(1).max(maxMetricNameLength), z.number().refine(Number.isFinite, 'must be a finite number'))
  .refine((m) => Object.keys(m).length <= maxMetricsPerMessage, `at most ${maxMetricsPerMessage} metrics per message`)
  .default({});

export const trainerMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('hello'), protocol: z.int(), pid: z.int().optional() }),
  z.object({ type: z.literal('metric'), step, metrics }),
  z.object({ type: z.literal('checkpoint'), step, path: z.string().min(1).max(maxPathLength), metrics }),
  z.object({ type: z.literal('heartbeat'), step: step.optional() }),
  z.object({ type: z.literal('done'), metrics }),
]);

export type TrainerMessage = z.output<typeof trainerMessageSchema>;

export type KeelMessage =
  | { type: 'ack'; step: number }
  | { type: 'nack'; step: number; code: ProblemCode; error: string }
  | { type: 'stop'; reason: StopReason }
  | { type: 'error'; code: ProblemCode; error: string };

export type StopReason = 'cancel' | 'prune' | 'preempt';

/** A line keel cannot use: why, by name, and the step when it is a checkpoint (answered `nack`). */
export interface LineProblem {
  code: ProblemCode;
  error: string;
  step?: number;
}

/** A trainer's line as a message, or the problem with it (sent back as `error`, or `nack`). */
export function parseTrainerLine(line: string): { message: TrainerMessage } | LineProblem {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return { code: 'not_json', error: `not JSON: ${line.slice(0, 80)}` };
  }
  // A checkpoint keel cannot use is refused for its step (nack), not with a bare error: an SDK
  // waits for the answer to that step, and would wait forever.
  const fields =
    typeof json === 'object' && json !== null && !Array.isArray(json) ? (json as Record<string, unknown>) : {};
  const checkpointStep =
    fields.type === 'checkpoint' && step.safeParse(fields.step).success ? (fields.step as number) : undefined;
  const problem = (code: ProblemCode, error: string): LineProblem => ({
    code,
    error: clip(error),
    ...(checkpointStep !== undefined ? { step: checkpointStep } : {}),
  });
  // Counted before zod looks at each of (say) 100k entries.
  const metricCount =
    typeof fields.metrics === 'object' && fields.metrics !== null ? Object.keys(fields.metrics).length : 0;
  if (metricCount > maxMetricsPerMessage) {
    return problem('too_many_metrics', `${metricCount} metrics in one message; at most ${maxMetricsPerMessage}`);
  }
  const result = trainerMessageSchema.safeParse(json);
  if (result.success) return { message: result.data };
  const issue = result.error.issues[0];
  const where = (issue?.path.join('.') || 'type').slice(0, 2 * maxMetricNameLength);
  return problem('bad_message', `bad message: ${where}: ${issue?.message}`);
}

/** Problem texts quote the input they are about, so they are cut to maxProblemLength. */
export function clip(text: string): string {
  return text.length > maxProblemLength ? `${text.slice(0, maxProblemLength - 1)}…` : text;
}
