export { fgsm, pgd, pgdWithMargins, type AttackOptions, type PgdOptions, type AttackResult } from './attacks.js';
export { evaluate, attackLabel, type AttackSpec, type EvaluateOptions, type Evaluation, type AttackEvaluation } from './evaluate.js';
export {
  generateAdversarialSet,
  saveAdversarialSet,
  loadAdversarialSet,
  type AdversarialSet,
  type AdversarialSetOptions,
  type AdversarialSetSettings,
} from './adversarial-set.js';
