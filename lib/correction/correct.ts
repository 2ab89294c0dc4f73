/**
 * Adversary correction: the cutting-plane loop (docs/correction.md).
 *
 *   minimise ‖w − w₀‖²  s.t.  g_ij(w) = f_j(x̃ᵢ; w) − f_{yᵢ}(x̃ᵢ; w) + δ ≤ 0   (j ≠ yᵢ)
 *                             h(w)    = L_clean(w) − η ≤ 0
 *
 * Inner iteration k at w_k: linearise the near-active margin constraints and h at w_k and append
 * the cuts ∇gᵀw ≤ ∇gᵀw_k − g(w_k) to the native cut pool; solve min ½‖w − w₀‖² over all cuts
 * (warm-started dual active set) → ŵ; line-search w(α) = w_k + α(ŵ − w_k) over the α grid;
 * evaluate V and L at each candidate; keep the non-dominated ones in the Pareto pool; pick
 * w_{k+1} by the normalised weighted sum (selection.ts). Outer rounds regenerate X̃.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { AdvcorrectError, abortError } from '../errors.js';
import { ParameterView } from '../models/parameters.js';
import { cleanLoss, cleanLossGradient, compileInputs, marginRows, predictLogits } from '../models/index.js';
import type { QpResult } from '../qp/types.js';
import { resolveCorrectionOptions, type CorrectionOptions, type CorrectionOptionsInput } from './options.js';
import { ParetoPool, chooseAnswer, chooseFinal, chooseWeighted, segmentGrid } from './selection.js';
import type {
  CandidateRecord,
  CorrectionProgress,
  CorrectionResult,
  InfeasibleEvent,
  IterationLog,
  RoundSummary,
  StopReason,
} from './types.js';

/** Images with labels: an ImageDataset fits. Images are NHWC float32 in the model's input space. */
export interface LabelledImages {
  images: Float32Array;
  labels: ArrayLike<number>;
}

/** The cut pool as the loop uses it (lib/qp/cut-pool.ts). */
export interface CutPoolLike {
  readonly size: number;
  appendDense(row: Float32Array | Float64Array, upper: number, lower?: number): number;
  appendSparse(index: Int32Array, value: Float32Array | Float64Array, upper: number, lower?: number): number;
  remove(ids: ArrayLike<number>): number;
  solve(
    w0: Float64Array,
    options: { solver?: 'dual' | 'admm'; eps?: number; timeLimitMs?: number; warmStart?: boolean; signal?: AbortSignal },
  ): Promise<QpResult>;
  dispose?(): void;
}

/** One stored cut: where it was made and for which constraint (enough to rebuild it). */
export interface CutRecord {
  /** Pool id returned by append. */
  id: number;
  /** Index into the state's linearisation points. */
  point: number;
  /** Example index in X̃, −1 for the loss cut. */
  example: number;
  /** Wrong class j, −1 for the loss cut. */
  cls: number;
  /** Consecutive solves with a zero multiplier. */
  inactive: number;
}

/** A pool member with its weights (kept in the state so the answer can be recovered). */
export interface PoolEntry extends CandidateRecord {
  w: Float64Array;
}

/** Everything needed to continue a run exactly where it stopped (checkpoint.ts stores it). */
export interface CorrectionState {
  kind: 'advcorrect-correction-state';
  options: CorrectionOptions;
  parameterCount: number;
  layers: string[];
  inputSize: number;
  numClasses: number;
  /** Sum of w₀ and of the clean images, to catch a resume against other inputs. */
  fingerprint: { w0Sum: number; cleanSum: number; cleanCount: number };
  eta: number;
  cleanLoss0: number;
  w0Norm: number;
  /** X̃ so far (all rounds), and the round that made each example. */
  advImages: Float32Array;
  advLabels: Uint8Array;
  advRounds: Uint8Array;
  /** Round in progress (1-based), iterations finished in it, and whether the run is over. */
  round: number;
  iteration: number;
  roundStarted: boolean;
  done: boolean;
  /** Current iterate w_k. */
  w: Float64Array;
  /** Linearisation points, and the |X̃| in force at each (cuts use the first advCount examples). */
  points: Float64Array[];
  pointAdvCount: number[];
  cuts: CutRecord[];
  pool: PoolEntry[];
  candidates: CandidateRecord[];
  nextId: number;
  log: IterationLog[];
  rounds: RoundSummary[];
  infeasible: InfeasibleEvent[];
  bestViolation: number;
  stall: number;
  correctAtRoundStart: number;
  elapsedMs: number;
  qpTimeMs: number;
}

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
  /** Creates the cut pool (default: lib/qp/cut-pool.ts). For tests and alternative solvers. */
  createPool?: (n: number) => Promise<CutPoolLike> | CutPoolLike;
}

