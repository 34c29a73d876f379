// The trainer's params (KEEL_PARAMS), each with a default, checked before anything runs: a bad
// value or an unknown name (a typo such as `lr` would otherwise be ignored silently, and an HPO
// study would tune nothing) stops the trainer with exit code 2 and a message that names the param.

export interface Params {
  seed: number;
  learningRate: number;
  momentum: number;
  hiddenSize: number;
  batchSize: number;
  /** Total SGD steps; a resumed run continues up to the same total. */
  steps: number;
  /** Save a checkpoint every this many steps; 0: only at the end (and when stopped). */
  checkpointEvery: number;
  /** Report validation loss and accuracy every this many steps. */
  evalEvery: number;
  /** Report the mean training loss every this many steps. */
  reportEvery: number;
  /** Fault injection for keel's tests: exit 3 on reaching this step, on attempt 1 only. */
  failAtStep: number | undefined;
  /** Sleep this long after each step, so a run lasts long enough to be stopped or killed. */
  stepDelayMs: number;
}

export const defaults: Params = {
  seed: 0,
  learningRate: 0.1,
  momentum: 0.9,
  hiddenSize: 32,
  batchSize: 32,
  steps: 2000,
  checkpointEvery: 500,
  evalEvery: 100,
  reportEvery: 10,
  failAtStep: undefined,
  stepDelayMs: 0,
};

export class ParamError extends Error {
  override name = 'ParamError';
}

type Check = (value: number) => boolean;

const integer =
  (min: number, max: number): Check =>
  (v) =>
    Number.isInteger(v) && v >= min && v <= max;

const rules: Record<keyof Params, { check: Check; expected: string }> = {
  seed: { check: integer(0, 0xffffffff), expected: 'an integer from 0 to 4294967295' },
  learningRate: { check: (v) => Number.isFinite(v) && v > 0, expected: 'a finite number > 0' },
  momentum: { check: (v) => Number.isFinite(v) && v >= 0 && v < 1, expected: 'a number in [0, 1)' },
  hiddenSize: { check: integer(1, 1024), expected: 'an integer from 1 to 1024' },
  batchSize: { check: integer(1, 4096), expected: 'an integer from 1 to 4096' },
  steps: { check: integer(1, 10_000_000), expected: 'an integer from 1 to 10000000' },
  checkpointEvery: { check: integer(0, 10_000_000), expected: 'an integer ≥ 0 (0: no periodic checkpoints)' },
  evalEvery: { check: integer(1, 10_000_000), expected: 'an integer ≥ 1' },
  reportEvery: { check: integer(1, 10_000_000), expected: 'an integer ≥ 1' },
  failAtStep: { check: integer(1, 10_000_000), expected: 'an integer ≥ 1' },
  stepDelayMs: {
    check: (v) => Number.isFinite(v) && v >= 0 && v <= 60_000,
    expected: 'a number of ms from 0 to 60000',
  },
};

/** Parses KEEL_PARAMS's object into Params; throws ParamError naming the first bad param. */
export function parseParams(raw: unknown): Params {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ParamError(`params must be a JSON object, got ${JSON.stringify(raw)}`);
  }
  const known = Object.keys(rules);
  for (const name of Object.keys(raw)) {
    if (!known.includes(name)) throw new ParamError(`unknown param "${name}"; known params: ${known.join(', ')}`);
  }
  const params: Params = { ...defaults };
  for (const [name, value] of Object.entries(raw) as [keyof Params, unknown][]) {
    if (value === null && name === 'failAtStep') continue; // null: explicitly off
    const rule = rules[name];
    if (typeof value !== 'number' || !rule.check(value)) {
      throw new ParamError(`param "${name}" must be ${rule.expected}, got ${JSON.stringify(value)}`);
    }
    params[name] = value;
  }
  return params;
}
