import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { AdvcorrectError, abortError } from '../errors.js';
import type { Normalization } from '../data/datasets.js';
import { Random } from '../data/random.js';
import { compileInputs, compileModel, forwardGraph, marginsFromLogits, predictLogits, predictLogitsAsync, type ModelGraph } from '../models/index.js';

/**
 * L∞ attacks (FGSM, PGD) on a classifier that outputs logits.
 *
 * Images are given and returned in the model's input space (NHWC Float32Array). Without
 * `normalization` that space is pixels in [0, 1] and ε, the step size and the clip range are in
 * the same units. With `normalization` = per-channel mean/std (model input x' = (x − mean)/std),
 * ε, the step size and the clip range stay in pixel units and are converted per channel:
 * ε'_c = ε / std_c, clip range [(lo − mean_c)/std_c, (hi − mean_c)/std_c]. The attack is then
 * exactly the pixel-space attack on the model composed with its normalisation (sign steps are
 * invariant to the positive per-channel scaling).
 */
export interface AttackOptions {
  /** L∞ radius (pixel units), ≥ 0. */
  eps: number;
  /** Which labels the untargeted loss pushes away from: the given true labels (default) or the model's clean predictions. */
  labels?: 'true' | 'pred';
  /** Clip adversarial pixels to [0, 1] (true, default), to a custom [lo, hi] in pixel units, or not at all (false, as the paper's authors do). */
  clip?: boolean | [number, number];
  /** Per-channel normalisation of the model's input space, if any (see above). */
  normalization?: Normalization;
  /** Targeted attack: per-example target classes; the attack descends the loss of the target. */
  targets?: ArrayLike<number>;
  /** Examples per batch (default 256). */
  batchSize?: number;
  signal?: AbortSignal;
  /** Called after each batch (and restart) with examples done and the total. */
  onProgress?: (done: number, total: number) => void;
}

export interface PgdOptions extends AttackOptions {
  /** Iterations (default 40). */
  steps?: number;
  /** Step size α (pixel units; default 0.01). */
  stepSize?: number;
  /** Start from a uniform random point of the ε-ball (default true). */
  randomStart?: boolean;
  /** Independent runs per example; the worst case per example is kept (default 1). */
  restarts?: number;
  /** Seed of the random starts (default 0). */
  seed?: number;
}

/** @internal Arguments of an attack after checking, shared by the attacks of this folder. */
export interface Prepared {
  graph: Pick<ModelGraph, 'inputShape' | 'inputSize' | 'numClasses'>;
  full: ModelGraph | undefined;
  n: number;
  channels: number;
  /** Per-channel ε, step, clip range in input units. */
  epsC: Float64Array;
  scaleC: Float64Array;
  lowC: Float64Array;
  highC: Float64Array;
  /** Labels the loss uses (true or predicted), or the targets when targeted. */
  lossLabels: Int32Array;
  targeted: boolean;
  batchSize: number;
}

