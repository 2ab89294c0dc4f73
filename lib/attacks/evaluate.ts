import type { LayersModel } from '@tensorflow/tfjs-layers';
import { abortError } from '../errors.js';
import { checkDataset, normalize, type ImageDataset, type Normalization } from '../data/datasets.js';
import { compileInputs, predictLogitsAsync } from '../models/gradients.js';
import type { LoadedModel } from '../models/io.js';
import { fgsm, pgdWithMargins } from './attacks.js';

/** One attack of an evaluation. PGD settings default to the paper's (40 steps of 0.01, random start, 1 restart). */
export interface AttackSpec {
  name: 'fgsm' | 'pgd';
  /** L∞ radius in pixel units. */
  eps: number;
  steps?: number;
  stepSize?: number;
  restarts?: number;
  randomStart?: boolean;
}

export interface EvaluateOptions {
  attacks: AttackSpec[];
  /** Labels the attacks push away from (accuracy is always measured against the true labels). Default 'true'. */
  labels?: 'true' | 'pred';
  /** Clip adversarial images to [0, 1] pixels (default true). */
  clip?: boolean;
  /** Input normalisation of the model; taken from a LoadedModel when not given. */
  normalization?: Normalization;
  /** Seed of PGD's random starts (default 0). */
  seed?: number;
  batchSize?: number;
  signal?: AbortSignal;
  /** Progress per attack: `stage` is 'clean' or the attack's label (e.g. 'pgd@0.1'). */
  onProgress?: (info: { stage: string; done: number; total: number }) => void;
}

/** Result of one attack: its settings, accuracy against the true labels, time. */
export interface AttackEvaluation {
  name: 'fgsm' | 'pgd';
  eps: number;
  accuracy: number;
  correct: number;
  labels: 'true' | 'pred';
  clip: boolean;
  steps?: number;
  stepSize?: number;
  restarts?: number;
  randomStart?: boolean;
  seed?: number;
  timeMs: number;
}

export interface Evaluation {
  n: number;
  clean: { accuracy: number; correct: number };
  attacks: AttackEvaluation[];
  /**
   * Per-example worst case: an example counts as correct only if it is classified correctly clean
   * and under every attack (all ε together); byEps does the same per ε.
   */
  worstCase: { accuracy: number; correct: number; attacks: string[]; byEps: Array<{ eps: number; accuracy: number; correct: number }> };
  /** Per-example correctness under the worst case (1 = robust to all attacks). */
  robust: Uint8Array;
  timeMs: number;
}

function argmaxCorrect(logits: Float32Array, labels: ArrayLike<number>, classes: number, out: Uint8Array): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let j = 1; j < classes; j++) if (logits[i * classes + j] > logits[i * classes + best]) best = j;
    out[i] = best === labels[i] ? 1 : 0;
    correct += out[i];
  }
  return correct;
}

function isLoadedModel(value: unknown): value is LoadedModel {
  return typeof value === 'object' && value !== null && 'model' in value && 'inputShape' in value;
}

/** Label of an attack in progress and worst-case lists, e.g. 'pgd@0.1'. */
export function attackLabel(spec: AttackSpec): string {
  return `${spec.name}@${spec.eps}`;
}

/**
 * Clean accuracy, accuracy under each attack, and the per-example worst case across attacks,
 * on a data set in pixel space ([0, 1]; normalised here for the model if it needs it).
 * Several ε per attack make an ε sweep.
 */
