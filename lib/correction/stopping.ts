/**
 * The stop tests of a round (docs/correction.md, step 6), the count of X̃ a stopped round leaves
 * correct, and the time budget's verdicts ("Time budget").
 */
import type { ViolationMeasure } from './options.js';
import type { ParetoPoolEntry } from './state.js';
import type { BudgetOutcome, StopReason } from './types.js';

export interface StopInputs {
  /** The new iterate, or undefined when the QP gave no usable step. */
  next: Pick<ParetoPoolEntry, 'feasible' | 'misclassified' | 'violation'> | undefined;
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

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/**
 * A lower bound of one iteration's time from the measured time of one forward pass over the clean
 * subset: an iteration evaluates the clean loss once per line-search step (alphaCount forward
 * passes) and takes its gradient once (at least one more pass), whatever else it does.
 */
export function iterationFloorMs(forwardMs: number, alphaCount: number): number {
  return (alphaCount + 1) * forwardMs;
}

/**
 * Refuses a time budget shorter than one iteration before the loop starts: a RangeError when
 * budgetSeconds is below iterationFloorMs (one forward pass over cleanCount images took forwardMs).
 */
export function checkBudgetFits(budgetSeconds: number | undefined, forwardMs: number, alphaCount: number, cleanCount: number): void {
  if (budgetSeconds === undefined) return;
  const floor = iterationFloorMs(forwardMs, alphaCount);
  if (budgetSeconds * 1000 < floor) {
    throw new RangeError(
      `the time budget (budgetSeconds, --budget-s: ${budgetSeconds} s) is shorter than one iteration: its clean-loss passes alone take at least ${seconds(floor)} here ` +
        `(${alphaCount + 1} forward passes over ${cleanCount} clean images at ${forwardMs.toFixed(0)} ms each); give a budget of at least ${Math.ceil(floor / 1000)} s`,
    );
  }
}

/**
 * The time budget after an iteration: when the elapsed time has reached it, the round stops
 * (`budget_spent`) and so does the run. Spent after round 1's first iteration means the budget is
 * shorter than one iteration (`first_iteration`); later it is `spent`. Undefined: time is left.
 */
export function budgetAfterIteration(budgetSeconds: number, elapsedMs: number, round: number, iteration: number): BudgetOutcome | undefined {
  if (elapsedMs < budgetSeconds * 1000) return undefined;
  if (round === 1 && iteration === 1) {
    return {
      seconds: budgetSeconds,
      reason: 'first_iteration',
      rounds: 1,
      elapsedMs,
      notice: `the time budget of ${budgetSeconds} s is shorter than one iteration: round 1's first iteration ended at ${seconds(elapsedMs)}, so the run stopped there and the answer is chosen from what that iteration found`,
    };
  }
  return {
    seconds: budgetSeconds,
    reason: 'spent',
    rounds: round,
    elapsedMs,
    notice: `the time budget of ${budgetSeconds} s was spent in round ${round} (iteration ${iteration}, ${seconds(elapsedMs)}): that round and the run stopped there`,
  };
}

/**
 * The time budget after round `round` ended: `rounds` when it was the last allowed one; `no_room`
 * when another round would not fit, i.e. elapsed + elapsed/round (the mean time of a round so far,
 * the start-up included, so the estimate errs long) exceeds the budget; undefined: start another.
 */
export function budgetAfterRound(budgetSeconds: number, elapsedMs: number, round: number, maxRounds: number): BudgetOutcome | undefined {
  const base = { seconds: budgetSeconds, rounds: round, elapsedMs };
  if (round >= maxRounds) {
    return { ...base, reason: 'rounds', notice: `all ${maxRounds} rounds ran within the time budget of ${budgetSeconds} s (${seconds(elapsedMs)})` };
  }
  const meanRoundMs = elapsedMs / round;
  if (elapsedMs + meanRoundMs > budgetSeconds * 1000) {
    return {
      ...base,
      reason: 'no_room',
      notice: `stopped after round ${round} at ${seconds(elapsedMs)}: another round (about ${seconds(meanRoundMs)}) would not fit in the time budget of ${budgetSeconds} s`,
    };
  }
  return undefined;
}
