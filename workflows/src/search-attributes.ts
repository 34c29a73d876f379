// keel's typed search attributes: one list, used by workflows to upsert them and by `keel dev`
// to register them on the dev server, so the Temporal UI can filter and show jobs and studies.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const KeelKind = defineSearchAttributeKey('KeelKind', SearchAttributeType.KEYWORD);
export const KeelJob = defineSearchAttributeKey('KeelJob', SearchAttributeType.KEYWORD);
export const KeelStudy = defineSearchAttributeKey('KeelStudy', SearchAttributeType.KEYWORD);
export const KeelStatus = defineSearchAttributeKey('KeelStatus', SearchAttributeType.KEYWORD);
export const KeelBestValue = defineSearchAttributeKey('KeelBestValue', SearchAttributeType.DOUBLE);
export const KeelTrialsDone = defineSearchAttributeKey('KeelTrialsDone', SearchAttributeType.INT);

export const keelSearchAttributes = [KeelKind, KeelJob, KeelStudy, KeelStatus, KeelBestValue, KeelTrialsDone] as const;
