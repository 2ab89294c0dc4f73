/**
 * The two criteria of a point w (docs/correction.md, step 4): the violation V of the margin
 * constraints on X̃ and the clean loss L, and the candidate record that carries them.
 */
import { cleanLoss, predictLogits } from '../models/index.js';
import type { ViolationMeasure } from './options.js';
import { distance, type CorrectionProblem, type ParetoPoolEntry } from './state.js';

/** Sum of positive margin violations, misclassified count and predicted classes, from logits on X̃. */
export interface Violation {
  sumViolation: number;
  misclassified: number;
  predictions: number[];
}

/** The criteria of one point on X̃ from its logits (count × numClasses, row-major). */
export function violationOf(logits: Float32Array, labels: ArrayLike<number>, count: number, numClasses: number, delta: number): Violation {
  const C = numClasses;
  let sumViolation = 0;
  let misclassified = 0;
  const predictions: number[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const y = labels[i]!;
    const fy = logits[i * C + y]!;
    let best = 0;
    for (let j = 1; j < C; j++) if (logits[i * C + j]! > logits[i * C + best]!) best = j;
    predictions[i] = best;
    if (best !== y) misclassified++;
    for (let j = 0; j < C; j++) {
      if (j === y) continue;
      const g = logits[i * C + j]! - fy + delta;
      if (g > 0) sumViolation += g;
    }
  }
  return { sumViolation, misclassified, predictions };
}

/** V as the options measure it: the sum of violations, or the fraction of X̃ misclassified. */
export function violationMeasure(v: Violation, count: number, measure: ViolationMeasure): number {
  return measure === 'sum' ? v.sumViolation : v.misclassified / count;
}

export interface PointCriteria {
  violation: number;
  misclassified: number;
  cleanLoss: number;
  predictions: number[];
}

/** Writes w into the working model and measures V on X̃ = (images, labels) and L on the clean data. */
export async function evaluatePoint(problem: CorrectionProblem, advImages: Float32Array, advLabels: Uint8Array, w: Float64Array): Promise<PointCriteria> {
  const { work, view, options } = problem;
  view.write(w);
  const count = advLabels.length;
  const logits = predictLogits(work, advImages);
  const v = violationOf(logits, advLabels, count, problem.numClasses, options.delta);
  const L = await cleanLoss(work, problem.cleanImages, problem.cleanLabels, { signal: problem.signal });
  return {
    violation: violationMeasure(v, count, options.violation),
    misclassified: v.misclassified,
    cleanLoss: L,
    predictions: v.predictions,
  };
}

/** A candidate (a point with its criteria) as the Pareto pool and the log keep it. */
export function candidateEntry(
  at: Pick<PointCriteria, 'violation' | 'misclassified' | 'cleanLoss'>,
  w: Float64Array,
  w0: Float64Array,
  eta: number,
  where: { id: number; round: number; iteration: number; alpha: number; segment?: true },
): ParetoPoolEntry {
  return {
    id: where.id,
    round: where.round,
    iteration: where.iteration,
    alpha: where.alpha,
    violation: at.violation,
    misclassified: at.misclassified,
    cleanLoss: at.cleanLoss,
    distance: distance(w, w0),
    feasible: at.cleanLoss <= eta,
    ...(where.segment ? { segment: true as const } : {}),
    w,
  };
}

/**
 * Measures w₀ once at the start of a fresh run: its clean loss L₀, the level η = options.eta or
 * (1 + τ)·L₀, and w₀ as the first candidate (id 0, round 0) on X̃.
 */
export async function measureStart(
  problem: Omit<CorrectionProblem, 'eta' | 'cleanLoss0'>,
  advImages: Float32Array,
  advLabels: Uint8Array,
): Promise<{ cleanLoss0: number; eta: number; start: ParetoPoolEntry }> {
  const { work, view, options, w0 } = problem;
  view.write(w0);
  const L0 = await cleanLoss(work, problem.cleanImages, problem.cleanLabels, { signal: problem.signal });
  const eta = options.eta ?? (1 + options.tau) * L0;
  const count = advLabels.length;
  const v0 = violationOf(predictLogits(work, advImages), advLabels, count, problem.numClasses, options.delta);
  const at = { violation: violationMeasure(v0, count, options.violation), misclassified: v0.misclassified, cleanLoss: L0 };
  return { cleanLoss0: L0, eta, start: candidateEntry(at, w0, w0, eta, { id: 0, round: 0, iteration: 0, alpha: 0 }) };
}