/** @internal */
export function checkNonNegative(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be a finite number ≥ 0`);
  return value;
}

/** @internal Checks the common attack arguments and converts ε and the clip range to input units. */
export async function prepare(model: LayersModel, images: Float32Array, labels: ArrayLike<number>, options: AttackOptions): Promise<Prepared> {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const graph = compileInputs(model);
  if (!(images instanceof Float32Array)) throw new TypeError('images must be a Float32Array');
  if (images.length % graph.inputSize !== 0) {
    throw new RangeError(`images has length ${images.length}, not a multiple of the model's input size ${graph.inputSize}`);
  }
  const n = images.length / graph.inputSize;
  if (labels === null || typeof labels !== 'object' || typeof labels.length !== 'number') throw new TypeError('labels must be an array-like of class indices');
  if (labels.length !== n) throw new RangeError(`labels has length ${labels.length}, expected ${n} (one per image)`);
  const checkClasses = (values: ArrayLike<number>, what: string): void => {
    for (let i = 0; i < values.length; i++) {
      if (!Number.isInteger(values[i]) || values[i] < 0 || values[i] >= graph.numClasses) {
        throw new RangeError(`${what}[${i}] = ${values[i]} is not a class index in [0, ${graph.numClasses})`);
      }
    }
  };
  checkClasses(labels, 'labels');
  const eps = checkNonNegative(options.eps, 'eps');
  const labelMode = options.labels ?? 'true';
  if (labelMode !== 'true' && labelMode !== 'pred') throw new RangeError("labels must be 'true' or 'pred'");
  const batchSize = options.batchSize ?? 256;
  if (!Number.isInteger(batchSize) || batchSize <= 0) throw new RangeError('batchSize must be a positive integer');
  const channels = graph.inputShape[graph.inputShape.length - 1];
  let clipRange: [number, number] | undefined;
  if (options.clip === undefined || options.clip === true) clipRange = [0, 1];
  else if (options.clip === false) clipRange = undefined;
  else if (Array.isArray(options.clip) && options.clip.length === 2 && options.clip.every((v) => typeof v === 'number' && Number.isFinite(v)) && options.clip[0] <= options.clip[1]) {
    clipRange = [options.clip[0], options.clip[1]];
  } else throw new RangeError('clip must be true, false or [lo, hi] with lo ≤ hi');
  const norm = options.normalization;
  if (norm !== undefined) {
    if (!Array.isArray(norm.mean) || !Array.isArray(norm.std) || norm.mean.length !== channels || norm.std.length !== channels) {
      throw new RangeError(`normalization needs ${channels} mean and std values (one per input channel)`);
    }
    if (norm.std.some((s) => !(s > 0))) throw new RangeError('normalization.std values must be positive');
  }
  const epsC = new Float64Array(channels);
  const scaleC = new Float64Array(channels);
  const lowC = new Float64Array(channels).fill(-Infinity);
  const highC = new Float64Array(channels).fill(Infinity);
  for (let c = 0; c < channels; c++) {
    const std = norm ? norm.std[c] : 1;
    const mean = norm ? norm.mean[c] : 0;
    scaleC[c] = 1 / std;
    epsC[c] = eps / std;
    if (clipRange) {
      lowC[c] = (clipRange[0] - mean) / std;
      highC[c] = (clipRange[1] - mean) / std;
    }
  }
  let lossLabels: Int32Array;
  const targeted = options.targets !== undefined;
  if (targeted) {
    const targets = options.targets as ArrayLike<number>;
    if (targets === null || typeof targets !== 'object' || targets.length !== n) throw new RangeError(`targets must have one class per image (${n})`);
    checkClasses(targets, 'targets');
    lossLabels = Int32Array.from(targets);
  } else if (labelMode === 'pred') {
    const logits = await predictLogitsAsync(model, images, { batchSize, signal: options.signal });
    lossLabels = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let j = 1; j < graph.numClasses; j++) if (logits[i * graph.numClasses + j] > logits[i * graph.numClasses + best]) best = j;
      lossLabels[i] = best;
    }
  } else {
    lossLabels = Int32Array.from(labels);
  }
  let full: ModelGraph | undefined;
  try {
    full = compileModel(model);
  } catch (error) {
    if (!(error instanceof AdvcorrectError)) throw error;
    full = undefined; // fall back to model.apply for layers the engine does not know
  }
  return { graph, full, n, channels, epsC, scaleC, lowC, highC, lossLabels, targeted, batchSize };
}

/** Losses the gradient attacks ascend (untargeted) or descend (targeted PGD/FGSM). */
export type AttackLoss = 'ce' | 'dlr-targeted';

/**
 * @internal Gradient of Σ_b L(f(x_b)) with respect to the input batch, and the logits at x (both
 * row-major Float32Arrays). L is the cross-entropy CE(f(x), y) with y = `labels`, or the targeted
 * DLR loss −(f_y − f_t)/(f_π1 − (f_π3 + f_π4)/2 + 1e-12) of Croce & Hein (2020) with y = `labels`,
 * t = `targets` and π the classes sorted by decreasing logit. The DLR coefficients (which classes
 * are π1, π3, π4) are read from the logits of this very pass and enter the graph as constants, so
 * the gradient is that of the loss with the ordering held fixed (the ordering is piecewise constant).
 * Runs our compiled graph when the model compiles (fused padding, fewer tensors), else model.apply.
 */
