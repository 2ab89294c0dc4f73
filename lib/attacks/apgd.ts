import type { LayersModel } from '@tensorflow/tfjs-layers';
import { AdvcorrectError, abortError } from '../errors.js';
import { Random } from '../data/random.js';
import { marginsFromLogits, predictLogitsAsync } from '../models/index.js';
import {
  bounds,
  exampleSeed,
  forwardLogits,
  lossGradient,
  lossValues,
  prepare,
  sortByLogit,
  yieldToEventLoop,
  type AttackOptions,
  type AttackResult,
  type Prepared,
} from './attacks.js';

/**
 * Auto-PGD (Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of
 * diverse parameter-free attacks", ICML 2020), L∞. See docs/attacks-and-gradients.md.
 */
export interface ApgdOptions extends Omit<AttackOptions, 'targets'> {
  /** 'ce' (APGD-CE, untargeted cross-entropy, default) or 'dlr-targeted' (APGD-T). */
  loss?: 'ce' | 'dlr-targeted';
  /** Iterations per run (default 100). */
  steps?: number;
  /** Runs per example (per target class with 'dlr-targeted'), each from its own random start (default 1). */
  restarts?: number;
  /** Start from a uniform random point of the ε-ball (default true); false starts at the clean image. */
  randomStart?: boolean;
  /** 'dlr-targeted': how many target classes, the highest wrong logits at the clean point first (default 9, capped at classes − 1). */
  targets?: number;
  /** Seed of the random starts (default 0). */
  seed?: number;
  /** Momentum α of the update (default 0.75, the paper's). */
  momentum?: number;
  /** Fraction ρ of improving steps below which the step size is halved at a checkpoint (default 0.75, the paper's). */
  rho?: number;
}

/** Defaults of {@link apgd}, from the paper. */
export const APGD_DEFAULTS = { steps: 100, restarts: 1, randomStart: true, targets: 9, momentum: 0.75, rho: 0.75, initialStep: 2 } as const;

/**
 * The iterations w_j = ⌈p_j·N⌉ (j ≥ 0) at which APGD checks its step size, for N iterations:
 * p₀ = 0, p₁ = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06), kept while w_j < N
 * (N = 100: 0, 22, 41, 57, 70, 80, 87, 93, 99). Computed in hundredths, so exactly.
 */
export function apgdCheckpoints(steps: number): number[] {
  if (!Number.isInteger(steps) || steps < 0) throw new RangeError('steps must be an integer ≥ 0');
  const out = [0];
  let previous = 0;
  let current = 22;
  while (current <= 100) {
    const w = Math.floor((current * steps + 99) / 100);
    if (w >= steps) break;
    if (w > out[out.length - 1]) out.push(w);
    const next = current + Math.max(current - previous - 3, 6);
    previous = current;
    current = next;
  }
  return out;
}

/** Per-batch state of one APGD run (rows of b examples, d values each). */
interface RunState {
  ids: Int32Array;
  x0: Float32Array;
  lower: Float32Array;
  upper: Float32Array;
  xCur: Float32Array;
  xPrev: Float32Array;
  xMax: Float32Array;
  gCur: Float32Array;
  gMax: Float32Array;
  eta: Float64Array;
  lossPrev: Float64Array;
  lossMax: Float64Array;
  lossMaxAtCheck: Float64Array;
  halvedAtCheck: Uint8Array;
  improved: Int32Array;
}

/**
 * APGD under L∞. Per example and run: a random start in the ε-ball ∩ clip range (or the clean
 * image), a first signed-gradient step of size η = 2ε, then steps with momentum α = 0.75,
 * z = Π(x_k + η·sign ∇L(x_k)), x_{k+1} = Π(x_k + α(z − x_k) + (1 − α)(x_k − x_{k−1})). At the
 * checkpoints of {@link apgdCheckpoints} η is halved, and the run continues from the point of
 * highest loss so far, when (1) fewer than ρ = 0.75 of the steps since the last checkpoint
 * increased the loss, or (2) η was not halved at the last checkpoint and the highest loss has not
 * grown since. Loss 'ce': cross-entropy of the labels; 'dlr-targeted': the targeted DLR loss, one
 * run per target class among the `targets` highest wrong logits at the clean point.
 *
 * Per example the point of lowest margin f_y − max_{j≠y} f_j seen in any run is returned (y the
 * attacked labels). An example stops being attacked once it is misclassified (margin < 0); the
 * runs after the first (restarts, further targets) attack only the examples no run has broken, so
 * restarts never make the result weaker. Random starts come from one stream per (seed, run,
 * example): results do not depend on the batch size. Returned margins are with respect to the
 * given labels.
 */