export interface CutQpSnapshot {
  round: number;
  iteration: number;
  /** Solve attempt within the iteration (re-solves after dropping infeasible cuts count up). */
  attempt: number;
  rowPtr: Int32Array;
  colIndex: Int32Array;
  values: Float64Array;
  rowLower: Float64Array;
  rowUpper: Float64Array;
  w0: Float64Array;
}

export interface CorrectionOutput {
  /** The corrected model: a new LayersModel (the input model is not modified). */
  model: LayersModel;
  result: CorrectionResult;
  /** The final state (a finished checkpoint). */
  state: CorrectionState;
  /** The final front with weights (result.pool with w): the answer for another ω is chooseAnswer(front, ω, η). */
  front: PoolEntry[];
}

const INFEASIBLE_RETRIES = 3;

async function defaultPool(n: number): Promise<CutPoolLike> {
  const specifier = '../qp/cut-pool.js';
  let mod: Record<string, unknown>;
  try {
    mod = (await import(specifier)) as Record<string, unknown>;
  } catch (error) {
    throw new AdvcorrectError('ERR_NATIVE_MISSING', `the cut pool (lib/qp/cut-pool.ts) is not available: ${(error as Error).message}`, { cause: error });
  }
  const Ctor = mod.CutPool as new (n: number, options?: object) => CutPoolLike;
  return new Ctor(n, {});
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

function norm(v: Float64Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

function distance(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    s += d * d;
  }
  return Math.sqrt(s);
}

function sum(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]!;
  return s;
}