export async function evaluate(model: LayersModel | LoadedModel, dataset: ImageDataset, options: EvaluateOptions): Promise<Evaluation> {
  const started = Date.now();
  const layers = isLoadedModel(model) ? model.model : model;
  const normalization = options.normalization ?? (isLoadedModel(model) ? model.normalization : undefined);
  checkDataset(dataset);
  if (options === null || typeof options !== 'object' || !Array.isArray(options.attacks)) throw new TypeError('options.attacks must be an array');
  for (const spec of options.attacks) {
    if (spec === null || typeof spec !== 'object' || (spec.name !== 'fgsm' && spec.name !== 'pgd')) throw new RangeError("every attack needs name 'fgsm' or 'pgd'");
    if (typeof spec.eps !== 'number' || !Number.isFinite(spec.eps) || spec.eps < 0) throw new RangeError('every attack needs eps ≥ 0');
  }
  const shape = compileInputs(layers);
  const expected = [dataset.height, dataset.width, dataset.channels];
  if (shape.inputShape.join() !== expected.join()) {
    throw new RangeError(`the model takes ${shape.inputShape.join('×')} inputs, the data set has ${expected.join('×')} images`);
  }
  const labelMode = options.labels ?? 'true';
  const clip = options.clip ?? true;
  const seed = options.seed ?? 0;
  const images = normalization ? normalize(dataset.images, normalization, dataset.channels) : dataset.images;
  const n = dataset.count;
  const classes = shape.numClasses;
  const batchSize = options.batchSize ?? 256;

  const progress = (stage: string) => (done: number, total: number) => options.onProgress?.({ stage, done, total });
  if (options.signal?.aborted) throw abortError(options.signal);
  const cleanCorrectness = new Uint8Array(n);
  const cleanCorrect = argmaxCorrect(await predictLogitsAsync(layers, images, { batchSize, signal: options.signal }), dataset.labels, classes, cleanCorrectness);
  progress('clean')(n, n);
  const robust = Uint8Array.from(cleanCorrectness);
  const byEps = new Map<number, Uint8Array>();
  const results: AttackEvaluation[] = [];
  for (const spec of options.attacks) {
    const t0 = Date.now();
    progress(attackLabel(spec))(0, spec.name === 'pgd' ? n * (spec.restarts ?? 1) : n);
    const common = {
      eps: spec.eps,
      labels: labelMode,
      clip,
      ...(normalization ? { normalization } : {}),
      batchSize,
      ...(options.signal ? { signal: options.signal } : {}),
      onProgress: progress(attackLabel(spec)),
    };
    let adversarial: Float32Array;
    let settings: Partial<AttackEvaluation> = {};
    if (spec.name === 'fgsm') {
      adversarial = await fgsm(layers, images, dataset.labels, common);
    } else {
      settings = { steps: spec.steps ?? 40, stepSize: spec.stepSize ?? 0.01, restarts: spec.restarts ?? 1, randomStart: spec.randomStart ?? true, seed };
      adversarial = (await pgdWithMargins(layers, images, dataset.labels, { ...common, ...settings })).images;
    }
    const correctness = new Uint8Array(n);
    const correct = argmaxCorrect(await predictLogitsAsync(layers, adversarial, { batchSize, signal: options.signal }), dataset.labels, classes, correctness);
    let perEps = byEps.get(spec.eps);
    if (!perEps) {
      perEps = Uint8Array.from(cleanCorrectness);
      byEps.set(spec.eps, perEps);
    }
    for (let i = 0; i < n; i++) {
      robust[i] &= correctness[i];
      perEps[i] &= correctness[i];
    }
    results.push({ name: spec.name, eps: spec.eps, accuracy: n ? correct / n : 0, correct, labels: labelMode, clip, ...settings, timeMs: Date.now() - t0 });
  }
  const count = (a: Uint8Array): number => a.reduce((s, v) => s + v, 0);
  const robustCount = count(robust);
  return {
    n,
    clean: { accuracy: n ? cleanCorrect / n : 0, correct: cleanCorrect },
    attacks: results,
    worstCase: {
      accuracy: n ? robustCount / n : 0,
      correct: robustCount,
      attacks: options.attacks.map(attackLabel),
      byEps: [...byEps.entries()].map(([eps, a]) => ({ eps, accuracy: n ? count(a) / n : 0, correct: count(a) })),
    },
    robust,
    timeMs: Date.now() - started,
  };
}