export function lossGradient(
  model: LayersModel,
  p: Prepared,
  x: Float32Array,
  labels: Int32Array,
  loss: AttackLoss = 'ce',
  targets?: Int32Array,
): { grad: Float32Array; logits: Float32Array } {
  if (loss !== 'ce' && !(targets instanceof Int32Array)) throw new TypeError(`targets must be an Int32Array for the '${loss}' loss`);
  const bsz = x.length / p.graph.inputSize;
  const classes = p.graph.numClasses;
  let logitValues: Float32Array | undefined;
  const grad = tf.tidy(() => {
    const input = tf.tensor(x, [bsz, ...p.graph.inputShape], 'float32');
    const objective = (xs: tf.Tensor): tf.Scalar => {
      const logits = p.full ? forwardGraph(p.full, xs)[p.full.outputSlot] : (model.apply(xs, { training: false }) as tf.Tensor);
      logitValues = logits.dataSync() as Float32Array;
      if (loss === 'ce') {
        const target = tf.oneHot(tf.tensor1d(labels, 'int32'), classes);
        return tf.sub(tf.sum(tf.logSumExp(logits, 1)), tf.sum(tf.mul(logits, target))) as tf.Scalar;
      }
      const { numerator, denominator } = dlrCoefficients(logitValues, labels, targets!, classes);
      const num = tf.sum(tf.mul(logits, tf.tensor2d(numerator, [bsz, classes])), 1);
      const den = tf.add(tf.sum(tf.mul(logits, tf.tensor2d(denominator, [bsz, classes])), 1), 1e-12);
      return tf.neg(tf.sum(tf.div(num, den))) as tf.Scalar;
    };
    return tf.grad(objective)(input);
  });
  const values = grad.dataSync() as Float32Array;
  grad.dispose();
  return { grad: values, logits: logitValues as Float32Array };
}

/**
 * Linear coefficients of the targeted DLR loss per example: numerator e_y − e_t (so that
 * numeratorᵀz = z_y − z_t) and denominator e_π1 − (e_π3 + e_π4)/2, π the classes by decreasing
 * logit (ties: lower index first). Needs at least 4 classes.
 */
function dlrCoefficients(logits: Float32Array, labels: Int32Array, targets: Int32Array, classes: number): { numerator: Float32Array; denominator: Float32Array } {
  const n = labels.length;
  const numerator = new Float32Array(n * classes);
  const denominator = new Float32Array(n * classes);
  const order = new Int32Array(classes);
  for (let i = 0; i < n; i++) {
    const row = i * classes;
    sortByLogit(logits, row, classes, order);
    numerator[row + labels[i]] += 1;
    numerator[row + targets[i]] -= 1;
    denominator[row + order[0]] += 1;
    denominator[row + order[2]] -= 0.5;
    denominator[row + order[3]] -= 0.5;
  }
  return { numerator, denominator };
}

/** Fills `order` with the classes of one logit row by decreasing logit (ties: lower index first). */
export function sortByLogit(logits: ArrayLike<number>, row: number, classes: number, order: Int32Array): void {
  for (let j = 0; j < classes; j++) order[j] = j;
  order.sort((a, b) => logits[row + b] - logits[row + a] || a - b);
}

/**
 * Per-example loss values matching {@link lossGradient} (float64 from float32 logits): the
 * cross-entropy, or the targeted DLR loss.
 */
export function lossValues(logits: Float32Array, labels: Int32Array, classes: number, loss: AttackLoss = 'ce', targets?: Int32Array): Float64Array {
  const n = labels.length;
  const out = new Float64Array(n);
  const order = new Int32Array(classes);
  for (let i = 0; i < n; i++) {
    const row = i * classes;
    if (loss === 'ce') {
      let max = -Infinity;
      for (let j = 0; j < classes; j++) max = Math.max(max, logits[row + j]);
      let sum = 0;
      for (let j = 0; j < classes; j++) sum += Math.exp(logits[row + j] - max);
      out[i] = max + Math.log(sum) - logits[row + labels[i]];
    } else {
      sortByLogit(logits, row, classes, order);
      const t = (targets as Int32Array)[i];
      const den = logits[row + order[0]] - (logits[row + order[2]] + logits[row + order[3]]) / 2 + 1e-12;
      out[i] = -(logits[row + labels[i]] - logits[row + t]) / den;
    }
  }
  return out;
}

/** @internal Logits of a batch (row-major), through the compiled graph when the model compiles (less overhead per call than model.predict). */
export function forwardLogits(model: LayersModel, p: Prepared, x: Float32Array): Float32Array {
  const bsz = x.length / p.graph.inputSize;
  const logits = tf.tidy(() => {
    const input = tf.tensor(x, [bsz, ...p.graph.inputShape], 'float32');
    return p.full ? forwardGraph(p.full, input)[p.full.outputSlot] : (model.predict(input) as tf.Tensor);
  });
  const values = logits.dataSync() as Float32Array;
  logits.dispose();
  return values;
}

/** Gradient of Σ_b CE(f(x_b), y_b) with respect to the input batch (as a Float32Array). */
function inputGradient(model: LayersModel, p: Prepared, x: Float32Array, labels: Int32Array): Float32Array {
  return lossGradient(model, p, x, labels, 'ce').grad;
}

