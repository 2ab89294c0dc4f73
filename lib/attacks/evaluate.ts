import type { LayersModel } from '@tensorflow/tfjs-layers';
import { abortError } from '../errors.js';
import { checkDataset, normalize, type ImageDataset, type Normalization } from '../data/datasets.js';
import { compileInputs, predictLogitsAsync } from '../models/index.js';
import type { LoadedModel } from '../models/io.js';
import { fgsm, pgdWithMargins, zeroGradientExamples } from './attacks.js';
import { apgd, APGD_DEFAULTS } from './apgd.js';
import { square, SQUARE_DEFAULTS } from './square.js';

/** The attacks {@link evaluate} runs. */
export type AttackName = 'fgsm' | 'pgd' | 'apgd-ce' | 'apgd-t' | 'square';
export const ATTACK_NAMES: readonly AttackName[] = Object.freeze(['fgsm', 'pgd', 'apgd-ce', 'apgd-t', 'square'] as AttackName[]);
/** The default attack list of every evaluation command (`eval`, `correct`, `baseline`): its per-image worst case is the headline. */
export const DEFAULT_ATTACKS: readonly AttackName[] = Object.freeze(['fgsm', 'pgd', 'apgd-ce', 'apgd-t'] as AttackName[]);
/** Attacks that follow the input gradient (square only queries the model). */
export const GRADIENT_ATTACK_NAMES: readonly AttackName[] = Object.freeze(['fgsm', 'pgd', 'apgd-ce', 'apgd-t'] as AttackName[]);

/**
 * One attack of an evaluation. Unset settings take each attack's defaults: PGD the paper's
 * (40 steps of 0.01, random start, 1 restart); APGD the APGD paper's (100 iterations, random
 * start, 1 restart; apgd-t 9 target classes); square 5,000 queries. `stepSize` is PGD's only,
 * `targets` apgd-t's, `queries` square's; `steps`, `restarts`, `randomStart` apply to pgd and
 * apgd-ce/apgd-t.
 */
export interface AttackSpec {
  name: AttackName;
  /** L∞ radius in pixel units. */
  eps: number;
  steps?: number;
  stepSize?: number;
  restarts?: number;
  randomStart?: boolean;
  /** apgd-t: target classes per example (default 9, capped at classes − 1). */
  targets?: number;
  /** square: query budget per example (default 5000). */
  queries?: number;
}

export interface EvaluateOptions {
  attacks: AttackSpec[];
  /** Labels the attacks push away from (accuracy is always measured against the true labels). Default 'true'. */
  labels?: 'true' | 'pred';
  /** Clip adversarial images to [0, 1] pixels (default true). */
  clip?: boolean;
  /** Input normalisation of the model; taken from a LoadedModel when not given. */
  normalization?: Normalization;
  /** Seed of the random starts and of the random search (default 0). */
  seed?: number;
  batchSize?: number;
  /**
   * Check for exactly-zero input gradients at the clean points (one gradient pass, as FGSM) when a
   * gradient attack is run (default true).
   */
  gradientCheck?: boolean;
  signal?: AbortSignal;
  /** Progress per attack: `stage` is 'clean', 'gradient check' or the attack's label (e.g. 'pgd@0.1'). */
  onProgress?: (info: { stage: string; done: number; total: number }) => void;
}

/** Result of one attack: its settings, robust accuracy against the true labels, time. */
export interface AttackEvaluation {
  name: AttackName;
  eps: number;
  /** Fraction of all n examples classified correctly both clean and at the attack's point. */
  accuracy: number;
  correct: number;
  /** Examples attacked (the clean-correct ones). */
  attacked: number;
  labels: 'true' | 'pred';
  clip: boolean;
  steps?: number;
  stepSize?: number;
  restarts?: number;
  randomStart?: boolean;
  targets?: number;
  queries?: number;
  /** square: mean queries spent per attacked example. */
  meanQueries?: number;
  seed?: number;
  timeMs: number;
}

/** A sign that the evaluation may overstate robustness (see docs/attacks-and-gradients.md). */
export interface EvaluationWarning {
  code: 'gradient-free-stronger' | 'zero-gradients';
  message: string;
  /** Examples concerned. */
  count: number;
  /** The ε concerned (gradient-free-stronger). */
  eps?: number;
}

