/**
 * The explicit state of the correction loop: what every step reads and writes, created fresh or
 * taken from a checkpoint, and copied into a snapshot for onCheckpoint. The fixed data of a run
 * (model, parameters, w₀, clean data, η) is the CorrectionProblem; it never changes in a run.
 */
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { AdvcorrectError } from '../errors.js';
import type { FactoredLayout } from '../models/factored-rows.js';
import type { ParameterView } from '../models/parameters.js';
import type { CorrectionOptions } from './options.js';
import type { ParetoPool } from './selection.js';
import type { BudgetOutcome, CandidateRecord, InfeasibleEvent, IterationLog, RoundSummary } from './types.js';

/** Images with labels: an ImageDataset fits. Images are NHWC float32 in the model's input space. */
export interface LabelledImages {
  images: Float32Array;
  labels: ArrayLike<number>;
}

/** One stored cut: where it was made and for which constraint (enough to rebuild it). */
export interface CutRecord {
  /** Cut pool id returned by append. */
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

/** A Pareto pool member with its weights (kept in the state so the answer can be recovered). */
export interface ParetoPoolEntry extends CandidateRecord {
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
  fingerprint: Fingerprint;
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
  /** The Pareto pool's members (the live pool is a ParetoPool built from them). */
  pool: ParetoPoolEntry[];
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
  /** Set once a time budget ended (or shaped) the run. */
  budget?: BudgetOutcome;
}

export interface Fingerprint {
  w0Sum: number;
  cleanSum: number;
  cleanCount: number;
}

/** The fixed data of one run: the working model and its parameter view, w₀, the clean data, η. */
export interface CorrectionProblem {
  /** The working copy of the model; its weights are overwritten at every evaluation. */
  work: LayersModel;
  view: ParameterView;
  /** Number of parameters that move. */
  n: number;
  w0: Float64Array;
  inputSize: number;
  numClasses: number;
  options: CorrectionOptions;
  cleanImages: Float32Array;
  cleanLabels: Uint8Array;
  /** Loss level η and the clean loss of w₀. */
  eta: number;
  cleanLoss0: number;
  signal?: AbortSignal;
  /** Set when the cut pool keeps the margin rows as factors (lib/correction/row-path.ts). */
  factored?: FactoredLayout;
}

export function norm(v: Float64Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

export function distance(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    s += d * d;
  }
  return Math.sqrt(s);
}

export function sum(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]!;
  return s;
}

/** The record of a candidate without its weights. */
export function stripW(entry: ParetoPoolEntry): CandidateRecord {
  const { w: _w, ...rest } = entry;
  void _w;
  return rest;
}

/** The state of a fresh run: round 1, no cuts, the Pareto pool holding w₀ (the `start` entry). */
export function initialState(args: {
  options: CorrectionOptions;
  parameterCount: number;
  layers: readonly string[];
  inputSize: number;
  numClasses: number;
  fingerprint: Fingerprint;
  eta: number;
  cleanLoss0: number;
  w0: Float64Array;
  advImages: Float32Array;
  advLabels: Uint8Array;
  /** w₀ as a candidate (id 0), measured on X̃ and the clean data. */
  start: ParetoPoolEntry;
}): CorrectionState {
  const count = args.advLabels.length;
  return {
    kind: 'advcorrect-correction-state',
    options: args.options,
    parameterCount: args.parameterCount,
    layers: [...args.layers],
    inputSize: args.inputSize,
    numClasses: args.numClasses,
    fingerprint: args.fingerprint,
    eta: args.eta,
    cleanLoss0: args.cleanLoss0,
    w0Norm: norm(args.w0),
    advImages: args.advImages,
    advLabels: args.advLabels,
    advRounds: new Uint8Array(count).fill(1),
    round: 1,
    iteration: 0,
    roundStarted: true,
    done: false,
    w: args.w0,
    points: [],
    pointAdvCount: [],
    cuts: [],
    pool: [args.start],
    candidates: [stripW(args.start)],
    nextId: 1,
    log: [],
    rounds: [],
    infeasible: [],
    bestViolation: args.start.violation,
    stall: 0,
    correctAtRoundStart: count - args.start.misclassified,
    elapsedMs: 0,
    qpTimeMs: 0,
  };
}

/** Throws when a checkpointed state was not made for this model and clean data. */
export function checkResumable(state: CorrectionState, n: number, inputSize: number, numClasses: number, fingerprint: Fingerprint): void {
  if (state.kind !== 'advcorrect-correction-state') throw new AdvcorrectError('ERR_PARSE', 'control.resume is not a correction state');
  if (state.parameterCount !== n || state.inputSize !== inputSize || state.numClasses !== numClasses) {
    throw new AdvcorrectError(
      'ERR_MODEL',
      `the checkpoint was made for a model with ${state.parameterCount} parameters, ${state.inputSize} inputs and ${state.numClasses} classes; this one has ${n}, ${inputSize} and ${numClasses}`,
    );
  }
  if (state.fingerprint.w0Sum !== fingerprint.w0Sum) throw new AdvcorrectError('ERR_MODEL', 'the checkpoint was made from other model weights');
  if (state.fingerprint.cleanSum !== fingerprint.cleanSum || state.fingerprint.cleanCount !== fingerprint.cleanCount) {
    throw new AdvcorrectError('ERR_DATA', 'the checkpoint was made with other clean data');
  }
}

/**
 * A copy of the state that later steps do not change (lists copied, cut records cloned), with the
 * live Pareto pool's members and the elapsed time so far. Weight vectors are shared: the loop
 * never writes into a weight vector once it is in the state.
 */
export function snapshotState(state: CorrectionState, paretoPool: ParetoPool<ParetoPoolEntry>, elapsedMs: number): CorrectionState {
  return {
    ...state,
    pool: [...paretoPool.members],
    candidates: [...state.candidates],
    cuts: state.cuts.map((c) => ({ ...c })),
    points: [...state.points],
    pointAdvCount: [...state.pointAdvCount],
    log: [...state.log],
    rounds: [...state.rounds],
    infeasible: [...state.infeasible],
    elapsedMs,
  };
}
