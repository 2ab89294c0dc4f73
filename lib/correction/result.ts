/** The result record of a run (types.ts, CorrectionResult): the answer measured on the final X̃. */
import { predictLogits } from '../models/index.js';
import { violationMeasure, violationOf } from './criteria.js';
import { distance, stripW, type CorrectionProblem, type CorrectionState, type ParetoPoolEntry } from './state.js';
import type { CandidateRecord, CorrectionResult } from './types.js';

/**
 * Everything `correct()` reports, with the answer `chosen` measured against w₀ on the whole X̃
 * (correct counts, violations and predictions before and after). Leaves `chosen.w` in the model.
 */
export function correctionResult(
  problem: CorrectionProblem,
  state: CorrectionState,
  answer: { front: readonly ParetoPoolEntry[]; segment: readonly CandidateRecord[]; chosen: ParetoPoolEntry },
  totals: { totalTimeMs: number; resumed: boolean },
): CorrectionResult {
  const { work, view, w0, options, numClasses } = problem;
  const { chosen } = answer;
  const count = state.advLabels.length;
  view.write(w0);
  const before = violationOf(predictLogits(work, state.advImages), state.advLabels, count, numClasses, options.delta);
  view.write(chosen.w);
  const after = violationOf(predictLogits(work, state.advImages), state.advLabels, count, numClasses, options.delta);
  const d = distance(chosen.w, w0);
  return {
    parameters: { count: problem.n, layers: [...view.layers] },
    options,
    eta: state.eta,
    cleanLossBefore: state.cleanLoss0,
    cleanLossAfter: chosen.cleanLoss,
    adversarial: {
      count,
      correctBefore: count - before.misclassified,
      correctAfter: count - after.misclassified,
      violationBefore: violationMeasure(before, count, options.violation),
      violationAfter: violationMeasure(after, count, options.violation),
      labels: Array.from(state.advLabels),
      predictionsBefore: before.predictions,
      predictionsAfter: after.predictions,
      rounds: Array.from(state.advRounds),
    },
    iterations: state.log,
    rounds: state.rounds,
    pool: answer.front.map(stripW),
    candidates: [...state.candidates, ...answer.segment],
    chosen: stripW(chosen),
    distance: d,
    relativeDistance: state.w0Norm > 0 ? d / state.w0Norm : Number.NaN,
    infeasible: state.infeasible,
    totalQpTimeMs: state.qpTimeMs,
    totalTimeMs: totals.totalTimeMs,
    resumed: totals.resumed,
    ...(state.budget ? { budget: state.budget } : {}),
  };
}