export interface Evaluation {
  n: number;
  clean: { accuracy: number; correct: number };
  attacks: AttackEvaluation[];
  /**
   * Per-example worst case, the headline robust accuracy: an example counts as correct only if it
   * is classified correctly clean and under every attack (all ε together); byEps does the same per
   * ε. `label` names it, e.g. "worst of fgsm, pgd-40, apgd-ce, apgd-t".
   */
  worstCase: {
    accuracy: number;
    correct: number;
    label: string;
    attacks: string[];
    byEps: Array<{ eps: number; accuracy: number; correct: number; label: string }>;
  };
  /** Per-example correctness under the worst case (1 = robust to all attacks). */
  robust: Uint8Array;
  /** Signs of gradient masking; empty when none was seen. */
  warnings: EvaluationWarning[];
  /** The zero-gradient check: clean-correct examples checked and those whose loss gradient is exactly zero. */
  zeroGradients?: { checked: number; count: number };
  timeMs: number;
}

/** A zero-gradient warning needs at least this fraction of the checked examples (and at least one). */
export const ZERO_GRADIENT_WARNING_FRACTION = 0.01;
/** A gradient-free-stronger warning needs at least this many examples. */
export const GRADIENT_FREE_WARNING_COUNT = 1;

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

/** Short name with the setting that matters, e.g. 'pgd-40', 'apgd-ce', 'apgd-ce-50', 'square-1000'. */
export function attackShortName(spec: Omit<AttackSpec, 'eps'>): string {
  switch (spec.name) {
    case 'pgd':
      return `pgd-${spec.steps ?? 40}`;
    case 'apgd-ce':
    case 'apgd-t':
      return spec.steps === undefined || spec.steps === APGD_DEFAULTS.steps ? spec.name : `${spec.name}-${spec.steps}`;
    case 'square':
      return spec.queries === undefined || spec.queries === SQUARE_DEFAULTS.queries ? 'square' : `square-${spec.queries}`;
    default:
      return spec.name;
  }
}

/** "worst of fgsm, pgd-40, apgd-ce" for a list of attacks (names in order of first appearance). */
export function worstCaseLabel(specs: ReadonlyArray<Omit<AttackSpec, 'eps'>>): string {
  if (specs.length === 0) return 'clean (no attack)';
  return `worst of ${[...new Set(specs.map(attackShortName))].join(', ')}`;
}

function checkSpec(spec: AttackSpec): void {
  if (spec === null || typeof spec !== 'object' || !(ATTACK_NAMES as readonly string[]).includes(spec.name)) {
    throw new RangeError(`every attack needs a name among ${ATTACK_NAMES.join(', ')}`);
  }
  if (typeof spec.eps !== 'number' || !Number.isFinite(spec.eps) || spec.eps < 0) throw new RangeError('every attack needs eps ≥ 0');
  const integer = (value: unknown, name: string, min: number): void => {
    if (value !== undefined && (typeof value !== 'number' || !Number.isInteger(value) || value < min)) throw new RangeError(`attack ${spec.name}: ${name} must be an integer ≥ ${min}`);
  };
  integer(spec.steps, 'steps', 0);
  integer(spec.restarts, 'restarts', 1);
  integer(spec.targets, 'targets', 1);
  integer(spec.queries, 'queries', 1);
  if (spec.stepSize !== undefined && (typeof spec.stepSize !== 'number' || !Number.isFinite(spec.stepSize) || spec.stepSize < 0)) {
    throw new RangeError(`attack ${spec.name}: stepSize must be a finite number ≥ 0`);
  }
  if (spec.randomStart !== undefined && typeof spec.randomStart !== 'boolean') throw new TypeError(`attack ${spec.name}: randomStart must be a boolean`);
}

/**
 * Clean accuracy, robust accuracy under each attack, and the per-example worst case across
 * attacks, on a data set in pixel space ([0, 1]; normalised here for the model if it needs it).
 * Several ε per attack make an ε sweep. Every attack runs on the clean-correct examples only (an
 * example misclassified clean is not robust under any attack), so each attack's accuracy is exact
 * and the expensive attacks skip what is already lost. Warnings flag signs of gradient masking.
 */
