/**
 * Adversary correction: the cutting-plane loop (docs/correction.md), written as Algorithm 1 of
 * Zhao & Kronqvist (arXiv 2409.13770) with each step in its own file:
 *
 *   minimise ‖w − w₀‖²  s.t.  g_ij(w) = f_j(x̃ᵢ; w) − f_{yᵢ}(x̃ᵢ; w) + δ ≤ 0   (j ≠ yᵢ)
 *                             h(w)    = L_clean(w) − η ≤ 0
 *
 * Algorithm 1                                     here
 *   input w₀, X̃, clean data; η = (1 + τ)·L(w₀)    measureStart (criteria.ts), initialState (state.ts)
 *   for r = 1..R (outer rounds)                    while (!state.done)
 *     r ≥ 2: X̃ ← X̃ ∪ attack(w_k); reset P          appendExamples, restartRound (rounds.ts)
 *     for k = 1..M (inner iterations)              while (!stop && iteration < maxIterations)
 *       add cuts of g and h at w_k to W_cut         linearise, LiveCuts.append, cutsOverLimit (cuts.ts)
 *       ŵ ← argmin ‖w − w₀‖² over W_cut             solveCutQp (qp-step.ts)
 *       w(α) = w_k + α(ŵ − w_k), α ∈ grid           lineSearch (line-search.ts)
 *       P ← non-dominated (V, L); pick w_{k+1}      selectAndOffer (pareto-pool.ts)
 *       stop when V = 0 and L ≤ η, or stalled      stopReason; the time budget: budgetAfterIteration (stopping.ts)
 *     round end: continue from the best of P       endRound, nextRoundStart (rounds.ts); budgetAfterRound (stopping.ts)
 *   answer: ω·Ṽ + (1 − ω)·L̃ over the final front   finalAnswer (pareto-pool.ts), correctionResult (result.ts)
 */
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { AdvcorrectError, abortError } from '../errors.js';
import { ParameterView } from '../models/parameters.js';
import { cleanLoss, compileInputs } from '../models/index.js';
import { CutPool } from '../qp/cut-pool.js';
import { FactoredCutPool } from '../qp/factored-pool.js';
import { candidateEntry, evaluatePoint, measureStart } from './criteria.js';
import { LiveCuts, cutsOverLimit, linearise, longInactive, rebuildCuts, trackInactivity, type CutPoolLike } from './cuts.js';
import { lineSearch } from './line-search.js';
import { resolveCorrectionOptions, upgradeSavedOptions, type CorrectionOptionsInput } from './options.js';
import { chooseRowPath } from './row-path.js';
import { bestFeasibleViolation, finalAnswer, selectAndOffer } from './pareto-pool.js';
import { solveCutQp, type CutQpSnapshot } from './qp-step.js';
import { correctionResult } from './result.js';
import { appendExamples, endRound, nextRoundStart, restartRound, roundSummary } from './rounds.js';
import { ParetoPool } from './selection.js';
import {
  checkResumable,
  distance,
  initialState,
  norm,
  snapshotState,
  stripW,
  sum,
  type CorrectionProblem,
  type CorrectionState,
  type LabelledImages,
  type ParetoPoolEntry,
} from './state.js';
import { budgetAfterIteration, budgetAfterRound, checkBudgetFits, correctAfter, stopReason } from './stopping.js';
import type { CorrectionProgress, CorrectionResult, IterationLog, StopReason } from './types.js';

export type { CutPoolLike, CutRow } from './cuts.js';
export { INFEASIBLE_RULE, dropInfeasible, type CutQpSnapshot } from './qp-step.js';
export type { CorrectionState, CutRecord, LabelledImages, ParetoPoolEntry } from './state.js';

export interface CorrectionControl {
  signal?: AbortSignal;
  onProgress?: (event: CorrectionProgress) => void;
  /** Makes the adversarial examples of round r ≥ 2 against the current model (needed when rounds > 1). */
  regenerate?: (model: LayersModel, round: number, signal?: AbortSignal) => Promise<LabelledImages>;
  /** Called with a snapshot after every finished iteration (and round start); await-ed. */
  onCheckpoint?: (state: CorrectionState) => Promise<void> | void;
  /** Continue from a checkpointed state (same model, X̃, clean data and options). */
  resume?: CorrectionState;
  /** Called with each cut QP before it is solved (for --dump-qp). Rows are given in CSR. */
  onQp?: (qp: CutQpSnapshot) => Promise<void> | void;
  /** Creates the cut pool (default: defaultCutPool, the native CutPool of lib/qp/cut-pool.ts). For tests and alternative solvers. */
  createPool?: (n: number) => Promise<CutPoolLike> | CutPoolLike;
}

