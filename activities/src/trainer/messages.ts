// The control socket's messages (docs/trainer-protocol.md), checked with zod: a trainer is user
// code, so every line it sends is validated before keel acts on it.
import { z } from 'zod';

export const protocolVersion = 1;
/** Longest line keel reads from a trainer; longer ones are refused, not buffered. */
export const maxLineBytes = 1024 * 1024;

const step = z.int().min(0).max(Number.MAX_SAFE_INTEGER);
const metrics = z
  .record(z.string().min(1).max(200), z.number().refine(Number.isFinite, 'must be a finite number'))
  .refine((m) => Object.keys(m).length <= 256, 'at most 256 metrics per message')
  .default({});

export const trainerMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('hello'), protocol: z.int(), pid: z.int().optional() }),
  z.object({ type: z.literal('metric'), step, metrics }),
  z.object({ type: z.literal('checkpoint'), step, path: z.string().min(1).max(4096), metrics }),
  z.object({ type: z.literal('heartbeat'), step: step.optional() }),
  z.object({ type: z.literal('done'), metrics }),
]);

export type TrainerMessage = z.output<typeof trainerMessageSchema>;

export type KeelMessage =
  | { type: 'ack'; step: number }
  | { type: 'nack'; step: number; error: string }
  | { type: 'stop'; reason: StopReason }
  | { type: 'error'; error: string };

export type StopReason = 'cancel' | 'prune' | 'preempt';

/** A trainer's line as a message, or the reason it is not one (sent back as an `error`). */
export function parseTrainerLine(line: string): { message: TrainerMessage } | { error: string } {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return { error: `not JSON: ${line.slice(0, 80)}` };
  }
  const result = trainerMessageSchema.safeParse(json);
  if (result.success) return { message: result.data };
  const issue = result.error.issues[0];
  return { error: `bad message: ${issue?.path.join('.') || 'type'}: ${issue?.message}` };
}
