// Public API of advcorrect, layer by layer (each layer only imports those above it).
export { AdvcorrectError, type AdvcorrectErrorCode } from './errors.js';
export {
  writeFileAtomic,
  md5File,
  ensureDir,
  readFileCapped,
  resolveInside,
  replaceDirAtomic,
  repairDir,
  DEFAULT_MAX_FILE_BYTES,
  type ReplaceDirOptions,
  type ReplaceDirStep,
} from './util/files.js';
export * from './qp/index.js';
export * from './backend/index.js';
export * from './data/index.js';
export * from './models/index.js';
export * from './attacks/index.js';
export * from './correction/index.js';
export * from './report/index.js';
export { biasShift, finetune, pgdFinetune, findShiftTarget, BASELINE_METHODS, type BaselineMethod, type BiasShiftResult, type FinetuneResult, type PgdFinetuneResult } from './baselines/index.js';
export {
  runCorrection,
  runBaseline,
  compareRuns,
  buildComparison,
  evaluateOnTest,
  trainingSplit,
  drawAdversarial,
  DEFAULT_EVALUATION_ATTACKS,
  type CorrectionRunSettings,
  type BaselineRunSettings,
  type DrawSettings,
  type EvaluationSettings,
  type RunIo,
} from './runs/index.js';