export interface CorrectionOutput {
  /** The corrected model: a new LayersModel (the input model is not modified). */
  model: LayersModel;
  result: CorrectionResult;
  /** The final state (a finished checkpoint). */
  state: CorrectionState;
  /** The final front with weights (result.pool with w): the answer for another ω is chooseAnswer(front, ω, η). */
  front: ParetoPoolEntry[];
}

/**
 * The cut pool the loop uses unless control.createPool says otherwise: the native CutPool. A
 * missing addon throws AdvcorrectError('ERR_NATIVE_MISSING') from lib/native.ts, unchanged.
 */
export function defaultCutPool(n: number): CutPoolLike {
  return new CutPool(n, {});
}

/** A new LayersModel with the same topology and weights (the input stays untouched). */
export async function cloneModel(model: LayersModel): Promise<LayersModel> {
  const topology = model.toJSON(null, false) as unknown as Parameters<typeof tfl.models.modelFromJSON>[0]['modelTopology'];
  const copy = await tfl.models.modelFromJSON({ modelTopology: topology });
  copy.setWeights(model.getWeights());
  const meta = model.getUserDefinedMetadata();
  if (meta) copy.setUserDefinedMetadata(meta);
  return copy;
}

function checkLabelled(name: string, data: LabelledImages, inputSize: number, numClasses: number): number {
  if (data === null || typeof data !== 'object') throw new TypeError(`${name} must be an object with images and labels`);
  if (!(data.images instanceof Float32Array)) throw new TypeError(`${name}.images must be a Float32Array`);
  const labels = data.labels;
  if (labels === null || typeof labels !== 'object' || typeof labels.length !== 'number') throw new TypeError(`${name}.labels must be an array of class indices`);
  const count = labels.length;
  if (count === 0) throw new RangeError(`${name} is empty`);
  if (data.images.length !== count * inputSize) {
    throw new RangeError(
      `${name} does not fit the model: ${data.images.length} pixel values for ${count} labels, ` +
        `but the model takes ${inputSize} values per image (${count * inputSize} expected)`,
    );
  }
  for (let i = 0; i < count; i++) {
    const y = labels[i]!;
    if (!Number.isInteger(y) || y < 0 || y >= numClasses) throw new RangeError(`${name}.labels[${i}] = ${y} is not a class of the model (0..${numClasses - 1})`);
  }
  return count;
}