export async function evaluate(model: LayersModel | LoadedModel, dataset: ImageDataset, options: EvaluateOptions): Promise<Evaluation> {
  const started = Date.now();
  const layers = isLoadedModel(model) ? model.model : model;
  const normalization = options?.normalization ?? (isLoadedModel(model) ? model.normalization : undefined);
  checkDataset(dataset);
  if (options === null || typeof options !== 'object' || !Array.isArray(options.attacks)) throw new TypeError('options.attacks must be an array');
  for (const spec of options.attacks) checkSpec(spec);
  const shape = compileInputs(layers);
  const expected = [dataset.height, dataset.width, dataset.channels];
  if (shape.inputShape.join() !== expected.join()) {
    throw new RangeError(`the model takes ${shape.inputShape.join('×')} inputs, the data set has ${expected.join('×')} images`);
  }
  const labelMode = options.labels ?? 'true';
  const clip = options.clip ?? true;
  const seed = options.seed ?? 0;
  const gradientCheck = options.gradientCheck ?? true;
  if (typeof gradientCheck !== 'boolean') throw new TypeError('gradientCheck must be a boolean');
  const images = normalization ? normalize(dataset.images, normalization, dataset.channels) : dataset.images;
  const n = dataset.count;
  const classes = shape.numClasses;
  const size = shape.inputSize;
  const batchSize = options.batchSize ?? 256;

  const progress = (stage: string) => (done: number, total: number) => options.onProgress?.({ stage, done, total });
  if (options.signal?.aborted) throw abortError(options.signal);
  const cleanCorrectness = new Uint8Array(n);
  const cleanCorrect = argmaxCorrect(await predictLogitsAsync(layers, images, { batchSize, signal: options.signal }), dataset.labels, classes, cleanCorrectness);
  progress('clean')(n, n);
  // The clean-correct examples are the only ones attacked.
  const attackedList: number[] = [];
  cleanCorrectness.forEach((ok, i) => {
    if (ok) attackedList.push(i);
  });
  const attackedIndex = Int32Array.from(attackedList);
  const m = attackedIndex.length;
  const attackedImages = new Float32Array(m * size);
  attackedIndex.forEach((i, k) => attackedImages.set(images.subarray(i * size, (i + 1) * size), k * size));
  const attackedLabels = Uint8Array.from(attackedIndex, (i) => dataset.labels[i]);

  const warnings: EvaluationWarning[] = [];
  let zeroGradients: Evaluation['zeroGradients'];
  if (gradientCheck && m > 0 && options.attacks.some((a) => GRADIENT_ATTACK_NAMES.includes(a.name))) {
    progress('gradient check')(0, m);
    const zero = await zeroGradientExamples(layers, attackedImages, attackedLabels, {
      labels: labelMode,
      ...(normalization ? { normalization } : {}),
      batchSize,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const count = zero.reduce((s, v) => s + v, 0);
    zeroGradients = { checked: m, count };
    progress('gradient check')(m, m);
    if (count >= Math.max(1, ZERO_GRADIENT_WARNING_FRACTION * m)) {
      warnings.push({
        code: 'zero-gradients',
        count,
        message:
          `the input gradient of the cross-entropy is exactly zero at ${count} of ${m} clean-correct examples: gradient attacks cannot move them ` +
          '(saturated softmax or flat/non-differentiable layers, a sign of gradient masking); trust the worst case over apgd-t and square, not pgd or fgsm',
      });
    }
  }

  const robust = Uint8Array.from(cleanCorrectness);
  const byEps = new Map<number, Uint8Array>();
  // Per ε: robustness under the gradient attacks, under the iterative ones only, and under square (over the attacked examples).
  const gradientRobust = new Map<number, Uint8Array>();
  const iterativeRun = new Set<number>();
  const squareRobust = new Map<number, Uint8Array>();
  const results: AttackEvaluation[] = [];
  for (const spec of options.attacks) {
    const t0 = Date.now();
    const stage = attackLabel(spec);
    const common = {
      eps: spec.eps,
      labels: labelMode,
      clip,
      ...(normalization ? { normalization } : {}),
      batchSize,
      ...(options.signal ? { signal: options.signal } : {}),
      onProgress: progress(stage),
    };
    // The totals the attacks report: example-runs (restarts, and target classes for apgd-t).
    const runs = spec.name === 'pgd' || spec.name === 'apgd-ce' ? (spec.restarts ?? 1) : spec.name === 'apgd-t' ? (spec.restarts ?? 1) * Math.min(spec.targets ?? APGD_DEFAULTS.targets, classes - 1) : 1;
    progress(stage)(0, m * runs);
    let adversarial: Float32Array = attackedImages;
    let settings: Partial<AttackEvaluation> = {};
    if (m > 0) {
      if (spec.name === 'fgsm') {
        adversarial = await fgsm(layers, attackedImages, attackedLabels, common);
      } else if (spec.name === 'pgd') {
        settings = { steps: spec.steps ?? 40, stepSize: spec.stepSize ?? 0.01, restarts: spec.restarts ?? 1, randomStart: spec.randomStart ?? true, seed };
        const { steps, stepSize, restarts, randomStart } = settings;
        adversarial = (await pgdWithMargins(layers, attackedImages, attackedLabels, { ...common, steps, stepSize, restarts, randomStart, seed })).images;
      } else if (spec.name === 'apgd-ce' || spec.name === 'apgd-t') {
        settings = { steps: spec.steps ?? APGD_DEFAULTS.steps, restarts: spec.restarts ?? APGD_DEFAULTS.restarts, randomStart: spec.randomStart ?? APGD_DEFAULTS.randomStart, seed };
        if (spec.name === 'apgd-t') settings.targets = Math.min(spec.targets ?? APGD_DEFAULTS.targets, classes - 1);
        const loss = spec.name === 'apgd-ce' ? 'ce' : 'dlr-targeted';
        const { steps, restarts, randomStart, targets } = settings;
        adversarial = (await apgd(layers, attackedImages, attackedLabels, { ...common, steps, restarts, randomStart, ...(targets ? { targets } : {}), loss, seed })).images;
      } else {
        settings = { queries: spec.queries ?? SQUARE_DEFAULTS.queries, seed };
        const result = await square(layers, attackedImages, attackedLabels, { ...common, queries: settings.queries as number, seed });
        adversarial = result.images;
        settings.meanQueries = result.queries.reduce((s, q) => s + q, 0) / m;
      }
    } else if (spec.name !== 'fgsm') {
      settings = spec.name === 'square' ? { queries: spec.queries ?? SQUARE_DEFAULTS.queries, seed } : { steps: spec.steps, seed };
    }
    const attackedCorrect = new Uint8Array(m);
    const correct = m ? argmaxCorrect(await predictLogitsAsync(layers, adversarial, { batchSize, signal: options.signal }), attackedLabels, classes, attackedCorrect) : 0;
    const correctness = new Uint8Array(n);
    attackedIndex.forEach((i, k) => (correctness[i] = attackedCorrect[k]));
    let perEps = byEps.get(spec.eps);
    if (!perEps) {
      perEps = Uint8Array.from(cleanCorrectness);
      byEps.set(spec.eps, perEps);
    }
    for (let i = 0; i < n; i++) {
      robust[i] &= correctness[i];
      perEps[i] &= correctness[i];
    }
    const group = GRADIENT_ATTACK_NAMES.includes(spec.name) ? gradientRobust : squareRobust;
    const flags = group.get(spec.eps) ?? new Uint8Array(m).fill(1);
    for (let k = 0; k < m; k++) flags[k] &= attackedCorrect[k];
    group.set(spec.eps, flags);
    if (spec.name !== 'fgsm' && spec.name !== 'square') iterativeRun.add(spec.eps);
    results.push({ name: spec.name, eps: spec.eps, accuracy: n ? correct / n : 0, correct, attacked: m, labels: labelMode, clip, ...settings, timeMs: Date.now() - t0 });
  }
  for (const [eps, squareFlags] of squareRobust) {
    const gradientFlags = gradientRobust.get(eps);
    if (!gradientFlags || !iterativeRun.has(eps)) continue;
    let count = 0;
    for (let k = 0; k < m; k++) if (gradientFlags[k] && !squareFlags[k]) count++;
    if (count >= GRADIENT_FREE_WARNING_COUNT) {
      const gradientNames = [...new Set(options.attacks.filter((a) => a.eps === eps && GRADIENT_ATTACK_NAMES.includes(a.name)).map(attackShortName))].join(', ');
      warnings.push({
        code: 'gradient-free-stronger',
        count,
        eps,
        message:
          `at ε ${eps} the gradient-free square attack broke ${count} example${count === 1 ? '' : 's'} that every gradient attack (${gradientNames}) left correct: ` +
          'the gradients may be masked or the gradient attacks too weak; trust the worst case, not a single gradient attack',
      });
    }
  }
  const count = (a: Uint8Array): number => a.reduce((s, v) => s + v, 0);
  const robustCount = count(robust);
  const epsValues = [...byEps.keys()];
  const label = worstCaseLabel(options.attacks) + (epsValues.length > 1 ? ` over ε ${epsValues.join(', ')}` : '');
  return {
    n,
    clean: { accuracy: n ? cleanCorrect / n : 0, correct: cleanCorrect },
    attacks: results,
    worstCase: {
      accuracy: n ? robustCount / n : 0,
      correct: robustCount,
      label,
      attacks: options.attacks.map(attackLabel),
      byEps: [...byEps.entries()].map(([eps, a]) => ({
        eps,
        accuracy: n ? count(a) / n : 0,
        correct: count(a),
        label: worstCaseLabel(options.attacks.filter((spec) => spec.eps === eps)),
      })),
    },
    robust,
    warnings,
    ...(zeroGradients ? { zeroGradients } : {}),
    timeMs: Date.now() - started,
  };
}