function yieldNow(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The criteria of one point on X̃ (logits only). */
function violationOf(logits: Float32Array, labels: ArrayLike<number>, count: number, C: number, delta: number) {
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
  const options = resolveCorrectionOptions(control.resume ? control.resume.options : optionsInput);
  const { signal, onProgress } = control;
  const shape = compileInputs(model);
  const inputSize = shape.inputSize;
  const C = shape.numClasses;
  const advCount0 = checkLabelled('adversarial', adversarial, inputSize, C);
  const cleanCount = checkLabelled('cleanData', cleanData, inputSize, C);
  if (options.rounds > 1 && typeof control.regenerate !== 'function') {
    throw new TypeError('options.rounds > 1 needs control.regenerate to make the adversarial examples of later rounds');
  }
  const checkAbort = () => {
    if (signal?.aborted) throw abortError(signal);
  };
  checkAbort();

  const started = Date.now();
  const work = await cloneModel(model);
  let pool: CutPoolLike | undefined;
  try {
    const view = new ParameterView(work, options.layers === 'all' ? undefined : options.layers);
    const n = view.size;
    if (n === 0) throw new AdvcorrectError('ERR_MODEL', 'the model has no trainable parameters to correct');
    const w0 = view.read();
    const cleanImages = cleanData.images;
    const cleanLabels = Uint8Array.from(cleanData.labels as ArrayLike<number>);
    const fingerprint = { w0Sum: sum(w0), cleanSum: sum(cleanImages), cleanCount };

    // ---- state: fresh or resumed -------------------------------------------------------------
    let state: CorrectionState;
    if (control.resume) {
      state = control.resume;
      if (state.kind !== 'advcorrect-correction-state') throw new AdvcorrectError('ERR_PARSE', 'control.resume is not a correction state');
      if (state.parameterCount !== n || state.inputSize !== inputSize || state.numClasses !== C) {
        throw new AdvcorrectError('ERR_MODEL', `the checkpoint was made for a model with ${state.parameterCount} parameters, ${state.inputSize} inputs and ${state.numClasses} classes; this one has ${n}, ${inputSize} and ${C}`);
      }
      if (state.fingerprint.w0Sum !== fingerprint.w0Sum) throw new AdvcorrectError('ERR_MODEL', 'the checkpoint was made from other model weights');
      if (state.fingerprint.cleanSum !== fingerprint.cleanSum || state.fingerprint.cleanCount !== cleanCount) {
        throw new AdvcorrectError('ERR_DATA', 'the checkpoint was made with other clean data');
      }
    } else {
      const advLabels = Uint8Array.from(adversarial.labels as ArrayLike<number>);
      view.write(w0);
      const L0 = await cleanLoss(work, cleanImages, cleanLabels, { signal });
      const eta = options.eta ?? (1 + options.tau) * L0;
      const advImages = adversarial.images.slice();
      const logits0 = predictLogits(work, advImages);
      const v0 = violationOf(logits0, advLabels, advCount0, C, options.delta);
      const start: PoolEntry = {
        id: 0,
        round: 0,
        iteration: 0,
        alpha: 0,
        violation: options.violation === 'sum' ? v0.sumViolation : v0.misclassified / advCount0,
        misclassified: v0.misclassified,
        cleanLoss: L0,
        distance: 0,
        feasible: L0 <= eta,
        w: w0,
      };
      state = {
        kind: 'advcorrect-correction-state',
        options,
        parameterCount: n,
        layers: [...view.layers],
        inputSize,
        numClasses: C,
        fingerprint,
        eta,
        cleanLoss0: L0,
        w0Norm: norm(w0),
        advImages,
        advLabels,
        advRounds: new Uint8Array(advCount0).fill(1),
        round: 1,
        iteration: 0,
        roundStarted: true,
        done: false,
        w: w0,
        points: [],
        pointAdvCount: [],
        cuts: [],
        pool: [start],
        candidates: [stripW(start)],
        nextId: 1,
        log: [],
        rounds: [],
        infeasible: [],
        bestViolation: start.violation,
        stall: 0,
        correctAtRoundStart: advCount0 - v0.misclassified,
        elapsedMs: 0,
        qpTimeMs: 0,
      };
      onProgress?.({ kind: 'start', parameters: n, eta, cleanLoss: L0, adversarial: advCount0, violation: start.violation });
    }
    const eta = state.eta;
    const resumed = Boolean(control.resume);
    const startElapsed = state.elapsedMs;
    const elapsed = () => startElapsed + (Date.now() - started);

    // ---- evaluation of a point ---------------------------------------------------------------
    const evaluate = async (w: Float64Array) => {
      view.write(w);
      const count = state.advLabels.length;
      const logits = predictLogits(work, state.advImages);
      const v = violationOf(logits, state.advLabels, count, C, options.delta);
      const L = await cleanLoss(work, cleanImages, cleanLabels, { signal });
      return {
        violation: options.violation === 'sum' ? v.sumViolation : v.misclassified / count,
        misclassified: v.misclassified,
        cleanLoss: L,
        predictions: v.predictions,
      };
    };

    // ---- cuts ---------------------------------------------------------------------------------
    pool = await (control.createPool ?? defaultPool)(n);
    /** JS copies of the rows, only when --dump-qp wants them. */
    const rowsForDump = control.onQp ? new Map<number, { index: Int32Array; value: Float64Array; upper: number }>() : undefined;

    /** Linearises at point p; returns the cuts that the rule selects (margin rows, then the loss row). */
    const linearise = async (pointIndex: number, only?: Set<string>) => {
      const p = state.points[pointIndex]!;
      const advCount = state.pointAdvCount[pointIndex]!;
      view.write(p);
      const images = state.advImages.subarray(0, advCount * inputSize);
      const labels = state.advLabels.subarray(0, advCount);
      // Margin cuts aim at δ(1 + slack); the loss cut at η − slack·(η − L₀) (options.cutSlack).
      const deltaCut = options.delta * (1 + options.cutSlack);
      const etaCut = eta - options.cutSlack * Math.max(0, eta - state.cleanLoss0);
      const rows = await marginRows(work, view, images, labels, { delta: deltaCut, classes: options.cutClasses, format: 'sparse', signal });
      const out: Array<{ example: number; cls: number; index: Int32Array; value: Float32Array | Float64Array; upper: number }> = [];
      for (let r = 0; r < rows.count; r++) {
        const g = rows.value[r]!;
        const example = rows.example[r]!;
        const cls = rows.wrongClass[r]!;
        const key = `${example}:${cls}`;
        if (only ? !only.has(key) : g - (deltaCut - options.delta) < -options.activeTolerance) continue;
        const { index, value } = rows.sparse![r]!;
        // upper = ∇gᵀp − g(p)
        let dot = 0;
        for (let t = 0; t < index.length; t++) dot += value[t]! * p[index[t]!]!;
        if (!Number.isFinite(dot - g)) {
          throw new AdvcorrectError('ERR_MODEL', `the margin gradient of example ${example}, class ${cls} is not finite (g = ${g}); the gradient engine returned NaN/Infinity`);
        }
        out.push({ example, cls, index, value, upper: dot - g });
      }
      if (!only || only.has('-1:-1')) {
        const { loss, gradient } = await cleanLossGradient(work, view, cleanImages, cleanLabels, { signal });
        let dot = 0;
        for (let i = 0; i < n; i++) dot += gradient[i]! * p[i]!;
        // Loss cut: L(p) + ∇Lᵀ(w − p) ≤ η'  ⇔  ∇Lᵀw ≤ ∇Lᵀp − (L(p) − η')
        const all = new Int32Array(n);
        for (let i = 0; i < n; i++) all[i] = i;
        if (!Number.isFinite(dot - loss)) throw new AdvcorrectError('ERR_MODEL', `the clean-loss gradient is not finite (loss ${loss})`);
        out.push({ example: -1, cls: -1, index: all, value: gradient, upper: dot - (loss - etaCut) });
      }
      return out;
    };

    const appendCut = (pointIndex: number, cut: { example: number; cls: number; index: Int32Array; value: Float32Array | Float64Array; upper: number }): CutRecord => {
      let id: number;
      if (cut.index.length * 2 > n) {
        // Dense enough: store densely (4 or 8 bytes a value instead of index + value).
        const dense = cut.value instanceof Float64Array ? new Float64Array(n) : new Float32Array(n);
        for (let t = 0; t < cut.index.length; t++) dense[cut.index[t]!] = cut.value[t]!;
        id = pool!.appendDense(dense, cut.upper);
      } else {
        id = pool!.appendSparse(cut.index, cut.value, cut.upper);
      }
      if (rowsForDump) rowsForDump.set(id, { index: cut.index, value: Float64Array.from(cut.value), upper: cut.upper });
      return { id, point: pointIndex, example: cut.example, cls: cut.cls, inactive: 0 };
    };

    const removeCuts = (ids: number[]) => {
      if (ids.length === 0) return 0;
      const gone = new Set(ids);
      pool!.remove(Int32Array.from(ids));
      state.cuts = state.cuts.filter((c) => !gone.has(c.id));
      if (rowsForDump) for (const id of ids) rowsForDump.delete(id);
      return ids.length;
    };

    // Rebuild the pool of a resumed run: re-linearise at each stored point, keep the live cuts.
    if (resumed && state.cuts.length > 0) {
      const keysByPoint = new Map<number, Set<string>>();
      for (const c of state.cuts) {
        const keys = keysByPoint.get(c.point) ?? new Set<string>();
        keys.add(`${c.example}:${c.cls}`);
        keysByPoint.set(c.point, keys);
      }
      const made = new Map<string, Awaited<ReturnType<typeof linearise>>[number]>();
      for (const [pointIndex, keys] of [...keysByPoint.entries()].sort((a, b) => a[0] - b[0])) {
        checkAbort();
        for (const cut of await linearise(pointIndex, keys)) made.set(`${pointIndex}:${cut.example}:${cut.cls}`, cut);
      }
      // Append in the original pool order, so the rebuilt QP is the same problem row for row.
      state.cuts = state.cuts.map((record) => {
        const cut = made.get(`${record.point}:${record.example}:${record.cls}`);
        if (!cut) throw new AdvcorrectError('ERR_PARSE', 'the checkpoint does not match the model: a stored cut could not be rebuilt');
        return { ...record, id: appendCut(record.point, cut).id };
      });
    }

    const paretoPool = new ParetoPool<PoolEntry>(state.pool);

    const snapshot = (): CorrectionState => ({
      ...state,
      pool: [...paretoPool.members],
      candidates: [...state.candidates],
      cuts: state.cuts.map((c) => ({ ...c })),
      points: [...state.points],
      pointAdvCount: [...state.pointAdvCount],
      log: [...state.log],
      rounds: [...state.rounds],
      infeasible: [...state.infeasible],
      elapsedMs: elapsed(),
    });

    // ---- rounds -------------------------------------------------------------------------------
    while (!state.done) {
      checkAbort();
      if (!state.roundStarted) {
        // New round: regenerate X̃ against the current iterate.
        view.write(state.w);
        const fresh = await control.regenerate!(work, state.round, signal);
        const count = checkLabelled(`adversarial (round ${state.round})`, fresh, inputSize, C);
        const images = new Float32Array(state.advImages.length + fresh.images.length);
        images.set(state.advImages);
        images.set(fresh.images, state.advImages.length);
        const labels = new Uint8Array(state.advLabels.length + count);
        labels.set(state.advLabels);
        labels.set(Uint8Array.from(fresh.labels as ArrayLike<number>), state.advLabels.length);
        const rounds = new Uint8Array(labels.length);
        rounds.set(state.advRounds);
        rounds.fill(state.round, state.advRounds.length);
        state.advImages = images;
        state.advLabels = labels;
        state.advRounds = rounds;
        // The criteria of the pool change with X̃: re-evaluate the current iterate and restart the pool from it.
        const at = await evaluate(state.w);
        const current: PoolEntry = {
          id: state.nextId++,
          round: state.round,
          iteration: 0,
          alpha: 0,
          violation: at.violation,
          misclassified: at.misclassified,
          cleanLoss: at.cleanLoss,
          distance: distance(state.w, w0),
          feasible: at.cleanLoss <= eta,
          w: state.w,
        };
        state.pool = [current];
        paretoPool.reset([current]);
        state.candidates.push(stripW(current));
        state.bestViolation = current.feasible ? current.violation : Infinity;
        state.stall = 0;
        state.correctAtRoundStart = labels.length - at.misclassified;
        state.iteration = 0;
        state.roundStarted = true;
        onProgress?.({ kind: 'round', round: state.round, adversarial: labels.length });
        await control.onCheckpoint?.(snapshot());
      }

      let stop: StopReason | undefined;
      while (!stop && state.iteration < options.maxIterations) {
        checkAbort();
        const iterStart = Date.now();
        const k = state.iteration + 1;
        const wk = state.w;

        // 1. cuts at w_k
        const pointIndex = state.points.length;
        state.points.push(wk);
        state.pointAdvCount.push(state.advLabels.length);
        const cuts = await linearise(pointIndex);
        for (const cut of cuts) state.cuts.push(appendCut(pointIndex, cut));
        let removed = 0;
        if (state.cuts.length > options.maxCuts) {
          // Over the limit: the longest-inactive cuts first, then the oldest.
          const excess = state.cuts.length - options.maxCuts;
          const order = [...state.cuts].filter((c) => c.point !== pointIndex).sort((a, b) => b.inactive - a.inactive || a.id - b.id);
          removed += removeCuts(order.slice(0, excess).map((c) => c.id));
        }
        checkAbort();

        // 2. the QP over all cuts (drop cuts named by a Farkas certificate when infeasible)
        let qp: QpResult | undefined;
        let attempt = 0;
        for (; attempt <= INFEASIBLE_RETRIES; attempt++) {
          if (control.onQp) await control.onQp(snapshotQp(state.cuts, rowsForDump!, n, w0, state.round, k, attempt));
          qp = await pool.solve(w0, {
            solver: options.solver,
            eps: options.qpEps,
            ...(options.qpTimeLimitMs > 0 ? { timeLimitMs: options.qpTimeLimitMs } : {}),
            warmStart: true,
            signal,
          });
          state.qpTimeMs += qp.solveTimeMs;
          if (qp.status === 'aborted') checkAbort();
          if (qp.status !== 'primal_infeasible') break;
          const dropped = dropInfeasible(state.cuts, qp.certificate);
          removed += removeCuts(dropped);
          state.infeasible.push({ round: state.round, iteration: k, dropped: dropped.length, rule: INFEASIBLE_RULE });
          onProgress?.({ kind: 'infeasible', round: state.round, iteration: k, dropped: dropped.length });
          if (dropped.length === 0) break;
        }
        qp = qp!;
        const usable = qp.status === 'solved' || qp.status === 'solved_inaccurate' || qp.status === 'max_iter_reached' || qp.status === 'time_limit_reached';

        // Track inactivity (multiplier zero) and drop long-inactive cuts if asked.
        if (usable && qp.y.length === state.cuts.length) {
          state.cuts.forEach((c, i) => {
            c.inactive = qp!.y[i] === 0 ? c.inactive + 1 : 0;
          });
          if (options.dropInactiveAfter > 0) {
            removed += removeCuts(state.cuts.filter((c) => c.inactive >= options.dropInactiveAfter && c.point !== pointIndex).map((c) => c.id));
          }
        }

        // 3. line search over the α grid
        const candidates: PoolEntry[] = [];
        if (usable) {
          const target = qp.x;
          for (const alpha of options.alphas) {
            checkAbort();
            const w = new Float64Array(n);
            for (let i = 0; i < n; i++) w[i] = wk[i]! + alpha * (target[i]! - wk[i]!);
            const at = await evaluate(w);
            const entry: PoolEntry = {
              id: state.nextId++,
              round: state.round,
              iteration: k,
              alpha,
              violation: at.violation,
              misclassified: at.misclassified,
              cleanLoss: at.cleanLoss,
              distance: distance(w, w0),
              feasible: at.cleanLoss <= eta,
              w,
            };
            candidates.push(entry);
            state.candidates.push(stripW(entry));
          }
        }

        // 4. selection
        let next: PoolEntry | undefined;
        let entered = 0;
        if (candidates.length > 0) {
          const choice = chooseWeighted(candidates, paretoPool.members, options.omega, eta);
          next = choice.chosen;
          for (const c of candidates) if (paretoPool.offer(c)) entered++;
        }
        const step = next ? distance(next.w, wk) : 0;
        if (next) state.w = next.w;
        state.iteration = k;

        // Progress = a candidate entered the Pareto pool (it improves V or L over everything seen).
        const bestNow = Math.min(...paretoPool.members.filter((p) => p.feasible).map((p) => p.violation), Infinity);
        state.bestViolation = Math.min(state.bestViolation, bestNow);
        state.stall = entered > 0 ? 0 : state.stall + 1;

        const at = next ?? { violation: Number.NaN, misclassified: -1, cleanLoss: Number.NaN, feasible: false, alpha: 0 };
        const log: IterationLog = {
          round: state.round,
          iteration: k,
          cutsAdded: cuts.length,
          cutsTotal: state.cuts.length,
          cutsRemoved: removed,
          qpStatus: qp.status,
          qpIterations: qp.iterations,
          qpTimeMs: qp.solveTimeMs,
          qpObjective: qp.objective,
          alpha: next ? next.alpha : 0,
          violation: at.violation,
          misclassified: at.misclassified,
          cleanLoss: at.cleanLoss,
          distance: distance(state.w, w0),
          feasible: at.feasible,
          timeMs: Date.now() - iterStart,
        };
        state.log.push(log);
        onProgress?.({ kind: 'iteration', maxIterations: options.maxIterations, rounds: options.rounds, ...log });

        if (!next) stop = 'no_progress';
        else if (next.feasible && next.misclassified === 0 && (options.violation === 'fraction' || next.violation === 0)) stop = 'converged';
        else if (step <= 1e-12 * (1 + norm(wk))) stop = 'no_progress';
        else if (state.stall >= options.patience) stop = 'stalled';
        if (!stop && state.iteration >= options.maxIterations) stop = 'max_iterations';

        if (stop) {
          const finalCorrect = state.advLabels.length - (Number.isFinite(at.misclassified) && at.misclassified >= 0 ? at.misclassified : 0);
          state.rounds.push({
            round: state.round,
            adversarialCount: state.advLabels.length,
            iterations: state.iteration,
            stopReason: stop,
            correctedBefore: state.correctAtRoundStart,
            correctedAfter: finalCorrect,
          });
          if (state.round >= options.rounds) state.done = true;
          else {
            state.round++;
            state.roundStarted = false;
            // The next round continues from the best point of this one.
            state.w = chooseFinal(paretoPool.members, eta).w;
          }
        }
        state.pool = [...paretoPool.members];
        await control.onCheckpoint?.(snapshot());
        await yieldNow();
      }
      if (!stop) {
        // maxIterations reached before the loop body set a reason (e.g. resumed at the limit).
        state.rounds.push({
          round: state.round,
          adversarialCount: state.advLabels.length,
          iterations: state.iteration,
          stopReason: 'max_iterations',
          correctedBefore: state.correctAtRoundStart,
          correctedAfter: state.correctAtRoundStart,
        });
        if (state.round >= options.rounds) state.done = true;
        else {
          state.round++;
          state.roundStarted = false;
        }
      }
    }

    // ---- the answer: ω picks from the final front (docs/correction.md, "The answer and ω") -------
    // The front is the last round's pool plus points of the segment w₀ → w* (w* = least violation
    // among the loss-feasible members), all measured on the final X̃. It lives outside the state, so a
    // resumed finished run rebuilds the same front.
    const front = new ParetoPool<PoolEntry>(paretoPool.members);
    const segmentCandidates: CandidateRecord[] = [];
    const best = chooseFinal(paretoPool.members, eta);
    if (best.distance > 0) {
      let id = state.nextId;
      for (const t of segmentGrid(options.segmentPoints)) {
        checkAbort();
        const w = new Float64Array(n);
        for (let i = 0; i < n; i++) w[i] = w0[i]! + t * (best.w[i]! - w0[i]!);
        const at = await evaluate(w);
        const entry: PoolEntry = {
          id: id++,
          round: state.round,
          iteration: 0,
          alpha: t,
          violation: at.violation,
          misclassified: at.misclassified,
          cleanLoss: at.cleanLoss,
          distance: distance(w, w0),
          feasible: at.cleanLoss <= eta,
          segment: true,
          w,
        };
        segmentCandidates.push(stripW(entry));
        front.offer(entry);
      }
    }
    const chosen = chooseAnswer(front.members, options.omega, eta).chosen;
    const count = state.advLabels.length;
    view.write(w0);
    const before = violationOf(predictLogits(work, state.advImages), state.advLabels, count, C, options.delta);
    view.write(chosen.w);
    const after = violationOf(predictLogits(work, state.advImages), state.advLabels, count, C, options.delta);
    const cleanLossAfter = chosen.cleanLoss;
    const d = distance(chosen.w, w0);
    const result: CorrectionResult = {
      parameters: { count: n, layers: [...view.layers] },
      options,
      eta,
      cleanLossBefore: state.cleanLoss0,
      cleanLossAfter,
      adversarial: {
        count,
        correctBefore: count - before.misclassified,
        correctAfter: count - after.misclassified,
        violationBefore: options.violation === 'sum' ? before.sumViolation : before.misclassified / count,
        violationAfter: options.violation === 'sum' ? after.sumViolation : after.misclassified / count,
        labels: Array.from(state.advLabels),
        predictionsBefore: before.predictions,
        predictionsAfter: after.predictions,
        rounds: Array.from(state.advRounds),
      },
      iterations: state.log,
      rounds: state.rounds,
      pool: front.members.map(stripW),
      candidates: [...state.candidates, ...segmentCandidates],
      chosen: stripW(chosen),
      distance: d,
      relativeDistance: state.w0Norm > 0 ? d / state.w0Norm : Number.NaN,
      infeasible: state.infeasible,
      totalQpTimeMs: state.qpTimeMs,
      totalTimeMs: elapsed(),
      resumed,
    };
    state.pool = [...paretoPool.members];
    state.elapsedMs = result.totalTimeMs;
    return { model: work, result, state, front: [...front.members] };
  } catch (error) {
    work.dispose();
    throw error;
  } finally {
    pool?.dispose?.();
  }
}

function stripW(entry: PoolEntry): CandidateRecord {
  const { w: _w, ...rest } = entry;
  void _w;
  return rest;
}

export const INFEASIBLE_RULE =
  'drop the margin cuts with a positive Farkas multiplier (the clean-loss cuts are kept); if only loss cuts carry the certificate, drop the oldest of them';

/** Ids of the cuts to drop after an infeasible QP (see INFEASIBLE_RULE). */
export function dropInfeasible(cuts: readonly CutRecord[], certificate: Float64Array | undefined): number[] {
  if (!certificate || certificate.length !== cuts.length) {
    // No usable certificate: drop the newest margin cuts (those of the last point).
    const last = Math.max(...cuts.map((c) => c.point));
    return cuts.filter((c) => c.point === last && c.example >= 0).map((c) => c.id);
  }
  let scale = 0;
  for (let i = 0; i < certificate.length; i++) scale = Math.max(scale, Math.abs(certificate[i]!));
  const support = cuts.filter((_, i) => scale > 0 && Math.abs(certificate[i]!) > 1e-9 * scale);
  const margin = support.filter((c) => c.example >= 0).map((c) => c.id);
  if (margin.length > 0) return margin;
  const loss = support.filter((c) => c.example < 0).sort((a, b) => a.id - b.id);
  return loss.length > 0 ? [loss[0]!.id] : [];
}

function snapshotQp(
  cuts: readonly CutRecord[],
  rows: Map<number, { index: Int32Array; value: Float64Array; upper: number }>,
  n: number,
  w0: Float64Array,
  round: number,
  iteration: number,
  attempt: number,
): CutQpSnapshot {
  const m = cuts.length;
  const rowPtr = new Int32Array(m + 1);
  cuts.forEach((c, i) => (rowPtr[i + 1] = rowPtr[i]! + rows.get(c.id)!.index.length));
  const colIndex = new Int32Array(rowPtr[m]!);
  const values = new Float64Array(rowPtr[m]!);
  const rowLower = new Float64Array(m).fill(-Infinity);
  const rowUpper = new Float64Array(m);
  cuts.forEach((c, i) => {
    const r = rows.get(c.id)!;
    colIndex.set(r.index, rowPtr[i]!);
    values.set(r.value, rowPtr[i]!);
    rowUpper[i] = r.upper;
  });
  void n;
  return { round, iteration, attempt, rowPtr, colIndex, values, rowLower, rowUpper, w0 };
}