function yieldNow(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Corrects `model` so that the adversarial examples are classified with margin δ while the clean
 * loss stays ≤ η, with a minimal weight change. Returns a new model and the result; `model` is
 * not modified. Runs on the active tfjs backend (call initBackend first); no global state.
 */
export async function correct(
  model: LayersModel,
  adversarial: LabelledImages,
  cleanData: LabelledImages,
  optionsInput: CorrectionOptionsInput = {},
  control: CorrectionControl = {},
): Promise<CorrectionOutput> {
  if (model === null || typeof model !== 'object' || !(model instanceof tfl.LayersModel)) throw new TypeError('model must be a tf.LayersModel');
  if (control === null || typeof control !== 'object') throw new TypeError('control must be an object');
  // A checkpoint written before 0.2.0 names some options the old way (qpEps).
  const options = resolveCorrectionOptions(control.resume ? upgradeSavedOptions(control.resume.options) : optionsInput);
  const { signal, onProgress } = control;
  const { inputSize, numClasses } = compileInputs(model);
  checkLabelled('adversarial', adversarial, inputSize, numClasses);
  const cleanCount = checkLabelled('cleanData', cleanData, inputSize, numClasses);
  if (options.rounds > 1 && typeof control.regenerate !== 'function') {
    throw new TypeError('options.rounds > 1 needs control.regenerate to make the adversarial examples of later rounds');
  }
  const checkAbort = () => {
    if (signal?.aborted) throw abortError(signal);
  };
  checkAbort();

  const started = Date.now();
  const work = await cloneModel(model);
  let cutPool: CutPoolLike | undefined;
  try {
    // Input: w₀, X̃, the clean data, η; the state of a fresh run or of the checkpoint.
    const view = new ParameterView(work, options.layers === 'all' ? undefined : options.layers);
    const n = view.size;
    if (n === 0) throw new AdvcorrectError('ERR_MODEL', 'the model has no trainable parameters to correct');
    const w0 = view.read();
    const cleanLabels = Uint8Array.from(cleanData.labels as ArrayLike<number>);
    const fixed = { work, view, n, w0, inputSize, numClasses, options, cleanImages: cleanData.images, cleanLabels, signal };
    const fingerprint = { w0Sum: sum(w0), cleanSum: sum(cleanData.images), cleanCount };
    let state: CorrectionState;
    if (control.resume) {
      state = control.resume;
      checkResumable(state, n, inputSize, numClasses, fingerprint);
    } else {
      const advImages = adversarial.images.slice();
      const advLabels = Uint8Array.from(adversarial.labels as ArrayLike<number>);
      const { cleanLoss0, eta, start } = await measureStart(fixed, advImages, advLabels);
      if (options.budgetSeconds !== undefined) {
        // A budget shorter than one iteration is refused before the loop: one more clean forward pass, timed warm.
        const t0 = performance.now();
        await cleanLoss(work, cleanData.images, cleanLabels, { signal });
        checkBudgetFits(options.budgetSeconds, performance.now() - t0, options.alphas.length, cleanCount);
      }
      state = initialState({ options, parameterCount: n, layers: view.layers, inputSize, numClasses, fingerprint, eta, cleanLoss0, w0, advImages, advLabels, start });
      onProgress?.({ kind: 'start', parameters: n, eta, cleanLoss: cleanLoss0, adversarial: advLabels.length, violation: start.violation });
    }
    // Stored rows or rows kept as factors (options.rows); a createPool without appendFactored gets stored rows.
    let factored = chooseRowPath(options, work, view, state.advLabels.length, numClasses).layout;
    cutPool = control.createPool ? await control.createPool(n) : factored ? new FactoredCutPool(n, factored.blocks) : defaultCutPool(n);
    if (typeof cutPool.appendFactored !== 'function') factored = undefined;
    const problem: CorrectionProblem = { ...fixed, eta: state.eta, cleanLoss0: state.cleanLoss0, ...(factored ? { factored } : {}) };
    const eta = state.eta;
    const resumed = Boolean(control.resume);
    const elapsed = ((startElapsed: number) => () => startElapsed + (Date.now() - started))(state.elapsedMs);
    const evaluate = (w: Float64Array) => evaluatePoint(problem, state.advImages, state.advLabels, w);

    // W_cut: the cut pool (rebuilt row for row on a resume) and P: the Pareto pool.
    const cuts = new LiveCuts(cutPool, n, state, Boolean(control.onQp), factored);
    if (resumed && state.cuts.length > 0) {
      const stored = state.cuts;
      state.cuts = [];
      await rebuildCuts(problem, cuts, stored, state.points, state.pointAdvCount, state.advImages, state.advLabels, checkAbort);
    }
    const paretoPool = new ParetoPool<ParetoPoolEntry>(state.pool);
    const snapshot = () => snapshotState(state, paretoPool, elapsed());

    // for r = 1..R
    while (!state.done) {
      checkAbort();
      if (!state.roundStarted) {
        // Round r ≥ 2: new adversarial examples against the current iterate, a new Pareto pool.
        view.write(state.w);
        const fresh = await control.regenerate!(work, state.round, signal);
        checkLabelled(`adversarial (round ${state.round})`, fresh, inputSize, numClasses);
        Object.assign(state, appendExamples(state, fresh, state.round));
        restartRound(state, paretoPool, await evaluate(state.w), w0);
        onProgress?.({ kind: 'round', round: state.round, adversarial: state.advLabels.length });
        await control.onCheckpoint?.(snapshot());
      }

      // for k = 1..M
      let stop: StopReason | undefined;
      while (!stop && state.iteration < options.maxIterations) {
        checkAbort();
        const iterStart = Date.now();
        const k = state.iteration + 1;
        const wk = state.w;

        // Cuts at w_k on X̃ so far; over maxCuts, the longest-inactive ones go.
        const point = state.points.push(wk) - 1;
        state.pointAdvCount.push(state.advLabels.length);
        const rows = await linearise(problem, wk, state.advImages, state.advLabels);
        for (const row of rows) cuts.append(point, row);
        let removed = cuts.remove(cutsOverLimit(state.cuts, options.maxCuts, point));
        checkAbort();

        // ŵ = argmin ½‖w − w₀‖² over every cut (the support of a Farkas certificate is dropped).
        const step = await solveCutQp(cuts, w0, options, { round: state.round, iteration: k }, {
          signal,
          checkAbort,
          onQp: control.onQp,
          onInfeasible: (event) => {
            state.infeasible.push(event);
            onProgress?.({ kind: 'infeasible', round: event.round, iteration: event.iteration, dropped: event.dropped });
          },
        });
        state.qpTimeMs += step.solveTimeMs;
        removed += step.removed;
        if (step.usable && trackInactivity(state.cuts, step.qp.y) && options.dropInactiveAfter > 0) {
          removed += cuts.remove(longInactive(state.cuts, options.dropInactiveAfter, point));
        }

        // Line search w_k + α(ŵ − w_k) over the α grid, each candidate measured on (V, L).
        const line = step.usable ? await lineSearch(wk, step.qp.x, options.alphas, evaluate, checkAbort) : [];
        const candidates = line.map(({ t, w, at }) => candidateEntry(at, w, w0, eta, { id: state.nextId++, round: state.round, iteration: k, alpha: t }));
        state.candidates.push(...candidates.map(stripW));

        // Selection: w_{k+1} by ω among the candidates; the non-dominated ones enter P.
        const { next, entered } = selectAndOffer(candidates, paretoPool, options.omega, eta);
        if (next) state.w = next.w;
        state.iteration = k;
        state.bestViolation = Math.min(state.bestViolation, bestFeasibleViolation(paretoPool.members));
        state.stall = entered > 0 ? 0 : state.stall + 1;
        const log = iterationLog(state, k, rows.length, removed, step.qp, next, distance(state.w, w0), Date.now() - iterStart);
        state.log.push(log);
        onProgress?.({ kind: 'iteration', maxIterations: options.maxIterations, rounds: options.rounds, ...log });

        // Stop tests (and the time budget); a stopped round ends the run or hands its best point to the next round.
        stop = stopReason({
          next,
          step: next ? distance(next.w, wk) : 0,
          normWk: norm(wk),
          stall: state.stall,
          patience: options.patience,
          iteration: state.iteration,
          maxIterations: options.maxIterations,
          violation: options.violation,
        });
        if (!stop && options.budgetSeconds !== undefined) {
          state.budget = budgetAfterIteration(options.budgetSeconds, elapsed(), state.round, state.iteration);
          if (state.budget) stop = 'budget_spent';
        }
        if (stop) {
          const count = state.advLabels.length;
          const summary = roundSummary(state, stop, correctAfter(count, next ? next.misclassified : -1));
          if (options.budgetSeconds !== undefined && !state.budget) state.budget = budgetAfterRound(options.budgetSeconds, elapsed(), state.round, options.rounds);
          const lastRound = state.budget ? state.round : options.rounds;
          endRound(state, summary, lastRound, state.round < lastRound ? nextRoundStart(paretoPool.members, eta) : undefined);
        }
        state.pool = [...paretoPool.members];
        await control.onCheckpoint?.(snapshot());
        await yieldNow();
      }
      if (!stop) {
        // M reached before the loop body set a reason (e.g. resumed at the limit).
        if (options.budgetSeconds !== undefined && !state.budget) state.budget = budgetAfterRound(options.budgetSeconds, elapsed(), state.round, options.rounds);
        endRound(state, roundSummary(state, 'max_iterations', state.correctAtRoundStart), state.budget ? state.round : options.rounds, undefined);
      }
    }

    // The answer: ω picks from the final front (the Pareto pool and the closing segment w₀ → w*).
    const answer = await finalAnswer(paretoPool.members, {
      w0,
      eta,
      omega: options.omega,
      segmentPoints: options.segmentPoints,
      round: state.round,
      firstId: state.nextId,
      evaluate,
      checkAbort,
    });
    const result = correctionResult(problem, state, answer, { totalTimeMs: elapsed(), resumed });
    state.pool = [...paretoPool.members];
    state.elapsedMs = result.totalTimeMs;
    return { model: work, result, state, front: answer.front };
  } catch (error) {
    work.dispose();
    throw error;
  } finally {
    cutPool?.dispose?.();
  }
}

/** The log line of inner iteration k (criteria of the new iterate; NaN and −1 when there was no step). */
function iterationLog(
  state: CorrectionState,
  k: number,
  cutsAdded: number,
  cutsRemoved: number,
  qp: { status: string; iterations: number; solveTimeMs: number; objective: number },
  next: ParetoPoolEntry | undefined,
  distanceToW0: number,
  timeMs: number,
): IterationLog {
  const at = next ?? { violation: Number.NaN, misclassified: -1, cleanLoss: Number.NaN, feasible: false, alpha: 0 };
  return {
    round: state.round,
    iteration: k,
    cutsAdded,
    cutsTotal: state.cuts.length,
    cutsRemoved,
    qpStatus: qp.status,
    qpIterations: qp.iterations,
    qpTimeMs: qp.solveTimeMs,
    qpObjective: qp.objective,
    alpha: next ? next.alpha : 0,
    violation: at.violation,
    misclassified: at.misclassified,
    cleanLoss: at.cleanLoss,
    distance: distanceToW0,
    feasible: at.feasible,
    timeMs,
  };
}
