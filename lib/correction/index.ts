export { correct, cloneModel, type CorrectionControl, type CorrectionOutput } from './correct.js';
export type { LabelledImages, CorrectionState, CutRecord, ParetoPoolEntry } from './state.js';
export type { CutPoolLike } from './cuts.js';
export { dropInfeasible, INFEASIBLE_RULE, type CutQpSnapshot } from './qp-step.js';
export {
  resolveCorrectionOptions,
  DEFAULT_CORRECTION_OPTIONS,
  BUDGET_MAX_ROUNDS,
  type CorrectionOptions,
  type CorrectionOptionsInput,
  type CorrectionAttackOptions,
  type CutClasses,
  type ViolationMeasure,
  type CorrectionSolver,
  type CorrectionRows,
} from './options.js';
export { ParetoPool, paretoFilter, dominates, chooseWeighted, chooseFinal, chooseAnswer, normaliseAgainst, type Criteria, type WeightedChoice } from './selection.js';
export { saveCheckpoint, loadCheckpoint, hasCheckpoint, replaceDirAtomic, encodeBundle, decodeBundle, CHECKPOINT_DIR } from './checkpoint.js';
export type * from './types.js';
