export { biasShift, findShiftTarget, BiasShifter, type BiasShiftOptions, type BiasShiftResult, type ShiftTarget } from './bias-shift.js';
export { finetune, type FinetuneOptions, type FinetuneResult } from './finetune.js';
export { pgdFinetune, type PgdFinetuneOptions, type PgdFinetuneResult } from './pgd-finetune.js';
export { accuracy, correctness, meanCrossEntropy, snapshotWeights, trainStep, weightDistance, type LabelledImages } from './common.js';

/** The baseline methods of `advcorrect baseline`. */
export const BASELINE_METHODS = ['bias-shift', 'finetune', 'pgd-finetune'] as const;
export type BaselineMethod = (typeof BASELINE_METHODS)[number];