export async function apgd(model: LayersModel, images: Float32Array, labels: ArrayLike<number>, options: ApgdOptions): Promise<AttackResult> {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const loss = options.loss ?? 'ce';
  if (loss !== 'ce' && loss !== 'dlr-targeted') throw new RangeError("loss must be 'ce' or 'dlr-targeted'");
  const steps = options.steps ?? APGD_DEFAULTS.steps;
  if (!Number.isInteger(steps) || steps < 0) throw new RangeError('steps must be an integer ≥ 0');
  const restarts = options.restarts ?? APGD_DEFAULTS.restarts;
  if (!Number.isInteger(restarts) || restarts < 1) throw new RangeError('restarts must be an integer ≥ 1');
  const randomStart = options.randomStart ?? APGD_DEFAULTS.randomStart;
  if (typeof randomStart !== 'boolean') throw new TypeError('randomStart must be a boolean');
  const seed = options.seed ?? 0;
  if (typeof seed !== 'number' || !Number.isFinite(seed)) throw new TypeError('seed must be a finite number');
  const momentum = options.momentum ?? APGD_DEFAULTS.momentum;
  if (typeof momentum !== 'number' || !(momentum >= 0 && momentum <= 1)) throw new RangeError('momentum must be a number in [0, 1]');
  const rho = options.rho ?? APGD_DEFAULTS.rho;
  if (typeof rho !== 'number' || !(rho >= 0 && rho <= 1)) throw new RangeError('rho must be a number in [0, 1]');
  const targetCount = options.targets ?? APGD_DEFAULTS.targets;
  if (typeof targetCount !== 'number' || !Number.isInteger(targetCount) || targetCount < 1) {
    throw new RangeError('targets must be a positive integer (the number of target classes)');
  }
  const { targets: _ignored, ...rest } = options;
  const p = await prepare(model, images, labels, rest);
  const classes = p.graph.numClasses;
  const size = p.graph.inputSize;
  const n = p.n;
  if (loss === 'dlr-targeted' && classes < 4) {
    throw new AdvcorrectError('ERR_UNSUPPORTED', `the targeted DLR loss needs at least 4 classes, the model has ${classes}`);
  }

  // Clean point: the starting best, and the target classes of APGD-T.
  const cleanLogits = await predictLogitsAsync(model, images, { batchSize: p.batchSize, signal: options.signal });
  const bestMargin = marginsFromLogits(cleanLogits, p.lossLabels, classes);
  const out = Float32Array.from(images);
  const broken = Uint8Array.from(bestMargin, (m) => (m < 0 ? 1 : 0));
  const targetRuns = loss === 'dlr-targeted' ? Math.min(targetCount, classes - 1) : 1;
  let targetTable: Int32Array | undefined;
  if (loss === 'dlr-targeted') {
    targetTable = new Int32Array(n * targetRuns);
    const order = new Int32Array(classes);
    for (let i = 0; i < n; i++) {
      sortByLogit(cleanLogits, i * classes, classes, order);
      let k = 0;
      for (let j = 0; j < classes && k < targetRuns; j++) if (order[j] !== p.lossLabels[i]) targetTable[i * targetRuns + k++] = order[j];
    }
  }
  const checkpoints = new Set(apgdCheckpoints(steps).slice(1));
  const runs = targetRuns * restarts;
  const total = n * runs;
  let done = 0;
  for (let run = 0; run < runs; run++) {
    const target = Math.floor(run / restarts);
    const active: number[] = [];
    for (let i = 0; i < n; i++) if (!broken[i]) active.push(i);
    done += n - active.length;
    for (let start = 0; start < active.length; start += p.batchSize) {
      const ids = Int32Array.from(active.slice(start, start + p.batchSize));
      const targets = targetTable ? Int32Array.from(ids, (i) => targetTable[i * targetRuns + target]) : undefined;
      await runBatch(model, p, images, ids, run, targets, { loss, steps, randomStart, seed, momentum, rho, checkpoints, signal: options.signal }, (i, x, m) => {
        if (m < bestMargin[i]) {
          bestMargin[i] = m;
          out.set(x, i * size);
          if (m < 0) broken[i] = 1;
        }
      });
      done += ids.length;
      options.onProgress?.(done, total);
      await yieldToEventLoop();
    }
  }
  let margins: Float64Array = bestMargin;
  const given = Int32Array.from(labels);
  if (given.some((y, i) => y !== p.lossLabels[i])) {
    margins = marginsFromLogits(await predictLogitsAsync(model, out, { batchSize: p.batchSize, signal: options.signal }), given, classes);
  }
  return { images: out, margins };
}

interface RunSettings {
  loss: 'ce' | 'dlr-targeted';
  steps: number;
  randomStart: boolean;
  seed: number;
  momentum: number;
  rho: number;
  checkpoints: Set<number>;
  signal?: AbortSignal;
}

/**
 * One APGD run on the examples `ids`; `visit(example, point, margin)` sees every evaluated point
 * (the caller keeps the best). An example leaves the batch after its first negative margin.
 */
