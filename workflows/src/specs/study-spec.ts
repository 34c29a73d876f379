// The HPO study spec: a search space, an objective, how many trials and how many at once, the
// sampler and pruner, the failure policy, and the trial template (a job spec; each trial's sampled
// params are merged over the template's params). Shared by the workflow and every client.
import { z } from 'zod';
import { gridProblem, prunerSchema, samplerSchema, searchSpaceSchema } from '../hpo/index.ts';
import { jobSpecSchema, objectiveSchema } from './job-spec.ts';
import { parseSpec } from './validate.ts';

/** The trial template: a job spec without the link to a study, which the study sets itself. */
const trialTemplateSchema = jobSpecSchema.omit({ trial: true });

/** Trials at once: in the spec, and in setConcurrency while the study runs. */
export const maxConcurrencySchema = z.int().min(1).max(1000);

export const studySpecSchema = z
  .strictObject({
    /** A label for people; the workflow id is the study's identity. */
    name: z.string().min(1).max(200).optional(),
    space: searchSpaceSchema,
    /** The metric trials report and the study optimizes (the trainer's metric name). */
    objective: objectiveSchema,
    nTrials: z.int().min(1).max(100_000).default(20),
    /** Trials running at once, at most. Can be changed while the study runs (setConcurrency). */
    maxConcurrency: maxConcurrencySchema.default(4),
    /** Seeds the sampler: the same seed and results give the same params. */
    seed: z
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(0),
    sampler: samplerSchema.prefault({ type: 'tpe' }),
    pruner: prunerSchema.prefault({ type: 'none' }),
    /** The job each trial runs; sampled params are merged over its params. */
    trial: z.unknown(),
    failures: z
      .strictObject({
        /** A failed trial runs again with the same params this many times before it counts as failed. */
        retriesPerTrial: z.int().min(0).default(1),
        /** This many failed trials in a row halve maxConcurrency (the breaker; it resets on a success). */
        consecutiveToHalve: z.int().min(1).default(3),
        /** This many failed trials in all stop the study, with the reason. */
        maxFailedTrials: z.int().min(1).default(10),
      })
      .prefault({}),
    /** At least this long between two trial launches (to spare a scheduler or a quota). */
    launchIntervalSeconds: z.number().min(0).max(3600).default(0),
    /** A trial running longer is stopped (its checkpoints kept) and counted as stopped. */
    trialTimeoutSeconds: z.int().min(1).optional(),
    /** The study continues as new once its history has this many events (Temporal warns at 10,240). */
    historyEventsBeforeContinueAsNew: z.int().min(200).max(40_000).default(8_000),
  })
  .superRefine((spec, ctx) => {
    const template = trialTemplateSchema.safeParse(spec.trial);
    if (!template.success) {
      for (const issue of template.error.issues) {
        ctx.addIssue({ code: 'custom', message: issue.message, path: ['trial', ...issue.path] });
      }
    }
    if (spec.sampler.type === 'grid') {
      const problem = gridProblem(spec.space);
      if (problem) ctx.addIssue({ code: 'custom', message: problem, path: ['space'] });
    }
  });

/** What users write. */
export type StudySpecInput = Omit<z.input<typeof studySpecSchema>, 'trial'> & {
  trial: z.input<typeof trialTemplateSchema>;
};
/** With every default filled in; `trial` stays as written (each trial's job fills its own defaults). */
export type StudySpec = Omit<z.output<typeof studySpecSchema>, 'trial'> & {
  trial: z.input<typeof trialTemplateSchema>;
};

export function parseStudySpec(input: unknown): StudySpec {
  return parseSpec('study spec', studySpecSchema, input) as StudySpec;
}
