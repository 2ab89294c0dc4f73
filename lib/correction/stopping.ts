/**
 * The stop tests of a round (docs/correction.md, step 6) and the count of X̃ a stopped round leaves correct.
 */
import type { ViolationMeasure } from './options.js';
import type { PoolEntry } from './state.js';
import type { StopReason } from './types.js';

export interface StopInputs {
  /** The new iterate, or undefined when the QP gave no usable step. */
  next: Pick<PoolEntry, 'feasible' | 'misclassified' | 'violation'> | undefined;
  /** ‖w_{k+1} − w_k‖ and ‖w_k‖. */
  step: number;
  normWk: number;
  /** Iterations in a row in which no candidate entered the Pareto pool. */
  stall: number;
  patience: number;
  /** Iterations done in the round, and the limit M. */
  iteration: number;
  maxIterations: number;
  violation: ViolationMeasure;
}

/**
 * Why the round stops after this iteration, or undefined to go on. In order: no step
 * (`no_progress`); V = 0 (or no example misclassified, for the fraction measure) with L ≤ η
 * (`converged`); a step below 1e-12·(1 + ‖w_k‖) (`no_progress`); `patience` iterations without a
 * candidate entering the Pareto pool (`stalled`); M iterations (`max_iterations`).
 */
export function stopReason(s: StopInputs): StopReason | undefined {
  let stop: StopReason | undefined;
  if (!s.next) stop = 'no_progress';
  else if (s.next.feasible && s.next.misclassified === 0 && (s.violation === 'fraction' || s.next.violation === 0)) stop = 'converged';
  else if (s.step <= 1e-12 * (1 + s.normWk)) stop = 'no_progress';
  else if (s.stall >= s.patience) stop = 'stalled';
  if (!stop && s.iteration >= s.maxIterations) stop = 'max_iterations';
  return stop;
}

/** Examples of X̃ correct at the final iterate; a misclassified count of −1 (no step was taken) counts as none. */
export function correctAfter(adversarialCount: number, misclassified: number): number {
  return adversarialCount - (Number.isFinite(misclassified) && misclassified >= 0 ? misclassified : 0);
}
