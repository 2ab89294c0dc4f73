/** Result and progress types of the correction loop (what `correct()` returns and reports). */
import type { CorrectionOptions } from './options.js';

/** Why a round stopped; `budget_spent`: the time budget (options.budgetSeconds) ran out during the round. */
export type StopReason = 'converged' | 'max_iterations' | 'stalled' | 'no_progress' | 'budget_spent';

/**
 * How a run with a time budget ended (docs/correction.md, "Time budget"):
 * - `first_iteration`: the budget was already spent after round 1's first iteration (it is shorter than one iteration);
 * - `spent`: the budget ran out during a later iteration, which ended the round and the run;
 * - `no_room`: a round ended and another one would not fit (the mean round time so far exceeds what is left);
 * - `rounds`: every allowed round ran (options.rounds) within the budget.
 */
export interface BudgetOutcome {
  seconds: number;
  reason: 'first_iteration' | 'spent' | 'no_room' | 'rounds';
  /** Rounds run, and the elapsed time when the decision was taken. */
  rounds: number;
  elapsedMs: number;
  /** One sentence for the user. */
  notice: string;
}

/** One inner iteration, as logged and shown in the progress line. */
export interface IterationLog {
  round: number;
  /** 1-based within the round. */
  iteration: number;
  /** Cuts appended this iteration (margin + loss). */
  cutsAdded: number;
  /** Cuts in the cut pool after this iteration's removals. */
  cutsTotal: number;
  /** Cuts removed this iteration (inactive, over the limit, or dropped after infeasibility). */
  cutsRemoved: number;
  qpStatus: string;
  qpIterations: number;
  qpTimeMs: number;
  /** Objective ½‖ŵ − w₀‖² of the QP solution. */
  qpObjective: number;
  /** Step taken: α of the chosen candidate. */
  alpha: number;
  /** Criteria at the new iterate w_{k+1}. */
  violation: number;
  misclassified: number;
  cleanLoss: number;
  distance: number;
  /** Whether the clean loss of w_{k+1} is ≤ η. */
  feasible: boolean;
  /** Wall time of the iteration. */
  timeMs: number;
}

/** A candidate point of the line search (w₀ has id 0, round 0, iteration 0, alpha 0). */
export interface CandidateRecord {
  id: number;
  round: number;
  iteration: number;
  alpha: number;
  violation: number;
  /** Number of X̃ examples (of the round's set) misclassified at this point. */
  misclassified: number;
  cleanLoss: number;
  distance: number;
  feasible: boolean;
  /** Set on the points of the closing segment w₀ + t·(w* − w₀) (alpha holds t); absent on line-search candidates. */
  segment?: true;
}

export interface InfeasibleEvent {
  round: number;
  iteration: number;
  /** Cuts dropped because the Farkas certificate put weight on them. */
  dropped: number;
  /** The rule applied (docs/correction.md, "Infeasible QPs"). */
  rule: string;
}

export interface RoundSummary {
  round: number;
  /** |X̃| after this round's additions. */
  adversarialCount: number;
  iterations: number;
  stopReason: StopReason;
  /** Examples of X̃ classified correctly before this round and after it. */
  correctedBefore: number;
  correctedAfter: number;
}

/** Everything `correct()` reports about a run (result.json adds settings and test metrics). */
export interface CorrectionResult {
  parameters: { count: number; layers: string[] };
  options: CorrectionOptions;
  /** Loss level η and the clean loss before and after. */
  eta: number;
  cleanLossBefore: number;
  cleanLossAfter: number;
  adversarial: {
    count: number;
    /** Correctly classified examples of the final X̃ under w₀ and under the chosen point. */
    correctBefore: number;
    correctAfter: number;
    violationBefore: number;
    violationAfter: number;
    labels: number[];
    predictionsBefore: number[];
    predictionsAfter: number[];
    /** Round that generated each example. */
    rounds: number[];
  };
  iterations: IterationLog[];
  rounds: RoundSummary[];
  /** The final front: the last round's Pareto pool with the closing-segment points (w₀ included while non-dominated). The answer is chosen from it by ω. */
  pool: CandidateRecord[];
  /** Every evaluated candidate, in order. */
  candidates: CandidateRecord[];
  chosen: CandidateRecord;
  /** ‖w − w₀‖₂ and ‖w − w₀‖₂ / ‖w₀‖₂ of the chosen point. */
  distance: number;
  relativeDistance: number;
  infeasible: InfeasibleEvent[];
  totalQpTimeMs: number;
  totalTimeMs: number;
  /** True when this run continued from a checkpoint. */
  resumed: boolean;
  /** Set when options.budgetSeconds was given: how the budget ended the run. */
  budget?: BudgetOutcome;
}

/** Progress events of `correct()`. */
export type CorrectionProgress =
  | { kind: 'start'; parameters: number; eta: number; cleanLoss: number; adversarial: number; violation: number }
  | ({ kind: 'iteration'; maxIterations: number; rounds: number } & IterationLog)
  | { kind: 'round'; round: number; adversarial: number }
  | { kind: 'infeasible'; round: number; iteration: number; dropped: number }
  | { kind: 'checkpoint'; round: number; iteration: number };