/**
 * @internal A 32-bit seed for the random stream of one example in one run of an attack, so that
 * results depend on (seed, run, example) only, not on batching or on which examples are still attacked.
 */
export function exampleSeed(seed: number, run: number, example: number): number {
  let h = Math.imul((Math.trunc(seed) ^ 0x2545f491) >>> 0, 0x9e3779b1) >>> 0;
  h = Math.imul((h ^ run) >>> 0, 0x85ebca77) >>> 0;
  h = Math.imul((h ^ (h >>> 15) ^ example) >>> 0, 0xc2b2ae3d) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** @internal */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** One signed-gradient step x ← Π(x + dir·α_c·sign(g)) onto [lower, upper] (the ε-ball ∩ clip range). */
function signStep(x: Float32Array, g: Float32Array, alphaC: Float64Array, dir: number, lower: Float32Array, upper: Float32Array, channels: number): void {
  for (let i = 0; i < x.length; i++) {
    const gi = g[i];
    if (gi === 0) continue;
    let v = x[i] + (gi > 0 ? dir : -dir) * alphaC[i % channels];
    if (v < lower[i]) v = lower[i];
    else if (v > upper[i]) v = upper[i];
    x[i] = v;
  }
}

/** @internal Per-element bounds of the feasible set: [x0 − ε, x0 + ε] ∩ clip range. */
export function bounds(x0: Float32Array, p: Prepared): { lower: Float32Array; upper: Float32Array } {
  const lower = new Float32Array(x0.length);
  const upper = new Float32Array(x0.length);
  const C = p.channels;
  for (let i = 0; i < x0.length; i++) {
    const c = i % C;
    lower[i] = Math.max(x0[i] - p.epsC[c], p.lowC[c]);
    upper[i] = Math.min(x0[i] + p.epsC[c], p.highC[c]);
    // A clean pixel so far outside the clip range that the ball misses it: stay in the ball, nearest the range.
    if (lower[i] > upper[i]) lower[i] = upper[i] = x0[i] < p.lowC[c] ? upper[i] : lower[i];
  }
  return { lower, upper };
}

/**
 * Fast gradient sign method: x_adv = Π(x + ε·sign(∇ₓ CE(f(x), y))) (targeted: x − ε·sign(∇ₓ CE(f(x), t))),
 * Π = clip to the valid range unless clip is false. Returns the adversarial images (input space).
 */
export async function fgsm(model: LayersModel, images: Float32Array, labels: ArrayLike<number>, options: AttackOptions): Promise<Float32Array> {
  const p = await prepare(model, images, labels, options);
  const out = new Float32Array(images.length);
  const dir = p.targeted ? -1 : 1;
  for (let start = 0; start < p.n; start += p.batchSize) {
    if (options.signal?.aborted) throw abortError(options.signal);
    const end = Math.min(p.n, start + p.batchSize);
    const x0 = images.subarray(start * p.graph.inputSize, end * p.graph.inputSize);
    const { lower, upper } = bounds(x0, p);
    const x = Float32Array.from(x0);
    const g = inputGradient(model, p, x, p.lossLabels.subarray(start, end));
    signStep(x, g, p.epsC, dir, lower, upper, p.channels);
    out.set(x, start * p.graph.inputSize);
    options.onProgress?.(end, p.n);
    await yieldToEventLoop();
  }
  return out;
}

/** Result of {@link pgdWithMargins}: the adversarial images and their margins. */
export interface AttackResult {
  images: Float32Array;
  /**
   * Per example: untargeted f_y − max_{j≠y} f_j at the returned point with y the given true labels
   * (negative = misclassified); targeted: f_t − max_{j≠t} f_j (positive = target reached).
   */
  margins: Float64Array;
}

/**
 * Projected gradient descent under L∞ (Madry et al.): optional uniform random start in the ε-ball,
 * then `steps` signed steps of size α, each projected onto the ε-ball ∩ clip range. With restarts,
 * keeps per example the run with the lowest true-label margin (targeted: highest target margin).
 */
export async function pgd(model: LayersModel, images: Float32Array, labels: ArrayLike<number>, options: PgdOptions): Promise<Float32Array> {
  return (await pgdWithMargins(model, images, labels, options)).images;
}

/** {@link pgd} that also returns the per-example margins at the returned points. */
export async function pgdWithMargins(model: LayersModel, images: Float32Array, labels: ArrayLike<number>, options: PgdOptions): Promise<AttackResult> {
  const p = await prepare(model, images, labels, options);
  const steps = options.steps ?? 40;
  if (!Number.isInteger(steps) || steps < 0) throw new RangeError('steps must be an integer ≥ 0');
  const stepSize = checkNonNegative(options.stepSize ?? 0.01, 'stepSize');
  const restarts = options.restarts ?? 1;
  if (!Number.isInteger(restarts) || restarts < 1) throw new RangeError('restarts must be an integer ≥ 1');
  const randomStart = options.randomStart ?? true;
  if (typeof randomStart !== 'boolean') throw new TypeError('randomStart must be a boolean');
  const seed = options.seed ?? 0;
  if (typeof seed !== 'number' || !Number.isFinite(seed)) throw new TypeError('seed must be a finite number');
  const alphaC = p.scaleC.map((s) => stepSize * s);
  const dir = p.targeted ? -1 : 1;
  const size = p.graph.inputSize;
  const classes = p.graph.numClasses;
  const out = new Float32Array(images.length);
  const outMargins = new Float64Array(p.n).fill(p.targeted ? -Infinity : Infinity);
  const marginLabels = p.targeted ? p.lossLabels : Int32Array.from(labels);
  const totalWork = p.n * restarts;
  let done = 0;
  for (let restart = 0; restart < restarts; restart++) {
    // One stream per restart, advanced batch by batch: results do not depend on the batch size.
    const rng = new Random(seed * 1000003 + restart);
    for (let start = 0; start < p.n; start += p.batchSize) {
      const end = Math.min(p.n, start + p.batchSize);
      const x0 = images.subarray(start * size, end * size);
      const { lower, upper } = bounds(x0, p);
      const x = Float32Array.from(x0);
      if (randomStart) {
        for (let i = 0; i < x.length; i++) {
          const e = p.epsC[i % p.channels];
          let v = x0[i] + (2 * rng.next() - 1) * e;
          if (v < lower[i]) v = lower[i];
          else if (v > upper[i]) v = upper[i];
          x[i] = v;
        }
      }
      const batchLabels = p.lossLabels.subarray(start, end);
      for (let step = 0; step < steps; step++) {
        if (options.signal?.aborted) throw abortError(options.signal);
        const g = inputGradient(model, p, x, batchLabels);
        signStep(x, g, alphaC, dir, lower, upper, p.channels);
        await yieldToEventLoop();
      }
      const logits = predictLogits(model, x, { batchSize: p.batchSize });
      const m = marginsFromLogits(logits, marginLabels.subarray(start, end), classes);
      for (let b = 0; b < end - start; b++) {
        const i = start + b;
        const better = restart === 0 || (p.targeted ? m[b] > outMargins[i] : m[b] < outMargins[i]);
        if (better) {
          outMargins[i] = m[b];
          out.set(x.subarray(b * size, (b + 1) * size), i * size);
        }
      }
      done += end - start;
      options.onProgress?.(done, totalWork);
      await yieldToEventLoop();
    }
  }
  return { images: out, margins: outMargins };
}

/**
 * Which examples have an input gradient of the cross-entropy (of `labels`, or of the predictions
 * with `labels: 'pred'`) that is exactly zero in every entry: 1 = all zero. Such examples cannot be
 * moved by FGSM, PGD or APGD-CE from that point; many of them are a sign of gradient masking
 * (saturated softmax, non-differentiable or flat layers). Costs one gradient pass (as FGSM).
 */
export async function zeroGradientExamples(
  model: LayersModel,
  images: Float32Array,
  labels: ArrayLike<number>,
  options: Pick<AttackOptions, 'labels' | 'normalization' | 'batchSize' | 'signal'> = {},
): Promise<Uint8Array> {
  const p = await prepare(model, images, labels, { ...options, eps: 0 });
  const d = p.graph.inputSize;
  const out = new Uint8Array(p.n);
  for (let start = 0; start < p.n; start += p.batchSize) {
    if (options.signal?.aborted) throw abortError(options.signal);
    const end = Math.min(p.n, start + p.batchSize);
    const g = inputGradient(model, p, images.subarray(start * d, end * d), p.lossLabels.subarray(start, end));
    for (let r = 0; r < end - start; r++) {
      let zero = 1;
      for (let e = r * d; e < (r + 1) * d; e++) {
        if (g[e] !== 0) {
          zero = 0;
          break;
        }
      }
      out[start + r] = zero;
    }
    await yieldToEventLoop();
  }
  return out;
}
