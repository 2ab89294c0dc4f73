/**
 * Outer rounds (docs/correction.md, "Outer rounds"): a new round appends fresh adversarial examples
 * to X̃ and restarts the Pareto pool from the current iterate; a finished round either ends the run
 * or moves on from the best point of its Pareto pool.
 */
import { candidateEntry, type PointCriteria } from './criteria.js';
import { chooseFinal, type ParetoPool } from './selection.js';
import { stripW, type CorrectionState, type LabelledImages, type ParetoPoolEntry } from './state.js';
import type { RoundSummary, StopReason } from './types.js';

/** X̃ with `fresh` appended, and the round number recorded for each new example. */
export function appendExamples(
  state: Pick<CorrectionState, 'advImages' | 'advLabels' | 'advRounds'>,
  fresh: LabelledImages,
  round: number,
): { advImages: Float32Array; advLabels: Uint8Array; advRounds: Uint8Array } {
  const count = fresh.labels.length;
  const images = new Float32Array(state.advImages.length + fresh.images.length);
  images.set(state.advImages);
  images.set(fresh.images, state.advImages.length);
  const labels = new Uint8Array(state.advLabels.length + count);
  labels.set(state.advLabels);
  labels.set(Uint8Array.from(fresh.labels as ArrayLike<number>), state.advLabels.length);
  const rounds = new Uint8Array(labels.length);
  rounds.set(state.advRounds);
  rounds.fill(round, state.advRounds.length);
  return { advImages: images, advLabels: labels, advRounds: rounds };
}

/**
 * Starts the round in state.round on the new X̃: the criteria change with X̃, so the current iterate
 * `at` (measured on the new X̃) becomes the only member of the Pareto pool, and the stall count,
 * the best violation and the count of correct examples start again.
 */
export function restartRound(state: CorrectionState, paretoPool: ParetoPool<ParetoPoolEntry>, at: PointCriteria, w0: Float64Array): void {
  const current = candidateEntry(at, state.w, w0, state.eta, { id: state.nextId++, round: state.round, iteration: 0, alpha: 0 });
  state.pool = [current];
  paretoPool.reset([current]);
  state.candidates.push(stripW(current));
  state.bestViolation = current.feasible ? current.violation : Infinity;
  state.stall = 0;
  state.correctAtRoundStart = state.advLabels.length - at.misclassified;
  state.iteration = 0;
  state.roundStarted = true;
}

/** The summary of the round in progress, stopped for `stop` with `correctedAfter` examples of X̃ correct. */
export function roundSummary(
  state: Pick<CorrectionState, 'round' | 'advLabels' | 'iteration' | 'correctAtRoundStart'>,
  stop: StopReason,
  correctedAfter: number,
): RoundSummary {
  return {
    round: state.round,
    adversarialCount: state.advLabels.length,
    iterations: state.iteration,
    stopReason: stop,
    correctedBefore: state.correctAtRoundStart,
    correctedAfter,
  };
}

/**
 * Records a finished round. The run is done after the last round (`rounds`); otherwise the next
 * round starts from `from` (the loop passes the best point of the Pareto pool; undefined keeps w).
 */
export function endRound(state: CorrectionState, summary: RoundSummary, rounds: number, from: Float64Array | undefined): void {
  state.rounds.push(summary);
  if (state.round >= rounds) state.done = true;
  else {
    state.round++;
    state.roundStarted = false;
    if (from) state.w = from;
  }
}

/** The point the next round continues from: the best point of this round's Pareto pool. */
export function nextRoundStart(members: readonly ParetoPoolEntry[], eta: number): Float64Array {
  return chooseFinal(members, eta).w;
}
