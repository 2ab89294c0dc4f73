export { trainingSplit, drawAdversarial, inputSpace, pixelSpace, checkModelFitsData, type DrawSettings, type TrainingSplit } from './split.js';
export {
  evaluateOnTest,
  describeEvaluation,
  evaluationAttackSpec,
  attackDisplayName,
  notEvaluated,
  EVALUATION_ATTACKS,
  DEFAULT_EVALUATION_ATTACKS,
  type EvaluationSettings,
  type EvaluationDescription,
  type TestEvaluation,
} from './evaluation.js';
export { writeModelOutputs, writeRunDocument } from './outputs.js';
export { runCorrection, readRunSettings, drawSettingsOf, evaluationSettingsOf, RUN_FILE, type CorrectionRunSettings } from './correction.js';
export { runBaseline, type BaselineRunSettings } from './baseline.js';
export { compareRuns, buildComparison } from './compare.js';
export { readRunDocument, methodTimeMs } from './documents.js';
export { headline, type RunIo } from './io.js';
