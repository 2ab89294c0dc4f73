export {
  correct,
  cloneModel,
  dropInfeasible,
  INFEASIBLE_RULE,
  type LabelledImages,
  type CorrectionControl,
  type CorrectionOutput,
  type CorrectionState,
  type CutPoolLike,
  type CutRecord,
  type CutQpSnapshot,
  type PoolEntry,
} from './correct.js';
export {
  resolveCorrectionOptions,
  DEFAULT_CORRECTION_OPTIONS,
  type CorrectionOptions,
  type CorrectionOptionsInput,
  type CorrectionAttackOptions,
  type CutClasses,
  type ViolationMeasure,
  type CorrectionSolver,
} from './options.js';
export { ParetoPool, paretoFilter, dominates, chooseWeighted, chooseFinal, normaliseAgainst, type Criteria, type WeightedChoice } from './selection.js';
export { saveCheckpoint, loadCheckpoint, hasCheckpoint, replaceDirAtomic, encodeBundle, decodeBundle, CHECKPOINT_DIR } from './checkpoint.js';
export type * from './types.js';
