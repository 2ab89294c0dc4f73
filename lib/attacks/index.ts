export {
  fgsm,
  pgd,
  pgdWithMargins,
  zeroGradientExamples,
  type AttackOptions,
  type PgdOptions,
  type AttackResult,
  type AttackLoss,
} from './attacks.js';
export { apgd, apgdCheckpoints, APGD_DEFAULTS, type ApgdOptions } from './apgd.js';
export { square, squareFraction, SQUARE_DEFAULTS, type SquareOptions, type SquareResult } from './square.js';
export {
  evaluate,
  attackLabel,
  attackShortName,
  worstCaseLabel,
  ATTACK_NAMES,
  GRADIENT_ATTACK_NAMES,
  ZERO_GRADIENT_WARNING_FRACTION,
  GRADIENT_FREE_WARNING_COUNT,
  type AttackName,
  type AttackSpec,
  type EvaluateOptions,
  type Evaluation,
  type AttackEvaluation,
  type EvaluationWarning,
} from './evaluate.js';
export {
  generateAdversarialSet,
  saveAdversarialSet,
  loadAdversarialSet,
  type AdversarialSet,
  type AdversarialSetOptions,
  type AdversarialSetSettings,
} from './adversarial-set.js';