async function runBatch(
  model: LayersModel,
  p: Prepared,
  images: Float32Array,
  ids: Int32Array,
  run: number,
  targets: Int32Array | undefined,
  settings: RunSettings,
  visit: (example: number, point: Float32Array, margin: number) => void,
): Promise<void> {
  const d = p.graph.inputSize;
  const classes = p.graph.numClasses;
  const C = p.channels;
  const b = ids.length;
  const x0 = new Float32Array(b * d);
  for (let r = 0; r < b; r++) x0.set(images.subarray(ids[r] * d, (ids[r] + 1) * d), r * d);
  const { lower, upper } = bounds(x0, p);
  const s: RunState = {
    ids,
    x0,
    lower,
    upper,
    xCur: Float32Array.from(x0),
    xPrev: new Float32Array(b * d),
    xMax: new Float32Array(b * d),
    gCur: new Float32Array(b * d),
    gMax: new Float32Array(b * d),
    eta: new Float64Array(b).fill(APGD_DEFAULTS.initialStep),
    lossPrev: new Float64Array(b),
    lossMax: new Float64Array(b),
    lossMaxAtCheck: new Float64Array(b),
    halvedAtCheck: new Uint8Array(b),
    improved: new Int32Array(b),
  };
  if (settings.randomStart) {
    for (let r = 0; r < b; r++) {
      const rng = new Random(exampleSeed(settings.seed, run, ids[r]));
      for (let e = r * d; e < (r + 1) * d; e++) s.xCur[e] = clamp(x0[e] + (2 * rng.next() - 1) * p.epsC[e % C], lower[e], upper[e]);
    }
  }
  const labels = Int32Array.from(ids, (i) => p.lossLabels[i]);
  let rows = Int32Array.from({ length: b }, (_, r) => r);
  let lastCheckpoint = 0;
  const alpha = settings.momentum;
  for (let k = 0; k <= settings.steps && rows.length > 0; k++) {
    if (settings.signal?.aborted) throw abortError(settings.signal);
    const m = rows.length;
    const xb = gatherRows(s.xCur, rows, d);
    const lb = m === b ? labels : Int32Array.from(rows, (r) => labels[r]);
    const tb = targets ? (m === b ? targets : Int32Array.from(rows, (r) => targets[r])) : undefined;
    const last = k === settings.steps;
    let logits: Float32Array;
    let grad: Float32Array | undefined;
    if (last) {
      // The point after the last step only needs its margin.
      logits = forwardLogits(model, p, xb);
    } else {
      ({ grad, logits } = lossGradient(model, p, xb, lb, settings.loss, tb));
    }
    const margin = marginsFromLogits(logits, lb, classes);
    const loss = last ? undefined : lossValues(logits, lb, classes, settings.loss, tb);
    const keep: number[] = [];
    const checkpoint = settings.checkpoints.has(k);
    for (let q = 0; q < m; q++) {
      const r = rows[q];
      const off = r * d;
      visit(ids[r], s.xCur.subarray(off, off + d), margin[q]);
      if (margin[q] < 0 || last) continue;
      keep.push(r);
      const L = (loss as Float64Array)[q];
      s.gCur.set((grad as Float32Array).subarray(q * d, (q + 1) * d), off);
      if (k === 0) {
        s.lossMax[r] = s.lossMaxAtCheck[r] = s.lossPrev[r] = L;
        s.xMax.set(s.xCur.subarray(off, off + d), off);
        s.gMax.set(s.gCur.subarray(off, off + d), off);
      } else {
        if (L > s.lossPrev[r]) s.improved[r]++;
        s.lossPrev[r] = L;
        if (L > s.lossMax[r]) {
          s.lossMax[r] = L;
          s.xMax.set(s.xCur.subarray(off, off + d), off);
          s.gMax.set(s.gCur.subarray(off, off + d), off);
        }
      }
      let restartFromMax = false;
      if (checkpoint) {
        const fewImproving = s.improved[r] < settings.rho * (k - lastCheckpoint);
        const stalled = !s.halvedAtCheck[r] && s.lossMax[r] <= s.lossMaxAtCheck[r];
        restartFromMax = fewImproving || stalled;
        s.halvedAtCheck[r] = restartFromMax ? 1 : 0;
        s.improved[r] = 0;
        s.lossMaxAtCheck[r] = s.lossMax[r];
        if (restartFromMax) {
          s.eta[r] /= 2;
          s.xCur.set(s.xMax.subarray(off, off + d), off);
          s.gCur.set(s.gMax.subarray(off, off + d), off);
          s.lossPrev[r] = s.lossMax[r];
        }
      }
      // The step from x_k; the first step and a step right after a restart carry no momentum.
      const plain = k === 0 || restartFromMax;
      const eta = s.eta[r];
      for (let e = off; e < off + d; e++) {
        const x = s.xCur[e];
        const g = s.gCur[e];
        const z = g === 0 ? x : clamp(x + (g > 0 ? eta : -eta) * p.epsC[e % C], s.lower[e], s.upper[e]);
        const next = plain ? z : clamp(x + alpha * (z - x) + (1 - alpha) * (x - s.xPrev[e]), s.lower[e], s.upper[e]);
        s.xPrev[e] = x;
        s.xCur[e] = next;
      }
    }
    if (checkpoint) lastCheckpoint = k;
    rows = Int32Array.from(keep);
    await yieldToEventLoop();
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

function gatherRows(source: Float32Array, rows: Int32Array, d: number): Float32Array {
  if (rows.length * d === source.length) return source;
  const out = new Float32Array(rows.length * d);
  for (let q = 0; q < rows.length; q++) out.set(source.subarray(rows[q] * d, (rows[q] + 1) * d), q * d);
  return out;
}
